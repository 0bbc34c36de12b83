"""The event page's "Recording" panel: shown when the event's camera recorded footage around its moment (one cheap
query, whether or not there is any), with the window the player asks the segment API for."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from recordings.selectors import EVENT_AFTER_SECONDS, event_recording
from recordings.services import segment_index
from tests.factories import CameraFactory, EventFactory
from tests.pages.conftest import grant

pytestmark = pytest.mark.django_db


def _segment(camera, start, seconds=10):
    return segment_index(camera_id=camera.id, start=start, end=start + timedelta(seconds=seconds),
                         path=f"{camera.id}/{start:%H%M%S%f}.mp4", size=1000, codec="h264")


def _page(client, event) -> str:
    response = client.get(reverse("event-page", args=[event.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_event_page_shows_the_recording_when_footage_overlaps_its_moment(client, viewer, camera, settings):
    settings.CLIP_PRE_SECONDS = 4
    now = timezone.now()
    started = now - timedelta(minutes=10)
    event = EventFactory(camera=camera, started_at=started, ended_at=started + timedelta(seconds=20))
    client.force_login(viewer)  # a viewer of the camera, as for the segment API
    assert 'id="event-recording"' not in _page(client, event)  # nothing recorded

    _segment(camera, started - timedelta(seconds=30))  # ends 20 s before the window: not it
    _segment(camera, started + timedelta(seconds=40))  # starts 15 s after the window: not it
    assert 'id="event-recording"' not in _page(client, event)

    _segment(camera, started - timedelta(seconds=12))  # ends 2 s before the event started: inside the pre-roll
    html = _page(client, event)
    assert 'id="event-recording"' in html and 'id="event-rec-video"' in html
    assert f'data-url="{reverse("camera-recordings", args=[camera.pk])}"' in html
    assert f'data-start="{int((started - timedelta(seconds=4)).timestamp() * 1000)}"' in html and 'data-open="0"' in html
    assert "js/recplayer.js" in html and "js/event-recording.js" in html
    window = event_recording(event)
    assert window["since"] == started - timedelta(seconds=4)
    assert window["until"] == started + timedelta(seconds=20 + EVENT_AFTER_SECONDS)


def test_an_open_events_recording_runs_until_now(camera, settings):
    settings.CLIP_PRE_SECONDS = 2
    now = timezone.now()
    event = EventFactory(camera=camera, started_at=now - timedelta(minutes=5), ended_at=None)
    _segment(camera, now - timedelta(seconds=30))  # long after it started, still within it
    window = event_recording(event, now=now)
    assert window["open"] is True and window["until"] == now + timedelta(seconds=EVENT_AFTER_SECONDS)
    other = CameraFactory()
    assert event_recording(EventFactory(camera=other, started_at=now - timedelta(minutes=5), ended_at=None)) is None


def test_the_recording_costs_the_event_page_one_query_with_or_without_footage(client, owner, camera):
    now = timezone.now()
    quiet = EventFactory(camera=camera, started_at=now - timedelta(hours=2), ended_at=now - timedelta(hours=2))
    recorded = EventFactory(camera=camera, started_at=now - timedelta(minutes=3), ended_at=now - timedelta(minutes=2))
    _segment(camera, now - timedelta(minutes=3))
    client.force_login(owner)
    counts = {}
    for name, event in (("quiet", quiet), ("recorded", recorded)):
        _page(client, event)  # warm (sessions, site settings)
        with CaptureQueriesContext(connection) as queries:
            html = _page(client, event)
        counts[name] = len(queries)
        assert ('id="event-recording"' in html) == (name == "recorded")
        assert sum("recordings_segment" in q["sql"] for q in queries.captured_queries) == 1
    assert counts["quiet"] == counts["recorded"]


def test_a_user_who_may_not_view_the_camera_gets_neither_the_page_nor_the_footage(client, camera, outsider):
    from rest_framework.test import APIClient

    now = timezone.now()
    event = EventFactory(camera=camera, started_at=now - timedelta(minutes=3), ended_at=now - timedelta(minutes=2))
    segment = _segment(camera, now - timedelta(minutes=3))
    client.force_login(outsider)
    assert client.get(reverse("event-page", args=[event.pk])).status_code in (403, 404)
    api = APIClient()
    api.force_authenticate(outsider)
    assert api.get(reverse("camera-recordings", args=[camera.pk])).status_code == 404
    assert api.get(reverse("recording-video", args=[segment.pk])).status_code == 404
    grant(outsider, camera)
    assert client.get(reverse("event-page", args=[event.pk])).status_code == 200
