"""/api/v1/notification-channels/, /api/v1/alert-rules/, /api/v1/alerts/, the admin action and the schedule."""

import pytest
from django.core import mail
from rest_framework.test import APIClient

from alerts.models import AlertRule, Delivery, NotificationChannel
from tests.alerts.conftest import SECRET, make_channel, make_rule
from tests.factories import CameraFactory, EventFactory

pytestmark = pytest.mark.django_db

CHANNELS = "/api/v1/notification-channels/"
RULES = "/api/v1/alert-rules/"
ALERTS = "/api/v1/alerts/"


def webhook_body(**extra):
    return {"name": "ops hook", "kind": "webhook", "url": "https://hooks.example.com/alerts", "secret": SECRET,
            **extra}


def test_channel_crud_and_the_secret_is_write_only(api_as, owner):
    client = api_as(owner)
    response = client.post(CHANNELS, webhook_body(), format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert "secret" not in created and created["has_secret"] is True
    channel_id = created["id"]
    assert NotificationChannel.objects.get(pk=channel_id).secret == SECRET
    listed = client.get(CHANNELS).json()["results"]
    detail = client.get(f"{CHANNELS}{channel_id}/").json()
    patched = client.patch(f"{CHANNELS}{channel_id}/", {"name": "renamed"}, format="json").json()
    for body in (listed, detail, patched):
        assert SECRET not in str(body) and "secret" not in (body[0] if isinstance(body, list) else body)
    assert patched["name"] == "renamed" and NotificationChannel.objects.get(pk=channel_id).secret == SECRET
    new_secret = "another-long-secret-value"
    assert client.patch(f"{CHANNELS}{channel_id}/", {"secret": new_secret}, format="json").status_code == 200
    assert NotificationChannel.objects.get(pk=channel_id).secret == new_secret
    put = client.put(f"{CHANNELS}{channel_id}/", {"name": "mail", "kind": "email", "email": "o@example.com"},
                     format="json")
    assert put.status_code == 200 and put.json()["kind"] == "email"
    assert client.delete(f"{CHANNELS}{channel_id}/").status_code == 204
    assert not NotificationChannel.objects.exists()


@pytest.mark.parametrize("url", [
    "ftp://hooks.example.com/x", "http://", "https:///path-only", "not a url", "hooks.example.com/x",
    "http://exa mple.com/x", "https://example.com:99999/x", "javascript:alert(1)", "",
])
def test_a_malformed_webhook_url_is_a_400_naming_the_field(api_as, owner, url):
    response = api_as(owner).post(CHANNELS, webhook_body(url=url), format="json")
    assert response.status_code == 400 and "url" in response.json(), response.json()
    assert not NotificationChannel.objects.exists()


def test_malformed_url_on_update_is_a_400_too(api_as, owner):
    channel = make_channel(owner, kind="webhook")
    response = api_as(owner).patch(f"{CHANNELS}{channel.pk}/", {"url": "gopher://x"}, format="json")
    assert response.status_code == 400 and "url" in response.json()
    channel.refresh_from_db()
    assert channel.url == "https://example.com/hook"


@pytest.mark.parametrize("body,field", [
    (webhook_body(secret=""), "secret"),
    (webhook_body(secret="short"), "secret"),
    ({"name": "x", "kind": "apprise", "url": "nosuchservice://abc"}, "url"),
    ({"name": "x", "kind": "email", "email": "not-an-address"}, "email"),
    ({"name": "x", "kind": "pigeon"}, "kind"),
])
def test_other_invalid_channels_are_400s_naming_the_field(api_as, owner, body, field):
    response = api_as(owner).post(CHANNELS, body, format="json")
    assert response.status_code == 400 and field in response.json(), response.json()


def test_apprise_and_email_channels(api_as, owner):
    client = api_as(owner)
    for body in ({"name": "ntfy", "kind": "apprise", "url": "ntfy://my-topic"},
                 {"name": "slack", "kind": "apprise", "url": "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"},
                 {"name": "me", "kind": "email"}):
        assert client.post(CHANNELS, body, format="json").status_code == 201


def test_rule_crud(api_as, owner, camera):
    client = api_as(owner)
    channel = make_channel(owner)
    body = {"name": "nights", "all_cameras": False, "cameras": [camera.pk], "min_severity": "high",
            "quiet_start": "22:00", "quiet_end": "07:00", "time_zone": "Asia/Seoul", "channels": [channel.pk]}
    response = client.post(RULES, body, format="json")
    assert response.status_code == 201, response.json()
    rule = response.json()
    assert rule["cameras"] == [camera.pk] and rule["channels"] == [channel.pk]
    assert rule["quiet_start"] == "22:00:00" and rule["min_severity"] == "high"
    url = f"{RULES}{rule['id']}/"
    assert client.get(RULES).json()["results"][0]["id"] == rule["id"]
    patched = client.patch(url, {"min_severity": "medium", "channels": []}, format="json").json()
    assert patched["min_severity"] == "medium" and patched["channels"] == [] and patched["cameras"] == [camera.pk]
    assert rule["kinds"] == []  # every kind
    patched = client.patch(url, {"kinds": ["camera_offline", "camera_health", "camera_health"]}, format="json").json()
    assert patched["kinds"] == ["camera_health", "camera_offline"]  # each once, in a fixed order
    assert client.delete(url).status_code == 204 and not AlertRule.objects.exists()


@pytest.mark.parametrize("body,field", [
    ({"name": "r", "min_severity": "apocalyptic"}, "min_severity"),
    ({"name": "r", "quiet_start": "22:00"}, "quiet_end"),
    ({"name": "r", "time_zone": "Mars/Olympus"}, "time_zone"),
    ({"name": "r", "all_cameras": False}, "cameras"),
    ({"name": "r", "kinds": ["tamper"]}, "kinds"),
    ({"name": "r", "kinds": "scene"}, "kinds"),
])
def test_invalid_rules_are_400s_naming_the_field(api_as, owner, body, field):
    response = api_as(owner).post(RULES, body, format="json")
    assert response.status_code == 400 and field in response.json(), response.json()


def test_a_rule_cannot_name_a_camera_the_user_may_not_view_or_anothers_channel(api_as, owner, outsider, camera):
    client = api_as(outsider)
    response = client.post(RULES, {"name": "spy", "all_cameras": False, "cameras": [camera.pk]}, format="json")
    assert response.status_code == 400 and "cameras" in response.json()
    theirs = make_channel(owner)
    response = client.post(RULES, {"name": "spy", "channels": [theirs.pk]}, format="json")
    assert response.status_code == 400 and "channels" in response.json()
    assert not AlertRule.objects.exists()


def test_test_endpoint_sends_and_records_a_test_alert(api_as, owner, hook):
    channel = make_channel(owner, kind="webhook", url=hook.url())
    response = api_as(owner).post(f"{CHANNELS}{channel.pk}/test/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "sent" and body["mode"] == "test" and body["events"] == []
    assert hook.json()["type"] == "test"
    assert [d["id"] for d in api_as(owner).get(ALERTS).json()["results"]] == [body["id"]]


def test_test_endpoint_reports_a_failure(api_as, owner, hook):
    hook.statuses = [500]
    channel = make_channel(owner, kind="webhook", url=hook.url())
    body = api_as(owner).post(f"{CHANNELS}{channel.pk}/test/").json()
    assert body["status"] == "failed" and "HTTP 500" in body["error"] and body["attempts"] == 1


def test_admin_action_sends_a_test_alert(admin_client, owner):
    channel = make_channel(owner, kind="email")
    response = admin_client.post("/admin/alerts/notificationchannel/",
                                 {"action": "send_test_alert", "_selected_action": [channel.pk]}, follow=True)
    assert response.status_code == 200 and "Test alert sent" in response.content.decode()
    assert len(mail.outbox) == 1 and mail.outbox[0].subject.startswith("Test alert")
    assert Delivery.objects.get().mode == "test"


def test_admin_pages_render_and_never_show_the_secret(admin_client, owner):
    channel = make_channel(owner, kind="webhook")
    page = admin_client.get(f"/admin/alerts/notificationchannel/{channel.pk}/change/")
    assert page.status_code == 200 and SECRET not in page.content.decode()
    # Saving the form without typing a secret keeps it.
    data = {"name": "renamed", "kind": "webhook", "owner": owner.pk, "url": channel.url, "email": "",
            "secret": "", "enabled": "on"}
    response = admin_client.post(f"/admin/alerts/notificationchannel/{channel.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    channel.refresh_from_db()
    assert channel.name == "renamed" and channel.secret == SECRET
    for path in ("alertrule/", "alertrule/add/", "delivery/", "alertitem/", "notificationchannel/add/"):
        assert admin_client.get(f"/admin/alerts/{path}").status_code == 200, path


def test_deliveries_list_and_filters(api_as, owner, camera, route, run_queued):
    channel = make_channel(owner)
    make_rule(owner, channels=[channel])
    event = EventFactory(camera=camera, severity="critical")
    route(event)
    run_queued()
    client = api_as(owner)
    results = client.get(ALERTS).json()["results"]
    assert len(results) == 1
    assert results[0]["events"] == [str(event.pk)] and results[0]["status"] == "sent"
    assert results[0]["channel"] == channel.pk and results[0]["sent_at"]
    assert client.get(ALERTS, {"status": "failed"}).json()["results"] == []
    assert client.get(ALERTS, {"status": "bogus"}).status_code == 400
    assert client.get(f"{ALERTS}{results[0]['id']}/").json()["id"] == results[0]["id"]


def test_outsiders_are_refused_on_every_alerts_endpoint(api_as, owner, outsider, camera, route, run_queued):
    channel = make_channel(owner, kind="webhook")
    rule = make_rule(owner, channels=[channel])
    make_rule(owner, notify_in_app=True, name="in-app")
    route(EventFactory(camera=camera, severity="critical"))
    delivery = Delivery.objects.filter(recipient=owner).first()
    assert delivery is not None
    mine = api_as(owner)
    theirs = api_as(outsider)
    # Lists: each user sees their own only.
    assert len(mine.get(CHANNELS).json()["results"]) == 1 and theirs.get(CHANNELS).json()["results"] == []
    assert len(mine.get(RULES).json()["results"]) == 2 and theirs.get(RULES).json()["results"] == []
    assert len(mine.get(ALERTS).json()["results"]) == 2 and theirs.get(ALERTS).json()["results"] == []
    # Objects: 404 for someone else's, exactly as for a missing one.
    calls = [
        ("get", f"{CHANNELS}{channel.pk}/", None), ("put", f"{CHANNELS}{channel.pk}/", webhook_body()),
        ("patch", f"{CHANNELS}{channel.pk}/", {"name": "mine now"}), ("delete", f"{CHANNELS}{channel.pk}/", None),
        ("post", f"{CHANNELS}{channel.pk}/test/", None),
        ("get", f"{RULES}{rule.pk}/", None), ("put", f"{RULES}{rule.pk}/", {"name": "mine now"}),
        ("patch", f"{RULES}{rule.pk}/", {"name": "mine now"}), ("delete", f"{RULES}{rule.pk}/", None),
        ("get", f"{ALERTS}{delivery.pk}/", None),
    ]
    for method, url, body in calls:
        response = getattr(theirs, method)(url, body, format="json")
        assert response.status_code == 404, (method, url, response.status_code)
        anonymous = getattr(APIClient(), method)(url, body, format="json")
        assert anonymous.status_code == 401, (method, url, anonymous.status_code)
    for url in (CHANNELS, RULES, ALERTS):
        assert APIClient().get(url).status_code == 401
    assert mine.post(ALERTS, {}, format="json").status_code == 405
    assert mine.delete(f"{ALERTS}{delivery.pk}/").status_code == 405
    # Nothing changed and nothing was sent by the outsider's attempts.
    channel.refresh_from_db()
    rule.refresh_from_db()
    assert channel.name == "webhook channel" and rule.name == "rule"
    assert not Delivery.objects.filter(mode="test").exists()


def test_a_user_never_sees_anothers_deliveries_even_of_the_same_camera(api_as, owner, viewer, camera, route):
    for user in (owner, viewer):
        make_rule(user, channels=[make_channel(user)])
    route(EventFactory(camera=camera, severity="critical"))
    for user in (owner, viewer):
        results = api_as(user).get(ALERTS).json()["results"]
        assert len(results) == 1 and Delivery.objects.get(pk=results[0]["id"]).recipient == user


def test_the_digest_schedule_is_defined_once_and_stored_in_the_database(settings):
    from django_celery_beat.models import PeriodicTask

    from surveillance.schedules import beat_schedules, ensure_beat_schedules

    settings.ALERT_DIGEST_SECONDS = 7
    assert beat_schedules()["alerts-digest"] == {"task": "alerts.tasks.alerts_digest", "every": 7}
    assert "alerts-digest" in ensure_beat_schedules()
    task = PeriodicTask.objects.get(name="alerts-digest")
    assert task.task == "alerts.tasks.alerts_digest" and task.interval.every == 7
    assert "alerts-digest" not in ensure_beat_schedules()  # an administrator's change survives


def test_schema_lists_the_alert_endpoints(api_as, owner):
    schema = api_as(owner).get("/api/v1/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in ("/api/v1/notification-channels/", "/api/v1/notification-channels/{channel_id}/test/",
                 "/api/v1/alert-rules/", "/api/v1/alerts/"):
        assert path in schema


def test_other_cameras_of_the_user_are_accepted(api_as, owner):
    other = CameraFactory()
    response = api_as(owner).post(RULES, {"name": "r", "all_cameras": False, "cameras": [other.pk]}, format="json")
    assert response.status_code == 400  # not viewable
    from guardian.shortcuts import assign_perm

    assign_perm("view_camera", owner, other)
    response = api_as(owner).post(RULES, {"name": "r", "all_cameras": False, "cameras": [other.pk]}, format="json")
    assert response.status_code == 201
