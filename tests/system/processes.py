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
        PYTHONUNBUFFERED="1",
        # Streams and webhook receivers of these tests listen on loopback: allowed, as an
        # administrator would allow the camera LAN (the default refuses internal addresses).
        CAMERA_ALLOWED_NETWORKS="127.0.0.0/8,::1/128",
        WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8,::1/128",
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
