"""Events a dead worker left open are closed by beat; live episodes and offline cameras are left alone."""

from datetime import timedelta

import pytest
from django.utils import timezone

from events.models import AnomalyEvent
from events.services import events_close_stale
from surveillance.schedules import beat_schedules
from tests.factories import EventFactory

pytestmark = pytest.mark.django_db


def test_an_event_open_long_after_its_start_is_closed_at_its_last_update(camera, django_capture_on_commit_callbacks):
    now = timezone.now()
    stale = EventFactory(camera=camera, started_at=now - timedelta(minutes=30), ended_at=None)
    last_update = AnomalyEvent.objects.get(pk=stale.pk).updated_at
    fresh = EventFactory(camera=camera, started_at=now - timedelta(seconds=30), ended_at=None)
    closed = EventFactory(camera=camera, started_at=now - timedelta(hours=2), ended_at=now - timedelta(hours=1))
    with django_capture_on_commit_callbacks() as callbacks:
        assert events_close_stale(now=now) == 1
    assert len(callbacks) == 1  # pushed live after commit
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.ended_at == last_update and fresh.ended_at is None
    assert AnomalyEvent.objects.get(pk=closed.pk).ended_at == closed.ended_at
    assert events_close_stale(now=now) == 0  # safe to run twice


def test_an_offline_event_stays_open_while_its_camera_is_not_running(camera):
    now = timezone.now()
    offline = EventFactory(camera=camera, started_at=now - timedelta(hours=1), ended_at=None,
                           details={"kind": "camera_offline"})
    camera.state = "reconnecting"
    camera.save(update_fields=["state"])
    assert events_close_stale(now=now) == 0
    camera.state = "running"  # back, but the worker that recorded it died: close it
    camera.save(update_fields=["state"])
    assert events_close_stale(now=now) == 1
    offline.refresh_from_db()
    assert offline.ended_at is not None


def test_beat_runs_it():
    assert beat_schedules()["events-close-stale"]["task"] == "events.tasks.events_close_stale"
