"""Dashboard, camera, events list, event page and my alerts: content, actions and query counts."""

import json
import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from alerts.models import AlertRule
from alerts.services import alert_rule_create, notification_channel_create
from events.models import AnomalyEvent
from tests.conftest import ROOT
from tests.factories import CameraFactory, EventFactory
from tests.pages.conftest import event_with_details, grant, many

pytestmark = pytest.mark.django_db

#: "A handful": the most queries any page may issue, whatever the number of cameras or events.
MAX_QUERIES = 12  # the alerts page also loads each rule's escalation steps (one prefetch)


def json_script(html, element_id):
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(match.group(1))


# -- dashboard --------------------------------------------------------------------------------------
def test_dashboard_shows_each_camera_with_state_and_its_latest_event(client, owner, camera):
    old = EventFactory(camera=camera, started_at=timezone.now() - timedelta(hours=2), description="older one")
    new = EventFactory(camera=camera, started_at=timezone.now() - timedelta(minutes=1), description="newest one")
    quiet = CameraFactory(name="Quiet camera", state="reconnecting")
    grant(owner, quiet)
    client.force_login(owner)
    html = client.get(reverse("dashboard")).content.decode()
    tile = html[html.index(f'data-camera="{camera.pk}"'):html.index(f'data-camera="{quiet.pk}"')] \
        if html.index(f'data-camera="{camera.pk}"') < html.index(f'data-camera="{quiet.pk}"') else \
        html[html.index(f'data-camera="{camera.pk}"'):]
    assert f'data-event="{new.pk}"' in tile and f'data-event="{old.pk}"' not in tile.split("</article>")[0]
    assert "state-reconnecting" in html and "Reconnecting" in html
    assert 'data-role="frame"' in html  # the live picture, filled over the WebSocket
    assert "js/live.js" in html and "js/dashboard.js" in html
    assert json_script(html, "state-labels")["error"] == "Error"


@pytest.mark.parametrize("who", ["owner", "staff"])
def test_dashboard_queries_do_not_grow_with_cameras_or_events(client, django_assert_max_num_queries, who, request):
    user = request.getfixturevalue(who)
    many(25, 8, user)
    client.force_login(user)
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    assert response.content.decode().count('class="tile"') >= 25


# -- camera page ------------------------------------------------------------------------------------
def test_camera_page_has_live_view_fps_choice_timeline_and_controls(client, owner, camera):
    recent = event_with_details(camera, started_at=timezone.now() - timedelta(hours=1))
    event_with_details(camera, started_at=timezone.now() - timedelta(hours=30))  # outside the 24 hours
    client.force_login(owner)
    html = client.get(reverse("camera-page", args=[camera.pk])).content.decode()
    for fps in (1, 5, 10, 30):
        assert f'<option value="{fps}"' in html
    timeline = json_script(html, "timeline")
    assert [e["id"] for e in timeline["events"]] == [str(recent.pk)]
    assert timeline["events"][0]["curve"][1] == [0.2, 0.91] and timeline["threshold"] == camera.threshold
    assert 'data-action="start"' in html  # stopped camera: start is offered to an operator
    assert "vendor/uplot/uPlot.iife.min.js" in html
    assert str(recent.pk) in html


def test_operator_starts_and_stops_the_camera(client, owner, camera, dispatched, django_capture_on_commit_callbacks):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("camera-page-start", args=[camera.pk]))
    assert response.status_code == 302
    camera.refresh_from_db()
    assert camera.enabled and camera.state == "starting" and dispatched == [camera.pk]
    assert 'data-action="stop"' in client.get(reverse("camera-page", args=[camera.pk])).content.decode()
    client.post(reverse("camera-page-stop", args=[camera.pk]))
    camera.refresh_from_db()
    assert not camera.enabled and camera.state == "stopped"
    assert client.get(reverse("camera-page-stop", args=[camera.pk])).status_code == 405


def test_camera_page_queries_do_not_grow_with_events(client, owner, camera, django_assert_max_num_queries):
    for i in range(120):
        event_with_details(camera, started_at=timezone.now() - timedelta(minutes=i))
    client.force_login(owner)
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(reverse("camera-page", args=[camera.pk]))
    assert response.status_code == 200


# -- events list ------------------------------------------------------------------------------------
def test_event_list_filters(client, owner, camera):
    other = CameraFactory(name="Back door")
    grant(owner, other)
    now = timezone.now()
    a = EventFactory(camera=camera, severity="high", started_at=now - timedelta(hours=1))
    b = EventFactory(camera=other, severity="low", started_at=now - timedelta(hours=3))
    c = EventFactory(camera=camera, severity="low", status="acknowledged", started_at=now - timedelta(hours=5))
    client.force_login(owner)

    def shown(**query):
        html = client.get(reverse("event-list-page"), query).content.decode()
        return {e for e in (a, b, c) if f'data-event="{e.pk}"' in html}

    assert shown() == {a, b, c}
    assert shown(camera=camera.pk) == {a, c}
    assert shown(severity="low") == {b, c}
    assert shown(status="acknowledged") == {c}
    fmt = "%Y-%m-%dT%H:%M"
    assert shown(since=(now - timedelta(hours=4)).strftime(fmt)) == {a, b}
    assert shown(until=(now - timedelta(hours=2)).strftime(fmt)) == {b, c}
    html = client.get(reverse("event-list-page"), {"since": "2026-01-02T00:00", "until": "2026-01-01T00:00"}).content
    assert b"Must be later" in html


def test_event_list_pages_and_counts_queries(client, owner, django_assert_max_num_queries):
    cameras = many(6, 25, owner, "view_camera", "operate_camera")
    client.force_login(owner)
    with django_assert_max_num_queries(MAX_QUERIES):
        html = client.get(reverse("event-list-page")).content.decode()
    assert html.count('type="checkbox" name="event"') == 50
    assert "Page 1 of 3" in html
    page3 = client.get(reverse("event-list-page"), {"page": 3, "camera": cameras[0].pk}).content.decode()
    assert "Page 1 of 1" not in page3  # page beyond the filtered range: the last page
    assert page3.count('data-event="') == 25


def test_bulk_acknowledge_only_touches_events_the_user_may_operate(client, viewer, camera):
    operable = CameraFactory(name="Gate")
    grant(viewer, operable, "view_camera", "operate_camera")
    mine = [EventFactory(camera=operable) for _ in range(3)]
    done = EventFactory(camera=operable, status="resolved")
    view_only = EventFactory(camera=camera)
    client.force_login(viewer)
    html = client.get(reverse("event-list-page")).content.decode()
    assert f'value="{view_only.pk}"' not in html and f'value="{mine[0].pk}"' in html
    response = client.post(reverse("event-bulk-acknowledge"), {
        "event": [str(e.pk) for e in (*mine, done, view_only)] + ["not-a-uuid"],
        "next": reverse("event-list-page") + "?severity=medium"})
    assert response.status_code == 302 and response["Location"].endswith("?severity=medium")
    statuses = dict(AnomalyEvent.objects.values_list("id", "status"))
    assert all(statuses[e.pk] == "acknowledged" for e in mine)
    assert statuses[done.pk] == "resolved" and statuses[view_only.pk] == "new"
    assert AnomalyEvent.objects.get(pk=mine[0].pk).acknowledged_by == viewer
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert "3 events acknowledged." in texts[0]
    assert client.post(reverse("event-bulk-acknowledge"), {"event": [], "next": "https://evil.example/"})[
        "Location"] == reverse("event-list-page")


# -- event page -------------------------------------------------------------------------------------
def test_event_page_shows_region_clip_decision_curve_and_history(client, owner, camera, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "events/clips").mkdir(parents=True)
    (tmp_path / "events/clips/x.webm").write_bytes(b"\x1aE\xdf\xa3" + b"0" * 100)
    event = event_with_details(camera, clip="events/clips/x.webm", snapshot="events/snapshots/x.jpg",
                               decision={"severity": "high", "actions": ["record", "alert_now"],
                                         "reasons": ["peak score 0.91 is 1.8x the threshold"], "policy": "rules"},
                               description="A person falls near the bench.")
    client.force_login(owner)
    html = client.get(reverse("event-page", args=[event.pk])).content.decode()
    assert '<svg viewBox="0 0 640 360"' in html and '<rect x="100" y="50" width="80" height="120">' in html
    assert f'src="{reverse("event-clip-webm", args=[event.pk])}"' in html and "<video" in html  # a WebM clip keeps its address
    assert "A person falls near the bench." in html and "peak score 0.91 is 1.8x the threshold" in html
    assert "record, alert now" in html  # the actions in words (events/reasons.py)
    curve = json_script(html, "curve")
    assert curve["points"][1] == [0.2, 0.91] and curve["threshold"] == 0.5
    for action in ("acknowledge", "resolve", "false-alarm"):
        assert f'data-action="{action}"' in html

    response = client.post(reverse("event-page-acknowledge", args=[event.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("event-page", args=[event.pk])
    html = client.get(reverse("event-page", args=[event.pk])).content.decode()
    assert "Acknowledged by owner at" in html and 'data-action="acknowledge"' not in html
    client.post(reverse("event-page-resolve", args=[event.pk]), {"false_alarm": "1"})
    event.refresh_from_db()
    assert event.status == "false_alarm" and event.resolved_by == owner
    html = client.get(reverse("event-fragment", args=[event.pk, "actions"])).content.decode()
    assert "Marked as a false alarm by owner at" in html and "data-action" not in html
    # acting again on a closed case is refused with a message, not an error page
    response = client.post(reverse("event-page-acknowledge", args=[event.pk]), follow=True)
    assert response.status_code == 200 and "already" in response.content.decode()


def test_event_page_and_fragments_query_counts(client, owner, camera, django_assert_max_num_queries):
    event = event_with_details(camera)
    client.force_login(owner)
    for url in [reverse("event-page", args=[event.pk])] + [
            reverse("event-fragment", args=[event.pk, kind]) for kind in ("row", "tile", "actions", "analysis")]:
        with django_assert_max_num_queries(MAX_QUERIES):
            assert client.get(url).status_code == 200
    assert client.get(reverse("event-fragment", args=[event.pk, "nope"])).status_code == 404


def test_open_event_explains_that_the_clip_comes_later(client, owner, camera):
    event = EventFactory(camera=camera, ended_at=None)
    client.force_login(owner)
    html = client.get(reverse("event-page", args=[event.pk])).content.decode()
    assert "its clip is stored when it ends" in html and "still going on" in html


@pytest.mark.parametrize("vlm, ended, says", [
    ("none", False, "this camera has no vision-language model"),  # none will come: say so, and how to set one
    ("none", True, "this camera has no vision-language model"),
    ("openai", False, "The description is on its way"),  # asked when it opens and at its peak
    ("openai", True, "The model gave no description for this event."),
])
def test_event_page_says_why_there_is_no_description(client, owner, camera, vlm, ended, says):
    camera.vlm_backend = vlm
    camera.save(update_fields=["vlm_backend"])
    event = EventFactory(camera=camera, description="", ended_at=timezone.now() if ended else None)
    client.force_login(owner)
    html = client.get(reverse("event-page", args=[event.pk])).content.decode()
    assert says in html
    assert "when the event ends" not in html  # descriptions no longer wait for the end (description queue)


# -- my alerts --------------------------------------------------------------------------------------
def test_my_alerts_lists_own_channels_and_rules_and_sends_a_test(client, viewer, camera, other_camera, outsider,
                                                                 mailoutbox, django_assert_max_num_queries):
    channel = notification_channel_create(owner=viewer, name="My mail", kind="email", email="v@example.com")
    alert_rule_create(owner=viewer, name="Walkway high", all_cameras=False, cameras=[camera.pk],
                      channels=[channel.pk], min_severity="high")
    theirs = notification_channel_create(owner=outsider, name="Their mail", kind="email", email="o@example.com")
    # a rule naming a camera the viewer may no longer view (access revoked since) does not name it
    stale = AlertRule.objects.create(owner=viewer, name="Stale rule", all_cameras=False)
    stale.cameras.add(other_camera)
    client.force_login(viewer)
    with django_assert_max_num_queries(MAX_QUERIES):
        html = client.get(reverse("my-alerts")).content.decode()
    assert "My mail" in html and "Walkway high" in html and camera.name in html
    assert "Their mail" not in html and other_camera.name not in html
    response = client.post(reverse("my-alerts-test", args=[channel.pk]), follow=True)
    assert "Test alert sent through My mail." in response.content.decode()
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["v@example.com"]
    assert client.post(reverse("my-alerts-test", args=[theirs.pk])).status_code == 403
    assert len(mailoutbox) == 1


def test_the_product_has_an_icon(client, owner):
    client.force_login(owner)
    html = client.get(reverse("dashboard")).content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    icon = client.get("/favicon.ico")
    assert icon.status_code == 301 and icon["Location"] == "/static/favicon.svg"
    assert (ROOT / "static" / "favicon.svg").read_text().startswith("<svg")
