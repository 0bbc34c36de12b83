"""The open-alerts badge of every signed-in page (surveillance/context_processors.py, templates/base.html), the
alert sound preference and what the pages hand static/js/notify.js (docs/alerts.md, "On open pages").

Alerts are routed through the real path (``alerts.services.alerts_route_events``, an in-app rule); the
delivery tasks it queues after commit are recorded, not sent: the badge counts an alert from the moment it
is routed to the user.
"""

import re
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import remove_perm

from alerts.models import AlertRule, Delivery
from alerts.services import alerts_route_events
from events.models import AnomalyEvent
from tests.factories import CameraFactory, EventFactory, UserFactory
from tests.pages.conftest import grant
from tests.pages.test_pages import json_script

pytestmark = pytest.mark.django_db


@pytest.fixture
def deliveries(monkeypatch):
    """Delivery tasks queued by routing, recorded (the broker is shared by every test run on the machine)."""
    from alerts import tasks

    queued = []
    monkeypatch.setattr(tasks.alert_deliver, "delay", lambda delivery_id: queued.append(delivery_id))
    monkeypatch.setattr(tasks.alert_deliver, "apply_async", lambda args, **kw: queued.append(args[0]))
    return queued


@pytest.fixture
def alert(deliveries, django_capture_on_commit_callbacks):
    """alert(*events): route events as events.services does after storing them."""
    def run(*events):
        with django_capture_on_commit_callbacks(execute=True):
            alerts_route_events(event_ids=[e.pk for e in events])
    return run


def in_app_rule(user, **fields):
    return AlertRule.objects.create(owner=user, name="in-app", min_severity="low", notify_in_app=True, **fields)


def event(camera, severity, minutes=1, **fields):
    """An event the agent wants sent at once, of its own kind (never suppressed as a repeat of another)."""
    return EventFactory(camera=camera, severity=severity, started_at=timezone.now() - timedelta(minutes=minutes),
                        decision={"severity": severity, "actions": ["alert_now"], "reasons": []},
                        details={"kind": f"kind-{uuid.uuid4().hex[:8]}"}, **fields)


def badge(html):
    match = re.search(r'<a id="alert-badge"[^>]*>', html, re.S)
    assert match, "no badge"
    return match.group(0)


def test_badge_counts_unacknowledged_high_and_critical_alerts_of_viewable_cameras(client, owner, camera, alert):
    in_app_rule(owner)
    vault = CameraFactory(name="Vault")
    grant(owner, vault)
    counted = [event(camera, "critical", 1), event(camera, "high", 2)]
    medium = event(camera, "medium", 3)
    acknowledged = event(camera, "critical", 4)
    revoked = event(vault, "critical", 5)
    alert(*counted, medium, acknowledged, revoked)
    assert Delivery.objects.filter(recipient=owner, medium="in_app").count() == 5
    AnomalyEvent.objects.filter(pk=acknowledged.pk).update(status=AnomalyEvent.Status.ACKNOWLEDGED)
    remove_perm("view_camera", owner, vault)  # alerted once, but the camera is no longer theirs to view
    event(camera, "critical", 6)  # never alerted to anyone
    client.force_login(owner)

    for page in ("dashboard", "event-list-page", "my-alerts", "preferences"):
        html = client.get(reverse(page)).content.decode()
        tag = badge(html)
        assert 'data-count="2"' in tag and "hidden" not in tag, page
        assert 'href="/events/?status=new&amp;severity=urgent"' in tag
        assert re.search(r"<title>\(2\) ", html), page
        data = json_script(html, "open-alerts")
        assert data["events"] == [[str(e.pk), camera.pk] for e in counted]  # newest first
        assert data["more"] is False and data["severities"] == ["high", "critical"]
        assert 'id="toasts" class="toasts" role="status" aria-live="polite"' in html
        assert html.index("js/live.js") < html.index("js/notify.js")
    assert "Vault" not in client.get(reverse("preferences")).content.decode()
    # The badge's link lists the new high and critical events, not the medium one.
    listed = client.get(reverse("event-list-page"), {"status": "new", "severity": "urgent"}).content.decode()
    assert all(f'data-event="{e.pk}"' in listed for e in counted)
    assert f'data-event="{medium.pk}"' not in listed and f'data-event="{acknowledged.pk}"' not in listed


def test_no_badge_for_users_without_open_alerts_nor_for_other_users_alerts(client, owner, viewer, outsider, camera,
                                                                          alert):
    in_app_rule(owner)
    alert(event(camera, "critical"))
    for user in (viewer, outsider):  # the viewer may view the camera, but was not alerted
        client.force_login(user)
        html = client.get(reverse("preferences")).content.decode()
        tag = badge(html)
        assert 'data-count="0"' in tag and " hidden" in tag
        assert not re.search(r"<title>\(", html)
        assert json_script(html, "open-alerts")["events"] == []
    client.logout()
    html = client.get(reverse("login")).content.decode()
    assert "alert-badge" not in html and "notify.js" not in html and "open-alerts" not in html


def test_badge_says_99_plus_and_reads_at_most_100_events(client, owner, camera, alert):
    in_app_rule(owner)
    events = [event(camera, "high") for _ in range(101)]
    alert(*events)
    client.force_login(owner)
    html = client.get(reverse("preferences")).content.decode()
    assert "<title>(99+) " in html and ">99+</span>" in badge(html) + html[html.index('data-role="count"'):][:40]
    data = json_script(html, "open-alerts")
    assert len(data["events"]) == 100 and data["more"] is True


def test_the_badge_costs_one_query_whatever_the_number_of_alerts_and_cameras(client, owner, camera, alert,
                                                                            settings):
    in_app_rule(owner)
    alert(event(camera, "critical"))
    client.force_login(owner)

    def queries(page):
        client.get(reverse(page))  # sessions, permission caches and the like warmed up as for a user
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse(page)).status_code == 200
        return len(ctx.captured_queries)

    few = {page: queries(page) for page in ("dashboard", "event-list-page", "preferences")}
    cameras = [CameraFactory() for _ in range(6)]
    for cam in cameras:
        grant(owner, cam)
        alert(*[event(cam, severity, minutes) for minutes, severity in enumerate(["high", "critical"] * 5)])
    assert len(json_script(client.get(reverse("preferences")).content.decode(), "open-alerts")["events"]) == 61
    many = {page: queries(page) for page in few}
    assert many == few

    # The badge is one query on pages that already know which cameras the user may view (the context
    # processor taken away: one less). Elsewhere it also loads the user's global permissions, as any camera
    # check does (two queries Django keeps on the request's user).
    options = settings.TEMPLATES[0]["OPTIONS"]
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "OPTIONS": {**options, "context_processors": [
        p for p in options["context_processors"] if p != "surveillance.context_processors.open_alerts"]}}]
    without = {page: queries(page) for page in few}
    assert 'id="alert-badge"' in client.get(reverse("dashboard")).content.decode()  # the markup stays, empty
    assert without["dashboard"] == many["dashboard"] - 1
    assert without["event-list-page"] == many["event-list-page"] - 1
    assert without["preferences"] == many["preferences"] - 3


def test_alert_sound_is_a_preference_default_on(client, owner, api_as):
    assert UserFactory().alert_sound is True
    client.force_login(owner)
    html = client.get(reverse("preferences")).content.decode()
    assert 'data-alert-sound="1"' in html and 'id="alert-sound"' in html and "sounds/alert.wav" in html
    assert 'name="alert_sound"' in html and 'id="desktop-notifications"' in html
    client.post(reverse("preferences"), {"language": "", "time_zone": "UTC"})  # the box unticked
    owner.refresh_from_db()
    assert owner.alert_sound is False
    html = client.get(reverse("dashboard")).content.decode()
    assert 'data-alert-sound="0"' in html and 'id="alert-sound"' not in html
    assert api_as(owner).get("/api/v1/auth/me/").json()["alert_sound"] is False
    client.post(reverse("preferences"), {"language": "", "time_zone": "UTC", "alert_sound": "on"})
    owner.refresh_from_db()
    assert owner.alert_sound is True


def test_the_new_words_speak_korean(client, owner, camera, alert):
    in_app_rule(owner)
    alert(event(camera, "critical"))
    owner.language = "ko"
    owner.save()
    client.force_login(owner)
    html = client.get(reverse("preferences")).content.decode()
    for english in ("Unacknowledged alerts", "Open the event", "Dismiss", "Allow desktop notifications",
                    "Play a sound for high and critical alerts", "Desktop notifications are off."):
        assert english not in html, english
    assert 'data-open="이벤트 열기"' in html and "데스크톱 알림 허용" in html
    # notify.js fills in the count itself: the placeholder survives the translation
    assert 'data-badge="확인하지 않은 알림: %(count)s"' in html and 'aria-label="확인하지 않은 알림: 1"' in html
    assert 'data-sev-critical="심각"' in html
