"""EventLogger: JSON-lines first, then batches (by count and by time), and crash replay."""

import json
import threading
import time
import uuid

import pytest

from events.eventlog import EventLogger, merge_records
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


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_every_append_is_on_disk_before_it_is_stored(tmp_path):
    camera = CameraFactory()
    store = CountingStore()
    logger = EventLogger(tmp_path / "w.jsonl", store=store, flush_interval=60, batch_size=100).start()
    r = record(camera.id)
    logger.append(r)
    lines = (tmp_path / "w.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["id"] == r["id"]
    assert AnomalyEvent.objects.count() == 0 and store.calls == []
    logger.close()
    assert AnomalyEvent.objects.count() == 1


def test_flush_by_count_stores_ten_at_once_without_waiting_for_the_timer(tmp_path):
    camera = CameraFactory()
    store = CountingStore()
    logger = EventLogger(tmp_path / "w.jsonl", store=store, flush_interval=60, batch_size=10).start()
    for _ in range(10):
        logger.append(record(camera.id))
    assert wait_for(lambda: AnomalyEvent.objects.count() == 10, timeout=3)
    assert store.calls == [10]  # one batch, one transaction
    logger.close()


def test_flush_by_time_stores_a_partial_batch_after_the_interval(tmp_path):
    camera = CameraFactory()
    store = CountingStore()
    logger = EventLogger(tmp_path / "w.jsonl", store=store, flush_interval=0.3, batch_size=10).start()
    for _ in range(3):
        logger.append(record(camera.id))
    assert AnomalyEvent.objects.count() == 0
    assert wait_for(lambda: AnomalyEvent.objects.count() == 3, timeout=3)
    assert store.calls == [3]
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

    def slow_store(records):
        time.sleep(0.2)
        event_records_store(records)

    logger = EventLogger(tmp_path / "w.jsonl", store=slow_store, flush_interval=0.5, batch_size=100)
    logger._wake = RecordingEvent()
    logger.start()
    logger.append(record(camera.id))
    assert wait_for(lambda: AnomalyEvent.objects.count() == 1, timeout=3)
    assert wait_for(lambda: len(logger._wake.timeouts) >= 3, timeout=3)
    # The wait after the 0.2 s flush is what is left of the 0.5 s interval; an empty flush leaves almost all.
    after_slow = logger._wake.timeouts[logger._wake.timeouts.index(0.5) + 1]
    assert 0 <= after_slow <= 0.3
    logger.close()


def test_crash_before_flush_loses_nothing_and_replay_stores_each_event_once(tmp_path):
    camera = CameraFactory()
    path = tmp_path / "w.jsonl"
    first = EventLogger(path, store=CountingStore(), flush_interval=60, batch_size=100).start()
    records = [record(camera.id) for _ in range(5)]
    for r in records:
        first.append(r)
    # An update of the first event (the episode closed) also waits in the log.
    first.append({**records[0], "ended_at": "2026-11-22T10:00:09+00:00", "description": "a cyclist"})
    first.file.close()  # the process dies: no flush, the lock goes with it
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
    dead = EventLogger(tmp_path / "dead.jsonl", store=CountingStore(), flush_interval=60, batch_size=100).start()
    dead.append(record(camera.id))
    dead.file.close()
    alive = EventLogger(tmp_path / "alive.jsonl", store=CountingStore(), flush_interval=60, batch_size=100).start()
    assert AnomalyEvent.objects.count() == 1
    alive.close()


def test_a_live_workers_log_is_not_adopted(tmp_path):
    camera = CameraFactory()
    busy = EventLogger(tmp_path / "busy.jsonl", store=CountingStore(), flush_interval=60, batch_size=100).start()
    busy.append(record(camera.id))
    other = EventLogger(tmp_path / "other.jsonl", store=CountingStore(), flush_interval=60, batch_size=100).start()
    assert AnomalyEvent.objects.count() == 0
    other.close()
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
