"""MultiCameraManager with fakes (no database, no Redis): the heartbeat never waits for a camera.

Also the bounded executors it runs on (``inference.executors``), and what an episode becomes
when the episode executor is full.
"""

import functools
import logging
import threading
import time

import numpy as np
import pytest

from inference.base import Decision, DetectorResult, Frame
from inference.e2e import E2ESystem
from inference.executors import BoundedExecutor, QueueFull
from inference.manager import MultiCameraManager
from tests import waiting

wait_for = functools.partial(waiting.wait_for, timeout=3.0, step=0.01)


# -- fakes ---------------------------------------------------------------------------------
class FakeLease:
    def __init__(self):
        self.renewed: list[tuple[int, float]] = []  # (camera, monotonic time)
        self.released: list[tuple[int, float]] = []
        self.alive_lists: list[list[int]] = []
        self.lost: set[int] = set()
        self.lock = threading.Lock()

    def acquire(self, camera_id):
        return camera_id not in self.lost

    def renew(self, camera_id):
        with self.lock:
            self.renewed.append((camera_id, time.monotonic()))
        return camera_id not in self.lost

    def release(self, camera_id):
        with self.lock:
            self.released.append((camera_id, time.monotonic()))

    def alive(self, cameras):
        self.alive_lists.append(sorted(cameras))

    def renewals(self, camera_id):
        with self.lock:
            return [t for c, t in self.renewed if c == camera_id]

    def releases(self, camera_id):
        with self.lock:
            return [t for c, t in self.released if c == camera_id]


class FakeStore:
    """Camera rows: ``enabled`` and ``configs`` play the database; ``log`` keeps claims and releases in order."""

    def __init__(self, *ids):
        self.rows = {cid: {"id": cid, "threshold": 0.5} for cid in ids}
        self.enabled = set(ids)
        self.released: list[tuple[int, str, str, float]] = []
        self.log: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def claim(self, camera_id):
        with self.lock:
            self.log.append(("claim", camera_id))
        return dict(self.rows[camera_id]) if camera_id in self.enabled else None

    def report(self, camera_id, **fields):
        return camera_id in self.enabled

    def release(self, camera_id, state, error):
        with self.lock:
            self.released.append((camera_id, state, error, time.monotonic()))
            self.log.append(("release", camera_id))

    def configs(self, camera_ids):
        return {cid: dict(self.rows[cid]) for cid in camera_ids if cid in self.enabled}

    def releases(self, camera_id):
        with self.lock:
            return [r for r in self.released if r[0] == camera_id]


class FakeSystem:
    """A camera loop; with ``hang`` set, it ignores its stop event until ``hang`` is set too."""

    def __init__(self, config, hang: threading.Event | None = None):
        self.config = config
        self.hang = hang
        self.state, self.error, self.measured_fps, self.last_frame_wall = "running", "", 5.0, None
        self.started = threading.Event()
        self.finished = threading.Event()
        self.waited_pending = False

    def run(self, stop):
        self.started.set()
        stop.wait()
        if self.hang is not None:
            self.hang.wait(5.0)  # a stuck source read: the stop is not seen for a while
        self.state = "stopped"
        self.finished.set()

    def wait_pending(self, timeout=None):
        self.waited_pending = True

    def stats_snapshot(self):
        return {"state": self.state}


class Builder:
    def __init__(self, hangs: dict[int, threading.Event] | None = None):
        self.hangs = hangs or {}
        self.built: list[FakeSystem] = []

    def __call__(self, config, manager):
        system = FakeSystem(config, self.hangs.get(config["id"]))
        self.built.append(system)
        return system

    def count(self, camera_id):
        return sum(1 for s in self.built if s.config["id"] == camera_id)


@pytest.fixture
def hang():
    gate = threading.Event()
    yield gate
    gate.set()  # never leave a thread hanging past its test


@pytest.fixture
def made():
    managers = []
    yield managers
    for manager in managers:
        manager.close()


def two_cameras(made, hang, heartbeat=3600.0, **kwargs):
    """Cameras 1 (its stop hangs until ``hang`` is set) and 2, running; no heartbeat unless asked."""
    store, lease, build = FakeStore(1, 2), FakeLease(), Builder({1: hang})
    manager = MultiCameraManager(store=store, lease=lease, build=build, heartbeat=heartbeat, **kwargs)
    made.append(manager)
    assert manager.start(1) == "started" and manager.start(2) == "started"
    assert wait_for(lambda: all(s.started.is_set() for s in build.built))
    return manager, store, lease, build


def timed_heartbeat(manager) -> float:
    started = time.monotonic()
    manager.heartbeat()
    return time.monotonic() - started


# -- the heartbeat and a camera whose stop hangs ----------------------------------------------
def test_a_hanging_stop_does_not_delay_the_other_cameras_leases(made, hang):
    manager, store, lease, build = two_cameras(made, hang)
    hanging = manager.cameras[1]
    store.enabled.discard(1)  # camera 1 stopped in the database

    assert timed_heartbeat(manager) < 0.5
    assert lease.renewals(2) and lease.renewals(1)  # renewals come first, for every camera
    assert 1 not in manager.cameras and 2 in manager.cameras
    assert hanging.stop.is_set() and hanging.thread.is_alive()  # its stop is under way, off the heartbeat
    assert store.releases(1) == [] and lease.releases(1) == []

    # The next heartbeats are not held up either, while the stop still hangs.
    before = len(lease.renewals(2))
    assert timed_heartbeat(manager) < 0.5 and timed_heartbeat(manager) < 0.5
    assert len(lease.renewals(2)) == before + 2
    assert 1 not in lease.alive_lists[-1] and 2 in lease.alive_lists[-1]
    assert store.releases(1) == []

    hang.set()  # the camera thread ends now: its stop finishes on the control executor
    assert wait_for(lambda: lease.releases(1))
    (_, state, error, released_at), = store.releases(1)
    assert (state, error) == ("stopped", "")
    assert released_at > lease.renewals(2)[-1]  # released well after the others' leases were renewed
    assert not hanging.thread.is_alive() and hanging.system.waited_pending
    assert 2 in manager.cameras and store.releases(2) == []


def test_the_heartbeat_thread_keeps_renewing_while_a_stop_hangs(made, hang):
    manager, store, lease, build = two_cameras(made, hang, heartbeat=0.02)
    store.enabled.discard(1)
    assert wait_for(lambda: 1 not in manager.cameras, timeout=1)
    stop_seen = time.monotonic()
    time.sleep(0.3)  # camera 1's stop hangs all along
    renewed = [t for t in lease.renewals(2) if t > stop_seen]
    assert len(renewed) >= 5, renewed
    assert store.releases(1) == []
    hang.set()
    assert wait_for(lambda: store.releases(1))


def test_a_restart_of_a_hanging_camera_does_not_block_the_heartbeat(made, hang):
    manager, store, lease, build = two_cameras(made, hang)
    old = manager.cameras[1]
    store.rows[1] = {"id": 1, "threshold": 0.9}  # settings changed in the database

    assert timed_heartbeat(manager) < 0.5
    assert 1 not in manager.cameras and old.thread.is_alive()
    assert manager.start(1) == "running"  # being restarted here: not started a second time

    # While it restarts, the camera keeps its lease and stays listed as this worker's.
    lease.renewed.clear()
    assert timed_heartbeat(manager) < 0.5
    assert lease.renewals(1) and lease.renewals(2)
    assert lease.alive_lists[-1] == [1, 2]

    hang.set()
    assert wait_for(lambda: 1 in manager.cameras)
    new = manager.cameras[1]
    assert new.system is not old.system and new.config == {"id": 1, "threshold": 0.9}
    assert build.count(1) == 2 and not old.thread.is_alive()
    assert store.releases(1) == [] and lease.releases(1) == []  # a restart keeps the camera here


def test_a_restart_whose_lease_is_lost_meanwhile_does_not_start_it_again(made, hang):
    manager, store, lease, build = two_cameras(made, hang)
    store.rows[1] = {"id": 1, "threshold": 0.9}
    manager.heartbeat()
    lease.lost.add(1)  # another worker took it while the old thread hangs
    assert timed_heartbeat(manager) < 0.5
    hang.set()
    assert wait_for(lambda: 1 not in manager._stopping)
    assert 1 not in manager.cameras and build.count(1) == 1
    assert store.releases(1) == [] and lease.releases(1) == []  # nothing of ours to release


def test_starting_a_camera_whose_stop_is_in_progress_starts_it_once_the_stop_is_done(made, hang):
    manager, store, lease, build = two_cameras(made, hang)
    store.enabled.discard(1)
    manager.heartbeat()
    store.enabled.add(1)  # an operator starts it again at once

    assert manager.start(1) == "stopping"
    assert manager.start(1) == "stopping"
    assert build.count(1) == 1 and 1 not in manager.cameras  # not started twice while the old thread runs

    hang.set()
    assert wait_for(lambda: 1 in manager.cameras)
    assert build.count(1) == 2
    # The old run was released before the new one claimed the row: the new claim is not undone.
    assert store.log[-2:] == [("release", 1), ("claim", 1)]
    assert manager.start(1) == "running"


def test_close_waits_for_every_stop_even_a_hanging_one(made, hang):
    manager, store, lease, build = two_cameras(made, hang)
    threading.Timer(0.2, hang.set).start()
    started = time.monotonic()
    manager.close()
    assert time.monotonic() - started >= 0.15  # it waited for the hanging camera
    assert manager.cameras == {}
    assert sorted((cid, state) for cid, state, _, _ in store.released) == [(1, "starting"), (2, "starting")]
    assert sorted(cid for cid, _ in lease.released) == [1, 2]
    assert all(s.finished.is_set() for s in build.built)
    assert manager.start(2) == "full"  # a closed worker takes nothing new


def test_a_full_control_queue_leaves_the_camera_for_the_next_heartbeat(made, hang, caplog):
    manager, store, lease, build = two_cameras(made, hang, control_workers=1, control_queue=0)
    gate = threading.Event()
    manager.control.submit(gate.wait, 2)  # the only control worker is busy
    store.enabled.discard(2)
    with caplog.at_level(logging.WARNING, logger="inference.executors"):
        assert timed_heartbeat(manager) < 0.5
    assert 2 in manager.cameras and not manager.cameras[2].stop.is_set()  # as it was, not half-stopped
    assert manager.control.rejected == 1 and "camera-control" in caplog.text
    gate.set()
    assert wait_for(lambda: manager.control.pending == 0)
    manager.heartbeat()  # tries again
    assert wait_for(lambda: store.releases(2))
    assert 2 not in manager.cameras


# -- BoundedExecutor ---------------------------------------------------------------------------
def busy_executor(workers, queue, **kwargs):
    """An executor whose ``workers`` workers are all running a task held by the returned gate."""
    executor = BoundedExecutor(workers, queue, "test-pool", **kwargs)
    gate, running = threading.Event(), threading.Semaphore(0)

    def hold():
        running.release()
        gate.wait(3)
        return "held"

    held = [executor.submit(hold) for _ in range(workers)]
    for _ in range(workers):
        assert running.acquire(timeout=2)
    return executor, gate, held


def test_at_the_bound_tasks_are_refused_counted_logged_and_never_run(caplog):
    executor, gate, held = busy_executor(2, 3)
    ran = []
    queued = [executor.submit(ran.append, i) for i in range(3)]
    assert executor.qsize == 3 and executor.pending == 5

    with caplog.at_level(logging.WARNING, logger="inference.executors"):
        with pytest.raises(QueueFull):
            executor.submit(ran.append, "refused-1")
        assert executor.try_submit(ran.append, "refused-2") is None
    assert isinstance(QueueFull(), RuntimeError)
    assert (executor.rejected, executor.submitted) == (2, 5)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # rate-limited: one line for the burst
    assert "test-pool" in warnings[0].getMessage() and "1 in all" in warnings[0].getMessage()

    gate.set()
    assert [f.result(2) for f in held] == ["held", "held"]
    for f in queued:
        f.result(2)
    executor.shutdown(wait=True)
    assert sorted(ran) == [0, 1, 2]  # every accepted task ran; no refused one did
    assert (executor.completed, executor.pending, executor.qsize) == (5, 0, 0)


def test_the_rejection_warning_comes_again_after_its_interval_with_the_count():
    now = [100.0]
    executor, gate, _ = busy_executor(1, 0, log_interval=10.0, clock=lambda: now[0])
    logger = logging.getLogger("inference.executors")
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        for _ in range(3):
            assert executor.try_submit(print) is None
        now[0] += 10.5
        assert executor.try_submit(print) is None
    finally:
        logger.removeHandler(handler)
        gate.set()
        executor.shutdown()
    assert executor.rejected == 4
    assert len(records) == 2
    assert "3 rejected since the last warning, 4 in all" in records[1].getMessage()


def test_free_workers_take_tasks_even_with_no_queue():
    executor = BoundedExecutor(2, 0, "no-queue")
    gate = threading.Event()
    first, second = executor.submit(gate.wait, 2), executor.submit(gate.wait, 2)
    assert executor.try_submit(gate.wait, 2) is None  # both workers busy, nothing may wait
    gate.set()
    assert first.result(2) and second.result(2)
    assert wait_for(lambda: executor.pending == 0)
    assert executor.submit(lambda: 7).result(2) == 7  # free again
    executor.shutdown()
    assert (executor.submitted, executor.rejected, executor.completed) == (3, 1, 3)


def test_it_is_a_concurrent_futures_executor():
    with BoundedExecutor(2, 8, "compat") as executor:
        assert list(executor.map(lambda x: x * x, range(5))) == [0, 1, 4, 9, 16]
        failing = executor.submit(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            failing.result(2)
    assert executor.failed == 1 and executor.completed == 6
    with pytest.raises(RuntimeError):
        executor.submit(print)
    assert executor.rejected == 0  # refused after shutdown: not a rejection at the bound


def test_shutdown_lets_the_queued_tasks_finish_or_cancels_them():
    executor, gate, _ = busy_executor(1, 4)
    done = []
    kept = [executor.submit(done.append, i) for i in range(2)]
    threading.Timer(0.05, gate.set).start()
    executor.shutdown(wait=True)
    assert done == [0, 1] and all(f.done() for f in kept)

    executor, gate, _ = busy_executor(1, 4)
    dropped = executor.submit(done.append, "never")
    executor.shutdown(wait=False, cancel_futures=True)
    gate.set()
    assert dropped.cancelled()
    executor.shutdown(wait=True)
    assert "never" not in done


# -- an episode the executor cannot take ----------------------------------------------------------
class ScriptedDetector:
    def __init__(self, scores):
        self.scores = list(scores)

    def score(self, image, timestamp):
        return DetectorResult(score=self.scores.pop(0))


class Agent:
    def decide(self, summary):
        return Decision(severity="medium", actions=["notify"], reasons=["test"], policy="test")


class Events:
    def __init__(self):
        self.records = []

    def on_event(self, camera_id, record):
        self.records.append((record, threading.current_thread().name))

    def __getattr__(self, name):  # the other callbacks: nothing to do
        return lambda *args, **kwargs: None


def run_one_episode(executor, events):
    system = E2ESystem({"id": 7, "threshold": 0.5, "event_close_seconds": 1.0, "analysis_fps": 5.0},
                       source=None, detector=ScriptedDetector([0.9, 0.1, 0.1]), agent=Agent(),
                       callbacks=events, executor=executor, realtime=False)
    image = np.zeros((24, 32, 3), np.uint8)
    for i in range(3):  # anomalous, then quiet for 2 s: the episode opens and closes
        system.process(Frame(image=image, timestamp=float(i), index=i))
    return system


def test_an_episode_the_full_executor_cannot_take_is_still_recorded(caplog):
    executor, gate, _ = busy_executor(1, 0)
    events = Events()
    with caplog.at_level(logging.WARNING):
        system = run_one_episode(executor, events)
    try:
        closed = [(r, thread) for r, thread in events.records if r["ended_at"] is not None]
        assert len(closed) == 1  # recorded at once, in the camera's own thread, not lost
        record, thread = closed[0]
        assert thread == threading.current_thread().name
        assert record["severity"] == "medium" and record["peak_score"] == 0.9
        assert system.finalised_inline == 1 and executor.rejected == 1
        assert "finishing it in the camera thread" in caplog.text
        assert len({r["id"] for r, _ in events.records}) == 1  # the open record and the closed one: one event
    finally:
        gate.set()
        executor.shutdown()


def test_an_episode_goes_to_the_executor_when_it_has_room_and_inline_after_shutdown():
    executor = BoundedExecutor(1, 4, "episode-test")
    events = Events()
    system = run_one_episode(executor, events)
    system.wait_pending(2)
    assert system.finalised_inline == 0
    assert [thread for r, thread in events.records if r["ended_at"]] == ["episode-test-0"]

    executor.shutdown()
    events = Events()
    system = run_one_episode(executor, events)  # a camera still finishing after the worker closed
    assert system.finalised_inline == 1
    assert [r["ended_at"] is not None for r, _ in events.records] == [False, True]
