"""End to end: a real Celery worker and beat (subprocesses) on the real broker and the test database.

Events of each severity are stored through ``events.services.event_records_store`` as the
inference worker stores them; a local HTTP server must receive the critical alert within two
seconds and the medium ones together in one digest after the beat interval.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from urllib.parse import quote

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.utils import timezone

from alerts.models import Delivery
from cameras.groups import user_group
from events.services import event_records_store
from surveillance.schedules import ensure_beat_schedules
from tests.alerts.conftest import make_channel, make_rule
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

DIGEST_SECONDS = 3


def test_database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return "sqlite:///" + str(settings.DATABASES["default"]["TEST"]["NAME"])
    user = quote(db.get("USER") or "", safe="")
    if db.get("PASSWORD"):
        user += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{user}{'@' if user else ''}{host}{port}/{db['NAME']}"  # NAME is already test_<name>


test_database_url.__test__ = False  # a helper, not a test


class Process:
    def __init__(self, name, args, env):
        self.name = name
        self.lines: list[str] = []
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, text, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def tail(self, n=60):
        return f"--- {self.name} ---\n" + "".join(self.lines[-n:])

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)


def record(camera_id, severity, **extra):
    now = timezone.now()
    return {"id": str(uuid.uuid4()), "camera_id": camera_id, "started_at": now.isoformat(),
            "ended_at": now.isoformat(), "severity": severity, "peak_score": 0.9, "mean_score": 0.7,
            "description": f"A {severity} thing happens.", **extra}


def test_worker_and_beat_deliver_critical_at_once_and_medium_in_one_digest(transactional_db, camera, owner, hook,
                                                                           tmp_path, settings):
    settings.ALERT_DIGEST_SECONDS = DIGEST_SECONDS
    ensure_beat_schedules()  # stored in the test database, read by beat's DatabaseScheduler
    channel = make_channel(owner, kind="webhook", url=hook.url())
    make_rule(owner, channels=[channel], min_severity="low", notify_in_app=True)

    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DJANGO_SETTINGS_MODULE="surveillance.settings", DATABASE_URL=test_database_url(),
        REDIS_URL=settings.REDIS_URL, DATA_DIR=str(tmp_path / "var"), PYTHONUNBUFFERED="1",
        ALERT_DIGEST_SECONDS=str(DIGEST_SECONDS), ALERT_RETRY_BASE_SECONDS="0.5",
        CHANNEL_PREFIX=settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
        CACHE_PREFIX=settings.CACHES["default"]["KEY_PREFIX"],
        WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",  # the receiver listens on loopback
    )
    py = sys.executable
    processes = []
    layer = get_channel_layer()
    inbox = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group(owner.pk), inbox)
    try:
        worker = Process("worker", [py, "-m", "celery", "-A", "surveillance", "worker", "-Q", "default,inference",
                                    "-P", "threads", "-c", "4", "-n", f"alerts-e2e-{os.getpid()}@%h",
                                    "--loglevel", "INFO"], env)
        processes.append(worker)
        beat = Process("beat", [py, "-m", "celery", "-A", "surveillance", "beat", "--loglevel", "INFO",
                                "--pidfile", str(tmp_path / "beat.pid"), "-s", str(tmp_path / "beat-schedule")],
                       env)
        processes.append(beat)
        assert worker.wait_for(" ready.", 90), worker.tail()
        assert beat.wait_for("beat: Starting", 60), beat.tail()

        records = [record(camera.pk, "critical"), record(camera.pk, "high")]
        records += [record(camera.pk, "medium") for _ in range(3)] + [record(camera.pk, "low")]
        by_severity = {}
        for r in records:
            by_severity.setdefault(r["severity"], []).append(r["id"])
        stored_at = time.time()
        event_records_store(records)

        critical = hook.wait_for(lambda r: json.loads(r["body"]).get("severity") == "critical", timeout=10)
        assert critical, worker.tail()
        latency = critical[0]["at"] - stored_at
        print(f"critical alert received {latency:.3f} s after the events were stored")
        assert latency < 2.0, f"critical took {latency:.2f} s"
        body = json.loads(critical[0]["body"])
        assert body["type"] == "alert" and body["event"]["id"] == by_severity["critical"][0]
        assert critical[0]["headers"]["X-Alert-Signature"].startswith("sha256=")
        assert hook.wait_for(lambda r: json.loads(r["body"]).get("severity") == "high", timeout=10), worker.tail()

        digests = hook.wait_for(lambda r: json.loads(r["body"]).get("type") == "digest",
                                timeout=DIGEST_SECONDS + 20)
        assert digests, worker.tail() + beat.tail()
        time.sleep(DIGEST_SECONDS + 1)  # another beat or two: still exactly one digest
        digests = [r for r in hook.requests if json.loads(r["body"]).get("type") == "digest"]
        assert len(digests) == 1, [json.loads(r["body"])["events"] for r in digests]
        digest = json.loads(digests[0]["body"])
        assert {e["id"] for e in digest["events"]} == set(by_severity["medium"] + by_severity["low"])
        assert digests[0]["at"] >= stored_at
        for event in digest["events"]:
            assert event["url"] == f"{settings.SITE_URL}/events/{event['id']}/"
        assert len(hook.requests) == 3  # critical, high, one digest: nothing repeated

        # The online operator got in-app notifications, sent by the worker.
        seen = set()
        deadline = time.monotonic() + 10
        while by_severity["critical"][0] not in seen and time.monotonic() < deadline:
            message = async_to_sync(_receive)(layer, inbox, deadline - time.monotonic())
            if message is None:
                break
            assert message["type"] == "notification"
            seen.add(message["payload"]["event"])
        assert by_severity["critical"][0] in seen

        deliveries = Delivery.objects.filter(channel=channel)
        assert deliveries.count() == 3 and set(deliveries.values_list("status", flat=True)) == {"sent"}
        assert Delivery.objects.get(mode="digest").items.count() == 4
    finally:
        for process in processes:
            process.stop()
        async_to_sync(layer.group_discard)(user_group(owner.pk), inbox)
    assert all(p.proc.poll() is not None for p in processes)


async def _receive(layer, channel, timeout):
    import asyncio

    import redis.exceptions

    try:
        return await asyncio.wait_for(layer.receive(channel), timeout=max(0.1, timeout))
    except (asyncio.TimeoutError, TimeoutError, redis.exceptions.TimeoutError):  # redis may time out first
        return None
