"""Keeping an event as evidence: API and page, who may, audit, the pushed event JSON."""

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from events.models import AnomalyEvent
from tests.factories import EventFactory

pytestmark = pytest.mark.django_db


def url(event):
    return f"/api/v1/events/{event.pk}/keep/"


def test_an_operator_keeps_and_lets_go_of_an_event_audited(api_as, owner, viewer, outsider, camera,
                                                          django_capture_on_commit_callbacks):
    event = EventFactory(camera=camera, status=AnomalyEvent.Status.RESOLVED)
    with django_capture_on_commit_callbacks() as pushed:
        response = api_as(owner).post(url(event), {}, format="json")  # keep: true by default
    assert response.status_code == 200 and response.json()["keep"] is True and len(pushed) == 1
    assert api_as(owner).post(url(event), {"keep": True}, format="json").json()["keep"] is True  # no change
    assert api_as(owner).post(url(event), {"keep": False}, format="json").json()["keep"] is False
    assert list(AuditEntry.objects.filter(target_id=str(event.pk)).values_list("action", flat=True)
                .order_by("id")) == ["event.keep", "event.unkeep"]
    assert api_as(viewer).post(url(event), {"keep": True}, format="json").status_code == 403
    assert api_as(outsider).post(url(event), {"keep": True}, format="json").status_code == 404
    bad = api_as(owner).post(url(event), {"keep": "forever"}, format="json")
    assert bad.status_code == 400 and "keep" in bad.json()
    event.refresh_from_db()
    assert event.keep is False
    assert api_as(viewer).get(f"/api/v1/events/{event.pk}/").json()["keep"] is False


def test_the_event_page_keeps_it_for_operators_only(client, owner, viewer, camera):
    event = EventFactory(camera=camera)
    client.force_login(viewer)
    assert 'action="/events/%s/keep/"' % event.pk not in client.get(reverse("event-page", args=[event.pk])).content.decode()
    assert client.post(reverse("event-page-keep", args=[event.pk]), {"keep": "1"}).status_code == 403
    client.force_login(owner)
    page = client.get(reverse("event-page", args=[event.pk])).content.decode()
    assert "Keep as evidence" in page
    response = client.post(reverse("event-page-keep", args=[event.pk]), {"keep": "1"}, follow=True)
    page = response.content.decode()
    assert "Kept as evidence" in page and "Stop keeping" in page
    event.refresh_from_db()
    assert event.keep is True


def test_stored_events_are_not_kept_and_a_workers_update_never_undoes_keeping(camera, owner):
    """The worker's batched upsert (events.services.event_records_store) writes new events unkept and leaves an
    operator's choice alone when the same event comes again."""
    import uuid

    from events.services import event_keep, event_records_store

    record = {"id": str(uuid.uuid4()), "camera_id": camera.pk, "started_at": "2026-12-06T10:00:00+00:00",
              "severity": "high", "peak_score": 0.9}
    event_records_store([record])
    event = AnomalyEvent.objects.get(pk=record["id"])
    assert event.keep is False
    event_keep(event=event, by=owner, keep=True)
    event_records_store([{**record, "ended_at": "2026-12-06T10:00:09+00:00", "description": "Done."}])
    event.refresh_from_db()
    assert event.keep is True and event.description == "Done."
