"""EventLogger during a database outage: the backlog in memory is bounded, and nothing is lost.

The store raises OperationalError (the database is down) while many records are appended; at most
``backlog_max`` of them are held in memory, the rest wait only in the JSON-lines log, and every
record is stored, in the order it was logged, once the database is back (also after a restart and
when another worker adopts the log).
"""

import logging
import threading
import time
import tracemalloc
import uuid

import pytest
from django.db import OperationalError

from events.models import AnomalyEvent
from events.services import event_records_store
from runtime.eventlog import EventLogger
from tests.factories import CameraFactory


def record(camera_id=1, size=0, **extra):
    return {
        "id": str(uuid.uuid4()), "camera_id": camera_id, "started_at": "2026-11-22T10:00:00+00:00",
        "ended_at": None, "peak_score": 0.8, "mean_score": 0.7, "severity": "medium", "description": "",
        "decision": {"severity": "medium"}, "snapshot": "", "details": {"pad": "x" * size} if size else {},
        **extra,
    }


class OutageStore:
    """Raises OperationalError while ``down``; then records the ids of every batch, in order."""

    def __init__(self, then=None):
        self.down = True
        self.then = then
        self.ids: list[str] = []
        self.batches: list[int] = []
        self.failed_calls = 0
        self.lock = threading.Lock()

    def __call__(self, records):
        with self.lock:
            if self.down:
                self.failed_calls += 1
                raise OperationalError("could not connect to server: Connection refused")
            self.batches.append(len(records))
            self.ids.extend(r["id"] for r in records)
        if self.then is not None:
            self.then(records)


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def crash(logger):
    logger._stop.set()
    logger._wake.set()
    logger._thread.join(5)
    logger.file.close()


def test_an_outage_holds_at_most_backlog_max_records_in_memory_and_stores_all_after(tmp_path):
    store = OutageStore()
    logger = EventLogger(tmp_path / "w.jsonl", store=store, flush_interval=0.02, batch_size=10, retry_max=0.05,
                         backlog_max=50, adopt_interval=None).start()
    appended, most_in_memory = [], 0
    tracemalloc.start()
    try:
        for _ in range(1000):
            rec = record(size=10_000)  # 10 kB each: 10 MB if all were held
            logger.append(rec)
            appended.append(rec["id"])
            most_in_memory = max(most_in_memory, logger.in_memory())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert store.failed_calls >= 1  # the flusher tried, and the database was down
    assert most_in_memory <= 50 and logger.in_memory() <= 50
    assert logger.pending() == 1000 and logger.spilled >= 950
    assert peak < 4 * 1024 * 1024, f"{peak / 1e6:.1f} MB traced while appending"

    store.down = False  # the database is back
    assert wait_for(lambda: logger.pending() == 0)
    assert store.ids == appended  # every record, once, in the order it was logged
    assert max(store.batches) <= 50
    logger.close()
    assert (tmp_path / "w.jsonl.committed").read_text() == str((tmp_path / "w.jsonl").stat().st_size)


def test_records_appended_while_the_backlog_is_read_back_keep_their_order(tmp_path):
    store = OutageStore()
    logger = EventLogger(tmp_path / "w.jsonl", store=store, flush_interval=0.01, batch_size=5, retry_max=0.02,
                         backlog_max=7, adopt_interval=None).start()
    appended = []
    for i in range(200):
        if i == 100:
            store.down = False  # recovery starts while records keep coming
        rec = record()
        logger.append(rec)
        appended.append(rec["id"])
        assert logger.in_memory() <= 7
    assert wait_for(lambda: logger.pending() == 0)
    logger.close()
    assert store.ids == appended


def test_a_restart_during_the_outage_replays_the_log_a_batch_at_a_time(tmp_path):
    path = tmp_path / "w.jsonl"
    first = EventLogger(path, store=OutageStore(), flush_interval=60, batch_size=1000, backlog_max=20,
                        adopt_interval=None).start()
    appended = []
    for _ in range(300):
        rec = record()
        first.append(rec)
        appended.append(rec["id"])
    crash(first)  # the worker dies while the database is still down
    with open(path, "ab") as fh:
        fh.write(b'{"id": "torn')  # and its last write was cut in the middle

    store = OutageStore()
    second = EventLogger(path, store=store, flush_interval=60, batch_size=1000, retry_max=0.05, backlog_max=20,
                         adopt_interval=None).start()
    assert second.in_memory() == 20 and second.pending() == 300  # the rest waits in the log
    store.down = False
    assert wait_for(lambda: second.pending() == 0)
    second.close()
    assert store.ids == appended and max(store.batches) <= 20


def test_a_dead_workers_big_log_is_adopted_a_batch_at_a_time(tmp_path):
    dead = EventLogger(tmp_path / "dead.jsonl", store=OutageStore(), flush_interval=60, batch_size=1000,
                       backlog_max=1000, adopt_interval=None).start()
    appended = []
    for _ in range(120):
        rec = record()
        dead.append(rec)
        appended.append(rec["id"])
    crash(dead)
    store = OutageStore()
    store.down = False
    alive = EventLogger(tmp_path / "alive.jsonl", store=store, flush_interval=60, batch_size=1000, backlog_max=25,
                        adopt_interval=None).start()
    alive.close()
    assert store.ids == appended and max(store.batches) <= 25


def test_past_the_log_size_alarm_every_record_is_still_written_and_stored(tmp_path, caplog):
    store = OutageStore()
    logger = EventLogger(tmp_path / "w.jsonl", store=store, flush_interval=0.02, batch_size=10, retry_max=0.05,
                         backlog_max=10, log_max_bytes=4096, adopt_interval=None).start()
    appended = []
    with caplog.at_level(logging.ERROR, logger="runtime.eventlog"):
        for _ in range(60):
            rec = record()
            logger.append(rec)
            appended.append(rec["id"])
    alarms = [r for r in caplog.records if "EVENT_LOG_MAX_MB" in r.getMessage()]
    assert len(alarms) == 1 and "none is dropped" in alarms[0].getMessage()  # said once, not per record
    assert logger.over_cap > 0 and logger.pending() == 60
    store.down = False
    assert wait_for(lambda: logger.pending() == 0)
    logger.close()
    assert store.ids == appended


@pytest.mark.django_db(transaction=True)
def test_an_outage_against_the_real_store_loses_no_event(tmp_path):
    camera = CameraFactory()
    store = OutageStore(then=event_records_store)
    logger = EventLogger(tmp_path / "w.jsonl", store=store, flush_interval=0.02, batch_size=10, retry_max=0.05,
                         backlog_max=30, adopt_interval=None).start()
    ids = []
    for i in range(150):
        rec = record(camera.id)
        logger.append(rec)
        ids.append(rec["id"])
        if i % 3 == 0:  # an update of an event logged earlier (its close), also past the bound
            logger.append({**rec, "ended_at": "2026-11-22T10:00:05+00:00", "severity": "high"})
        assert logger.in_memory() <= 30
    store.down = False
    assert wait_for(lambda: logger.pending() == 0)
    logger.close()
    assert AnomalyEvent.objects.filter(camera=camera).count() == 150
    closed = AnomalyEvent.objects.filter(camera=camera, ended_at__isnull=False)
    assert sorted(str(e.id) for e in closed) == sorted(ids[i] for i in range(0, 150, 3))
    assert set(closed.values_list("severity", flat=True)) == {"high"}
