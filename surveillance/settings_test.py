"""Test settings: the real settings with a few values made fast and isolated."""

import os
import tempfile
from pathlib import Path

_tmp = Path(tempfile.mkdtemp(prefix="surveillance-test-"))
os.environ.setdefault("DATA_DIR", str(_tmp))

from surveillance.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests serve webhooks on loopback, and read footage from anywhere on disk; the address and
# folder rules themselves are tested with the site settings changed.
SEED_WEBHOOK_NETWORKS = "127.0.0.0/8,::1/128"
CAMERA_FILE_ROOTS = ["/"]
MEDIA_ROOT = _tmp / "media"
EVENT_LOG_DIR = _tmp / "eventlog"
# Each test run gets its own key space in a shared Redis.
_prefix = f"test{os.getpid()}"
REDIS_KEY_PREFIX = _prefix
CACHES["default"]["KEY_PREFIX"] = _prefix  # noqa: F405
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = _prefix  # noqa: F405
# A file, not :memory:, so that subprocesses started by end-to-end tests see the same data.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(_tmp / "test.sqlite3")}  # noqa: F405

# The cache gets its own Redis database, so that clearing it between tests never
# touches the broker, the channel layer or the camera leases in database 0.
def _redis_db(url: str, db: int) -> str:
    from urllib.parse import urlsplit, urlunsplit

    if url.startswith("unix://"):
        return url.split("?")[0] + f"?db={db}"
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


CACHES["default"]["LOCATION"] = _redis_db(REDIS_URL, 1)  # noqa: F405
