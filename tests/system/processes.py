"""Real processes for end-to-end tests: daphne and Celery against the test database and Redis."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

from django.conf import settings
from django.db import connection

from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_database_url() -> str:
    """The URL of the database this test run uses (pytest-django's test database)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    auth = f"{user}:{db['PASSWORD']}@" if db.get("PASSWORD") else f"{user}@"
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def process_env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DJANGO_SETTINGS_MODULE="surveillance.settings",
        DATABASE_URL=test_database_url(),
        REDIS_URL=settings.REDIS_URL,
        DATA_DIR=str(tmp_path / "var"),
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        CHANNEL_PREFIX=settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
        REDIS_KEY_PREFIX=settings.REDIS_KEY_PREFIX,
        PYTHONUNBUFFERED="1",
        # Streams and webhook receivers of these tests listen on loopback: allowed, as an
        # administrator would allow the camera LAN (the default refuses internal addresses).
        CAMERA_ALLOWED_NETWORKS="127.0.0.0/8,::1/128",
        WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8,::1/128",
        # Footage is read from the shared datasets and tmp folders, as the test settings allow; the worker
        # checks a file source's folder again when it opens it.
        CAMERA_FILE_ROOTS=",".join(str(r) for r in settings.CAMERA_FILE_ROOTS),
        **{k: str(v) for k, v in extra.items()},
    )
    return env


class Processes:
    """Start processes in their own sessions; always stop them (and their children)."""

    def __init__(self):
        self.procs: list[tuple[str, subprocess.Popen, list[str]]] = []

    def start(self, name: str, args: list[str], env: dict) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        lines: list[str] = []
        threading.Thread(target=lambda: [lines.append(line) for line in proc.stdout], daemon=True).start()
        self.procs.append((name, proc, lines))
        return proc

    def daphne(self, env: dict) -> int:
        port = free_port()
        self.start("daphne", ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "surveillance.asgi:application"], env)
        wait_for_port(port)
        return port

    def worker(self, env: dict, name: str = "e2e", queues: str = "inference,default") -> subprocess.Popen:
        return self.start(f"worker-{name}", ["-m", "celery", "-A", "surveillance", "worker", "-Q", queues, "-P",
                                             "threads", "-c", "4", "-n", f"{name}@%h", "--loglevel", "INFO"], env)

    def beat(self, env: dict, tmp_path) -> subprocess.Popen:
        return self.start("beat", ["-m", "celery", "-A", "surveillance", "beat", "--loglevel", "INFO",
                                   "-s", str(tmp_path / "beat-schedule")], env)

    def wait_for(self, proc: subprocess.Popen, text: str, timeout: float = 90) -> bool:
        """True once ``text`` appears in the output of ``proc`` (False when it exits or time runs out)."""
        lines = next(lines for _, p, lines in self.procs if p is proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in list(lines)):
                return True
            if proc.poll() is not None:
                return False
            time.sleep(0.2)
        return False

    def signal(self, proc: subprocess.Popen, signum: int) -> None:
        """Send ``signum`` to ``proc`` and its children (its process group), as an administrator would."""
        if proc.poll() is None:
            os.killpg(proc.pid, signum)

    def output(self, last: int = 40) -> str:
        return "\n".join(f"--- {name} ---\n" + "".join(lines[-last:]) for name, _, lines in self.procs)

    def stop(self) -> None:
        for _, proc, _ in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for _, proc, _ in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port}")


# -- fault injection: a real stream, a dedicated Redis, a cuttable TCP path ------------------------------
def listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port, seen in /proc (connecting would use up
    ffmpeg's single ``-listen 1`` client)."""
    needle = f":{port:04X} "
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                next(fh)
                for line in fh:
                    fields = line.split()
                    if (fields[1] + " ").endswith(needle) and fields[3] == "0A":  # 0A: LISTEN
                        return True
        except FileNotFoundError:
            continue
    return False


class FFmpegStream:
    """A looped real clip served as a live MJPEG-over-HTTP stream on loopback by Debian's ffmpeg.

    ffmpeg's HTTP server (``-listen 1``) serves one client and exits when it leaves; while
    ``up``, a thread starts it again, as a camera accepts a reconnecting client. ``kill()`` takes
    the camera off the network (SIGKILL, nothing restarts it) until ``start()``.
    """

    def __init__(self, clip, port: int | None = None, *, fps: float | None = None, scale: str | None = None,
                 input_format: str | None = None, copy: bool = False):
        import shutil

        if shutil.which("ffmpeg") is None:
            import pytest

            pytest.skip("ffmpeg is not installed (make test installs Debian's ffmpeg)")
        self.clip = str(clip)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/live.mjpeg"
        self.fps = fps
        self.scale = scale
        self.input_format = input_format
        self.copy = copy  # the clip is already JPEG frames (mjpeg): sent as they are, sizes included
        self.proc: subprocess.Popen | None = None
        self.up = False
        self.starts = 0
        self._thread: threading.Thread | None = None

    def _args(self) -> list[str]:
        vf = []
        if self.fps:
            vf.append(f"fps={self.fps}")
        if self.scale:
            vf.append(f"scale={self.scale}")
        fmt = ["-f", self.input_format] if self.input_format else []
        codec = ["-c:v", "copy"] if self.copy else [*(["-vf", ",".join(vf)] if vf else []), "-c:v", "mjpeg",
                                                     "-q:v", "5"]
        return ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", *fmt, "-i", self.clip,
                "-an", *codec, "-f", "mpjpeg", "-listen", "1", self.url]

    def _serve(self) -> None:
        while self.up:
            self.proc = subprocess.Popen(self._args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
            self.starts += 1
            self.proc.wait()
            if self.up:
                time.sleep(0.2)

    def start(self, timeout: float = 15) -> "FFmpegStream":
        self.up = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not listening(self.port):
            if time.monotonic() > deadline:
                raise TimeoutError(f"ffmpeg does not listen on {self.port}")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        self.up = False
        proc = self.proc
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        if self._thread is not None:
            self._thread.join(5)

    stop = kill


class RedisServer:
    """A dedicated redis-server on a free port (never the machine's), to stop and start again."""

    def __init__(self, tmp_path, port: int | None = None):
        import shutil

        self.binary = shutil.which("redis-server")
        if self.binary is None:
            import pytest

            pytest.skip("redis-server is not installed")
        self.port = port or free_port()
        self.dir = tmp_path / f"redis-{self.port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for_port(self.port, 20)
        return self

    def stop(self, sig=signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(10)


class TcpProxy:
    """127.0.0.1:<port> -> target, in a thread of the test process; ``cut()`` drops every connection
    and refuses new ones (the database host is unreachable) until ``restore()``."""

    def __init__(self, target_host: str, target_port: int):
        import asyncio

        self.target = (target_host, target_port)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.server = None
        self.writers: set = set()
        self.connections = 0
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.restore()

    def _call(self, coro):
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _pipe(self, reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except Exception:  # noqa: BLE001 - either side went away
            pass
        finally:
            writer.close()

    async def _handle(self, client_reader, client_writer):
        import asyncio

        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        self.connections += 1
        self.writers |= {client_writer, server_writer}
        await asyncio.gather(self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer))
        self.writers -= {client_writer, server_writer}

    async def _listen(self):
        import asyncio

        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self):
        server, self.server = self.server, None
        if server is not None:
            server.close()  # no new connections
        for writer in list(self.writers):
            writer.transport.abort()  # the open ones break (reset), as when a host goes away
        self.writers.clear()
        if server is not None:
            await server.wait_closed()

    def restore(self) -> None:
        self._call(self._listen())

    def cut(self) -> None:
        self._call(self._cut())

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
