"""EventLogger: JSON-lines first, then batches (by count and by time), and crash replay."""

import json
import threading
import time
import uuid

import pytest

from runtime.eventlog import EventLogger, merge_records
from events.models import AnomalyEvent
from events.services import event_records_store
from tests.factories import CameraFactory

pytestmark = pytest.mark.django_db(transaction=True)


def record(camera_id, **extra):
    return {
        "id": str(uuid.uuid4()), "camera_id": camera_id, "started_at": "2026-11-22T10:00:00+00:00",
        "ended_at": None, "peak_score": 0.8, "mean_score": 0.7, "severity": "medium", "description": "",
        "decision": {"severity": "medium"}, "snapshot": "", "details": {}, **extra,
    }


class CountingStore:
    def __init__(self, fail_times=0):
        self.calls = []
        self.fail_times = fail_times
        self.lock = threading.Lock()

    def __call__(self, records):
        with self.lock:
            if self.fail_times:
                self.fail_times -= 1
                raise ConnectionError("database is down")
            self.calls.append(len(records))
        event_records_store(records)


class GatedStore(CountingStore):
    """A store that waits until the test opens it: records stay pending meanwhile."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()

    def __call__(self, records):
        self.gate.wait(5)
        super().__call__(records)


def crash(logger):
    """The process dies: the flusher stops without a last flush, and the lock goes with the file."""
    logger._stop.set()
    logger._wake.set()
    logger._thread.join(5)
    logger.file.close()


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_every_append_is_on_disk_before_it_is_stored(tmp_path):
    camera = CameraFactory()
    store = GatedStore()  # the database is slow: the record is on disk well before it is stored
    logger = EventLogger(tmp_path / "w.jsonl", store=store, flush_interval=60, batch_size=100).start()
    r = record(camera.id)
    logger.append(r)
    lines = (tmp_path / "w.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["id"] == r["id"]
    assert AnomalyEvent.objects.count() == 0 and store.calls == []
    store.gate.set()
    logger.close()
    assert AnomalyEvent.objects.count() == 1


def test_a_lone_event_is_stored_at_once_and_the_ones_right_behind_it_wait_for_the_interval(tmp_path):
    camera = CameraFactory()
    store = CountingStore()
    logger = EventLogger(tmp_path / "w.jsonl", store=store, flush_interval=60, batch_size=10,
                         open_flush_gap=None).start()
    logger.append(record(camera.id))  # no flush in the last 60 s: stored now, not in a minute
    assert wait_for(lambda: AnomalyEvent.objects.count() == 1, timeout=3)
    for _ in range(3):
        logger.append(record(camera.id))
    time.sleep(0.3)
    assert AnomalyEvent.objects.count() == 1 and logger.pending() == 3  # at most one timed flush a minute
    logger.close()
    assert AnomalyEvent.objects.count() == 4 and store.calls == [1, 3]


def test_flush_by_count_stores_ten_at_once_without_waiting_for_the_timer(tmp_path):
    camera = CameraFactory()
    store = CountingStore()
    logger = EventLogger(tmp_path / "w.jsonl", store=store, flush_interval=60, batch_size=10,
                         open_flush_gap=None).start()
    logger.append(record(camera.id))
    assert wait_for(lambda: AnomalyEvent.objects.count() == 1, timeout=3)
    for _ in range(10):  # the timer's next turn is a minute away
        logger.append(record(camera.id))
    assert wait_for(lambda: AnomalyEvent.objects.count() == 11, timeout=3)
    assert store.calls == [1, 10]  # one batch, one transaction
    logger.close()


def test_flush_by_time_stores_a_partial_batch_after_the_interval(tmp_path):
    camera = CameraFactory()
    store = CountingStore()
    logger = EventLogger(tmp_path / "w.jsonl", store=store, flush_interval=0.5, batch_size=10,
                         open_flush_gap=None).start()
    logger.append(record(camera.id))
    assert wait_for(lambda: AnomalyEvent.objects.count() == 1, timeout=3)
    began = time.monotonic()
    for _ in range(3):
        logger.append(record(camera.id))
    assert wait_for(lambda: AnomalyEvent.objects.count() == 4, timeout=3)
    assert time.monotonic() - began >= 0.3  # not before the interval (0.5 s from the first flush)
    assert store.calls == [1, 3]
    logger.close()


class RecordingEvent(threading.Event):
    def __init__(self):
        super().__init__()
        self.timeouts = []

    def wait(self, timeout=None):
        self.timeouts.append(timeout)
        return super().wait(timeout)


def test_the_interval_counts_from_the_start_of_a_flush_so_a_slow_store_does_not_stretch_it(tmp_path):
    camera = CameraFactory()
    storing = threading.Event()

    def slow_store(records):
        storing.set()
        time.sleep(0.2)
        event_records_store(records)

    logger = EventLogger(tmp_path / "w.jsonl", store=slow_store, flush_interval=0.5, batch_size=100,
                         open_flush_gap=None)
    logger._wake = RecordingEvent()
    logger.start()
    logger.append(record(camera.id))
    assert storing.wait(3)
    waits_before = len(logger._wake.timeouts)
    logger.append(record(camera.id))  # arrives during the 0.2 s flush
    assert wait_for(lambda: AnomalyEvent.objects.count() == 2, timeout=3)
    # The wait after the slow flush is what is left of the 0.5 s interval, about 0.3 s.
    after_slow = logger._wake.timeouts[waits_before]
    assert 0 < after_slow <= 0.31
    logger.close()


def test_a_new_event_is_stored_within_the_open_gap_and_its_updates_wait_for_the_interval(tmp_path):
    """Opening records (what an alert and the live push wait on) do not wait for the 1 s batch; events that
    open together go in one batch; an update of an event already logged waits for the interval."""
    camera = CameraFactory()
    store = CountingStore()
    logger = EventLogger(tmp_path / "w.jsonl", store=store, flush_interval=60, batch_size=10,
                         open_flush_gap=0.2).start()
    first = record(camera.id)
    logger.append(first)  # after a quiet interval: at once, as before
    assert wait_for(lambda: store.calls == [1], timeout=3)
    began = time.monotonic()
    second, third = record(camera.id), record(camera.id)
    logger.append(second)
    logger.append(third)  # opens 0.2 s after the last flush at most, both in one batch
    assert wait_for(lambda: AnomalyEvent.objects.count() == 3, timeout=3)
    assert 0.1 <= time.monotonic() - began < 2 and store.calls == [1, 2]
    assert logger.open_flushes == 1
    logger.append({**second, "peak_score": 0.95})  # an update: waits for the minute's interval
    logger.append({**first, "ended_at": "2026-11-22T10:00:05+00:00"})
    time.sleep(0.6)
    assert logger.pending() == 2 and store.calls == [1, 2]
    logger.append(record(camera.id))  # a new event takes the waiting updates with it
    # Stored, then taken off the log once the batch's receivers (after commit, in this thread) are done.
    assert wait_for(lambda: AnomalyEvent.objects.count() == 4 and logger.pending() == 0, timeout=3)
    assert store.calls == [1, 2, 3]
    assert AnomalyEvent.objects.get(id=second["id"]).peak_score == pytest.approx(0.95)
    logger.close()


def test_without_an_open_gap_a_new_event_waits_for_the_interval_like_an_update(tmp_path):
    camera = CameraFactory()
    store = CountingStore()
    logger = EventLogger(tmp_path / "w.jsonl", store=store, flush_interval=60, batch_size=10,
                         open_flush_gap=-1).start()
    logger.append(record(camera.id))
    assert wait_for(lambda: store.calls == [1], timeout=3)
    logger.append(record(camera.id))
    time.sleep(0.5)
    assert store.calls == [1] and logger.pending() == 1 and logger.open_flushes == 0
    logger.close()
    assert store.calls == [1, 1]


def test_the_ids_remembered_to_tell_openings_are_bounded(tmp_path):
    camera = CameraFactory()
    logger = EventLogger(tmp_path / "w.jsonl", store=CountingStore(), flush_interval=60, batch_size=1000)
    logger.SEEN_MAX = 5
    records = [record(camera.id) for _ in range(8)]
    for r in records:
        logger.append(r)
    assert list(logger._seen) == [r["id"] for r in records[-5:]]
    logger.file.close()


def test_crash_before_flush_loses_nothing_and_replay_stores_each_event_once(tmp_path):
    camera = CameraFactory()
    path = tmp_path / "w.jsonl"
    # The database is down, so nothing is stored before the process dies.
    first = EventLogger(path, store=CountingStore(fail_times=100), flush_interval=60, batch_size=100).start()
    records = [record(camera.id) for _ in range(5)]
    for r in records:
        first.append(r)
    # An update of the first event (the episode closed) also waits in the log.
    first.append({**records[0], "ended_at": "2026-11-22T10:00:09+00:00", "description": "a cyclist"})
    crash(first)
    assert AnomalyEvent.objects.count() == 0

    second = EventLogger(path, store=CountingStore(), flush_interval=60, batch_size=100).start()
    second.flush()
    assert AnomalyEvent.objects.count() == 5
    closed = AnomalyEvent.objects.get(pk=records[0]["id"])
    assert closed.description == "a cyclist" and closed.ended_at is not None
    second.file.close()

    # Dying again right after storing, before the marker moved, stores nothing twice.
    path.with_suffix(".jsonl.committed").write_text("0")
    third = EventLogger(path, store=CountingStore(), flush_interval=60, batch_size=100).start()
    third.close()
    assert AnomalyEvent.objects.count() == 5


def test_a_torn_last_line_is_cut_and_earlier_events_are_kept(tmp_path):
    camera = CameraFactory()
    path = tmp_path / "w.jsonl"
    good = record(camera.id)
    path.write_text(json.dumps(good) + "\n" + '{"id": "half-writ')
    logger = EventLogger(path, store=CountingStore(), flush_interval=60, batch_size=100).start()
    logger.close()
    assert list(AnomalyEvent.objects.values_list("id", flat=True)) == [uuid.UUID(good["id"])]


def test_database_down_keeps_events_and_stores_them_when_it_returns(tmp_path):
    camera = CameraFactory()
    store = CountingStore(fail_times=2)
    logger = EventLogger(tmp_path / "w.jsonl", store=store, flush_interval=0.1, batch_size=100, retry_max=0.3).start()
    for _ in range(4):
        logger.append(record(camera.id))
    assert wait_for(lambda: logger.pending() == 0, timeout=5)
    assert AnomalyEvent.objects.count() == 4 and logger.failures == 2
    logger.close()


def test_a_new_worker_adopts_the_log_of_a_dead_one(tmp_path):
    camera = CameraFactory()
    dead = EventLogger(tmp_path / "dead.jsonl", store=CountingStore(fail_times=100), flush_interval=60,
                       batch_size=100).start()
    dead.append(record(camera.id))
    crash(dead)
    assert AnomalyEvent.objects.count() == 0
    alive = EventLogger(tmp_path / "alive.jsonl", store=CountingStore(), flush_interval=60, batch_size=100).start()
    assert AnomalyEvent.objects.count() == 1
    alive.close()


def test_a_live_workers_log_is_not_adopted(tmp_path):
    camera = CameraFactory()
    slow = GatedStore()
    busy = EventLogger(tmp_path / "busy.jsonl", store=slow, flush_interval=60, batch_size=100).start()
    busy.append(record(camera.id))
    other = EventLogger(tmp_path / "other.jsonl", store=CountingStore(), flush_interval=60, batch_size=100).start()
    assert AnomalyEvent.objects.count() == 0
    other.close()
    slow.gate.set()
    busy.close()
    assert AnomalyEvent.objects.count() == 1


def test_a_log_cannot_be_opened_twice(tmp_path):
    first = EventLogger(tmp_path / "w.jsonl", store=CountingStore()).start()
    with pytest.raises(RuntimeError, match="in use"):
        EventLogger(tmp_path / "w.jsonl", store=CountingStore()).start()
    first.close()


def test_events_of_a_deleted_camera_are_skipped_not_fatal(tmp_path):
    keep, gone = CameraFactory(), CameraFactory()
    gone_id = gone.id
    gone.delete()
    ids = event_records_store([record(keep.id), record(gone_id)])
    assert len(ids) == 1 and AnomalyEvent.objects.count() == 1


def test_worker_update_never_overwrites_an_operators_acknowledgement(tmp_path):
    camera = CameraFactory()
    r = record(camera.id)
    event_records_store([r])
    AnomalyEvent.objects.filter(pk=r["id"]).update(status="acknowledged")
    event_records_store([{**r, "ended_at": "2026-11-22T10:00:05+00:00", "peak_score": 0.95}])
    event = AnomalyEvent.objects.get(pk=r["id"])
    assert (event.status, event.peak_score) == ("acknowledged", 0.95)


def test_merge_keeps_the_latest_version_of_each_event():
    a, b = {"id": "a", "x": 1, "y": 1}, {"id": "b", "x": 2}
    assert merge_records([a, b, {"id": "a", "x": 3}]) == [{"id": "a", "x": 3, "y": 1}, b]


def test_a_malformed_record_is_set_aside_and_the_others_are_stored(tmp_path):
    camera = CameraFactory()
    logger = EventLogger(tmp_path / "w.jsonl", store=event_records_store, flush_interval=60, batch_size=100).start()
    good = record(camera.id)
    logger.append({**record(camera.id), "id": "not-a-uuid"})
    logger.append(good)
    logger.flush()
    assert list(AnomalyEvent.objects.values_list("id", flat=True)) == [uuid.UUID(good["id"])]
    assert logger.rejected == 1 and logger.pending() == 0
    rejected = json.loads((tmp_path / "w.rejected.jsonl").read_text())
    assert rejected["record"]["id"] == "not-a-uuid" and rejected["error"]
    logger.close()
