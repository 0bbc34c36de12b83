"""event_records_store: what a batch of worker records becomes in the database, on both write paths.

The PostgreSQL path (one JSON statement) runs when the suite runs on PostgreSQL (.ci/run); the ORM
path (SQLite, `make run`) is called directly here so that both are checked on any database.
"""

import math
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone as django_timezone

from events import services
from events.models import AnomalyEvent
from events.services import event_records_store
from tests.factories import CameraFactory, UserFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 22, 10, 0, 0, tzinfo=timezone.utc)


def record(camera_id, **extra):
    return {
        "id": str(uuid.uuid4()), "camera_id": camera_id, "started_at": T0.isoformat(), "ended_at": None,
        "peak_score": 0.8, "mean_score": 0.7, "severity": "high", "description": "Someone climbs the fence.",
        "decision": {"severity": "high", "actions": ["store", "push"], "reasons": ["zone 'fence'"]},
        "snapshot": "events/snapshots/a.jpg", "clip": "events/clips/a.webm",
        "details": {"detector": "motion", "regions": [[1, 2, 3, 4]], "zone": "fence"}, **extra,
    }


def stored_fields(event):
    return {
        "camera_id": event.camera_id, "started_at": event.started_at, "ended_at": event.ended_at,
        "peak_score": event.peak_score, "mean_score": event.mean_score, "severity": event.severity,
        "description": event.description, "decision": event.decision, "snapshot": event.snapshot.name,
        "clip": event.clip.name, "details": event.details, "status": event.status,
    }


@pytest.fixture(params=["default", "orm"])
def store(request, monkeypatch):
    """event_records_store as this database runs it, and forced onto the ORM path."""
    if request.param == "orm":
        monkeypatch.setattr(services, "_upsert_postgresql", services._upsert_orm)
    return event_records_store


def test_every_field_of_a_record_is_stored(store):
    camera = CameraFactory()
    r = record(camera.id, ended_at=(T0 + timedelta(seconds=8)).isoformat())
    assert store([r]) == [uuid.UUID(r["id"])]
    event = AnomalyEvent.objects.get(pk=r["id"])
    assert stored_fields(event) == {
        "camera_id": camera.id, "started_at": T0, "ended_at": T0 + timedelta(seconds=8), "peak_score": 0.8,
        "mean_score": 0.7, "severity": "high", "description": "Someone climbs the fence.",
        "decision": r["decision"], "snapshot": "events/snapshots/a.jpg", "clip": "events/clips/a.webm",
        "details": r["details"], "status": "new",
    }
    assert event.created_at and event.updated_at


def test_an_update_changes_the_workers_fields_and_keeps_the_operators(store):
    camera, operator = CameraFactory(), UserFactory()
    r = record(camera.id)
    store([r])
    AnomalyEvent.objects.filter(pk=r["id"]).update(status="acknowledged", acknowledged_by=operator,
                                                   acknowledged_at=T0)
    before = AnomalyEvent.objects.get(pk=r["id"])
    later = {**r, "ended_at": (T0 + timedelta(seconds=20)).isoformat(), "peak_score": 0.97,
             "severity": "critical", "description": "Two people climb the fence."}
    store([later])
    after = AnomalyEvent.objects.get(pk=r["id"])
    assert (after.ended_at, after.peak_score, after.severity, after.description) == (
        T0 + timedelta(seconds=20), 0.97, "critical", "Two people climb the fence.")
    assert (after.status, after.acknowledged_by_id, after.acknowledged_at) == ("acknowledged", operator.id, T0)
    assert after.created_at == before.created_at and after.updated_at >= before.updated_at
    assert AnomalyEvent.objects.count() == 1


def test_a_batch_keeps_the_last_version_of_each_event_and_the_records_order(store):
    camera = CameraFactory()
    a, b = record(camera.id), record(camera.id)
    ids = store([a, b, {**a, "peak_score": 0.99}])
    assert ids == [uuid.UUID(b["id"]), uuid.UUID(a["id"])]
    assert AnomalyEvent.objects.get(pk=a["id"]).peak_score == 0.99


def test_naive_times_are_read_in_the_sites_time_zone_like_the_orm_does(store):
    camera = CameraFactory()
    r = record(camera.id, started_at="2026-11-22T10:00:00")
    store([r])
    expected = django_timezone.make_aware(datetime(2026, 11, 22, 10, 0))
    assert AnomalyEvent.objects.get(pk=r["id"]).started_at == expected


def test_a_score_that_is_not_a_number_is_stored_as_zero(store):
    camera = CameraFactory()
    r = record(camera.id, peak_score=math.nan, mean_score=math.inf)
    store([r])
    event = AnomalyEvent.objects.get(pk=r["id"])
    assert (event.peak_score, event.mean_score) == (0.0, 0.0)


def test_a_nul_character_in_a_models_description_is_dropped_not_fatal(store):
    camera = CameraFactory()
    r = record(camera.id, description="A person\x00 falls.")
    store([r])
    assert AnomalyEvent.objects.get(pk=r["id"]).description == "A person falls."


@pytest.mark.parametrize("bad, error", [
    ({"id": "not-a-uuid"}, ValueError),
    ({"severity": "apocalyptic"}, ValueError),
    ({"started_at": "yesterday"}, ValueError),
    ({"started_at": None}, ValueError),
    ({"camera_id": "front door"}, ValueError),
    ({"details": {"score": math.nan}}, ValueError),
    ({"decision": {"at": object()}}, TypeError),
])
def test_a_malformed_record_raises_the_error_the_event_log_sets_aside_and_stores_nothing(store, bad, error):
    camera = CameraFactory()
    with pytest.raises(error):
        store([record(camera.id), {**record(camera.id), **bad}])
    assert AnomalyEvent.objects.count() == 0


def test_a_missing_id_is_a_key_error(store):
    r = record(CameraFactory().id)
    del r["id"]
    with pytest.raises(KeyError):
        store([r])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement path is PostgreSQL's")
def test_on_postgresql_a_batch_is_one_statement():
    cameras = [CameraFactory(), CameraFactory()]
    gone = CameraFactory()
    gone_id = gone.id
    gone.delete()
    records = [record(cameras[i % 2].id) for i in range(10)] + [record(gone_id)]
    with CaptureQueriesContext(connection) as queries:
        ids = event_records_store(records)
    assert len(ids) == 10 and AnomalyEvent.objects.count() == 10
    writes = [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"]]
    assert len(queries.captured_queries) == 1 and len(writes) == 1
