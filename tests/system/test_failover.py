"""Two real Celery inference workers share cameras; stopping one moves its cameras to the other.

Each camera runs on exactly one worker at a time (its lease in Redis, ``<prefix>:camera-lease:<id>``, and
the camera row's ``worker`` agree); a worker stopped with SIGTERM (warm shutdown: it releases its
leases) or killed with SIGKILL (its leases expire) has its cameras running on the other worker
within 30 seconds, through beat's redispatch task. Intervals are shortened through the
environment, as an administrator may set them.
"""

import os
import signal
import threading
import time

import pytest

from cameras.models import Camera
from cameras.services import camera_start
from cameras.live import lease_key, worker_stats
from runtime.tasks import camera_run
from surveillance.schedules import ensure_beat_schedules
from tests.factories import CameraFactory
from tests.system.processes import Processes, process_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

HEARTBEAT = 1
LEASE = 6
REDISPATCH = 2
FRESH = 1.8  # a worker's published figures younger than this are "running now" (< REDISPATCH)
MOVE_WITHIN = 30.0
SOURCE = "demo://?width=160&height=120&fps=5&anomaly_every=0"


@pytest.fixture
def processes():
    procs = Processes()
    yield procs
    procs.stop()


class Watcher:
    """Polls every worker's published figures: which cameras each one runs right now.

    Records any moment when two workers both report the same camera in figures published
    within the last FRESH seconds (each worker publishes every heartbeat).
    """

    def __init__(self):
        from cameras.live import client

        self.r = client()
        self.overlaps: list[tuple[float, int, list[str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def running(self) -> dict[int, list[str]]:
        now = time.time()
        out: dict[int, list[str]] = {}
        for name, doc in worker_stats(self.r).items():
            if now - doc["at"] > FRESH:
                continue
            for cid, figures in doc["cameras"].items():
                if figures.get("state") in ("running", "starting"):
                    out.setdefault(int(cid), []).append(name)
        return out

    def _run(self):
        while not self._stop.is_set():
            for cid, names in self.running().items():
                if len(names) > 1:
                    self.overlaps.append((time.time(), cid, names))
            self._stop.wait(0.25)

    def close(self):
        self._stop.set()
        self._thread.join(5)


def wait_until(predicate, timeout, step=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def placement(ids) -> dict[int, str]:
    """camera -> worker, for cameras running (state and a recent heartbeat in the database)."""
    return {c.pk: c.worker for c in Camera.objects.filter(pk__in=ids, state=Camera.State.RUNNING).exclude(worker="")}


def dispatch(cameras):
    for camera in cameras:
        camera_start(camera=camera, by=None)
        camera_run.apply_async(args=[camera.id])  # the real broker (the suite records .delay only)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_stopping_a_worker_moves_its_cameras_to_the_other_within_30_seconds(processes, tmp_path, settings, signum):
    settings.CAMERA_REDISPATCH_SECONDS = REDISPATCH
    ensure_beat_schedules()  # stored in the test database, read by beat's DatabaseScheduler
    env = process_env(tmp_path, WORKER_HEARTBEAT_SECONDS=HEARTBEAT, CAMERA_LEASE_SECONDS=LEASE,
                      CAMERA_REDISPATCH_SECONDS=REDISPATCH)
    tag = f"{os.getpid()}-{signum}"
    cameras = [CameraFactory(source_url=SOURCE, name=f"failover {i}") for i in range(6)]
    ids = [c.pk for c in cameras]
    r = None

    # Worker A takes the first three cameras alone; then B starts and both take the rest.
    a = processes.worker(env, name=f"fo-a-{tag}")
    assert processes.wait_for(a, " ready.", 120), processes.output()
    beat = processes.beat(env, tmp_path)
    assert processes.wait_for(beat, "beat: Starting", 60), processes.output()
    dispatch(cameras[:3])
    assert wait_until(lambda: len(placement(ids[:3])) == 3, 60), processes.output()
    b = processes.worker(env, name=f"fo-b-{tag}")
    assert processes.wait_for(b, " ready.", 120), processes.output()
    dispatch(cameras[3:])
    assert wait_until(lambda: len(placement(ids)) == 6, 60), processes.output()
    watcher = Watcher()
    try:
        time.sleep(3 * HEARTBEAT)
        before = placement(ids)
        workers = set(before.values())
        a_name = next(w for w in workers if w.startswith("fo-a-"))
        assert all(w.startswith(("fo-a-", "fo-b-")) for w in workers), workers
        # Exactly one worker per camera: the lease in Redis names the worker the database names,
        # and the workers' own figures list each camera once.
        r = watcher.r
        for cid, worker in before.items():
            assert r.get(lease_key(cid)).decode() == worker
        now_running = wait_until(lambda: (lambda m: m if len(m) == 6 else None)(watcher.running()), 10)
        assert now_running and all(len(names) == 1 for names in now_running.values()), now_running
        assert {cid: names[0] for cid, names in now_running.items()} == before

        moved = [cid for cid, worker in before.items() if worker == a_name]
        assert len(moved) >= 3
        b_name = f"fo-b-{tag}@"
        stopped_at = time.monotonic()
        processes.signal(a, signum)

        def all_on_b():
            now = placement(ids)
            running = watcher.running()
            return len(now) == 6 and all(now[cid].startswith(b_name) for cid in ids) \
                and all(running.get(cid, [""])[0].startswith(b_name) for cid in ids)

        assert wait_until(all_on_b, MOVE_WITHIN, step=0.25), (placement(ids), watcher.running(), processes.output())
        took = time.monotonic() - stopped_at
        assert took <= MOVE_WITHIN
        if signum == signal.SIGTERM:
            a.wait(20)  # a warm shutdown ends by itself
        for cid in ids:
            assert r.get(lease_key(cid)).decode().startswith(b_name)
        time.sleep(3 * HEARTBEAT)  # and they stay there, still on one worker each
        assert all(w.startswith(b_name) for w in placement(ids).values()) and len(placement(ids)) == 6
    finally:
        watcher.close()
    assert not watcher.overlaps, watcher.overlaps[:5]
