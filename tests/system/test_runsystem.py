"""`make run` as a new user tries it: fresh data folder, embedded SQLite and Redis, real processes."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, path, *, token=None, data=None):
    request = urllib.request.Request(base + path, method="POST" if data is not None else "GET")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    body = json.dumps(data).encode() if data is not None else None
    try:
        with urllib.request.urlopen(request, body, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


def wait_for(predicate, timeout, step=1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, ValueError):
            pass
        time.sleep(step)
    return None


def test_runsystem_on_a_fresh_machine_runs_the_demo_camera_and_records_events(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "DATA_DIR")}
    # A fast-moving demo so the test sees an anomaly within a minute or two.
    env.update(DATA_DIR=str(tmp_path / "var"), PYTHONUNBUFFERED="1", WORKER_CONCURRENCY="4")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runsystem", "--port", str(port)], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: [lines.append(line) for line in proc.stdout], daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    try:
        login = wait_for(lambda: next((m for m in (re.search(r"Login: username '(\S+)', password '(\S+)'", l)
                                                    for l in lines) if m), None), timeout=120)
        assert login, "no login printed:\n" + "".join(lines[-50:])
        assert wait_for(lambda: any(f"Open http://127.0.0.1:{port}/" in l for l in lines), timeout=30)
        health = wait_for(lambda: (lambda r: r[1] if r[0] == 200 and r[1]["workers"]["cameras"] else None)(
            call(base, "/health/")), timeout=120)
        assert health and health["database"]["ok"] and health["redis"]["ok"], "".join(lines[-50:])

        status, tokens = call(base, "/api/v1/auth/token/", data={"username": login[1], "password": login[2]})
        assert status == 200
        token = tokens["access"]
        cameras = call(base, "/api/v1/cameras/", token=token)[1]["results"]
        # the demo camera, and a file camera where this machine has the sample footage; objects on both
        sample = ROOT.parent / "shared" / "datasets" / "pets-walkway" / "vtest.avi"
        expected = ["demo://"] + (["vtest.avi"] if sample.exists() else [])
        assert [c["source_url"] if c["source_url"] == "demo://" else Path(c["source_url"]).name
                for c in cameras] == expected
        assert {c["detector"] for c in cameras} == {"objects"}
        camera_id = next(c["id"] for c in cameras if c["source_url"] == "demo://")
        running = wait_for(lambda: (lambda s: s if s["state"] == "running" and s["measured_fps"] > 1 else None)(
            call(base, f"/api/v1/cameras/{camera_id}/status/", token=token)[1]), timeout=60)
        assert running, "".join(lines[-50:])

        events = wait_for(lambda: call(base, f"/api/v1/events/?camera={camera_id}", token=token)[1]["results"],
                          timeout=240, step=3)
        assert events, "no event within 4 minutes:\n" + "".join(lines[-80:])
        assert events[0]["camera"] == camera_id and events[0]["severity"] in ("low", "medium", "high", "critical")
        with urllib.request.urlopen(base + "/", timeout=10) as page:  # the dashboard asks for a login
            assert page.status == 200 and "/accounts/login/" in page.url
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, as a user at the terminal
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("runsystem did not stop on Ctrl-C:\n" + "".join(lines[-50:]))
    assert proc.returncode is not None
