"""Sending: the signed webhook (checked by an independent verifier), retries against a real local
server, permanent failure, Apprise and email."""

import hashlib
import hmac
import json
import time

import pytest
from django.core import mail

from alerts.models import Delivery
from tests.alerts.conftest import SECRET, make_channel, make_rule
from tests.factories import EventFactory

pytestmark = pytest.mark.django_db

REPLAY_WINDOW = 300  # seconds, as docs/alerts.md recommends


def verify(headers: dict, body: bytes, secret: str, now: float | None = None) -> bool:
    """A receiver's check, written from docs/alerts.md only (no project code)."""
    timestamp = headers.get("X-Alert-Timestamp", "")
    signature = headers.get("X-Alert-Signature", "")
    if not timestamp.isdigit() or not signature.startswith("sha256="):
        return False
    if abs((now or time.time()) - int(timestamp)) > REPLAY_WINDOW:
        return False  # too old (or from the future): a replay
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature[len("sha256="):])


def test_webhook_posts_the_event_json_signed_with_hmac_sha256(camera, owner, hook, route, run_queued):
    channel = make_channel(owner, kind="webhook", url=hook.url())
    make_rule(owner, channels=[channel])
    event = EventFactory(camera=camera, severity="critical", description="Smoke near the door.")
    route(event)
    run_queued()
    assert len(hook.requests) == 1
    request = hook.requests[0]
    assert request["path"] == "/hook" and request["headers"]["Content-Type"] == "application/json"
    assert verify(request["headers"], request["body"], SECRET)
    # Tampering, another secret, or an old timestamp all fail.
    assert not verify(request["headers"], request["body"] + b" ", SECRET)
    assert not verify(request["headers"], request["body"], "another-secret-of-some-length")
    assert not verify(request["headers"], request["body"], SECRET, now=time.time() + REPLAY_WINDOW + 5)
    payload = json.loads(request["body"])
    assert payload["type"] == "alert" and payload["severity"] == "critical"
    assert payload["event"]["id"] == str(event.pk) and payload["event"]["camera"] == camera.pk
    assert payload["event"]["description"] == "Smoke near the door."
    assert payload["event"]["url"].endswith(f"/events/{event.pk}/")
    delivery = Delivery.objects.get()
    assert request["headers"]["X-Alert-Delivery"] == str(delivery.pk) and payload["delivery"] == delivery.pk
    assert SECRET not in request["body"].decode() and SECRET not in json.dumps(dict(request["headers"]))


def test_a_webhook_that_fails_twice_then_succeeds_is_retried_with_backoff(camera, owner, hook, route, run_queued,
                                                                         alert_queue, settings):
    settings.ALERT_RETRY_BASE_SECONDS = 0.2
    settings.ALERT_MAX_ATTEMPTS = 5
    hook.statuses = [500, 503]
    channel = make_channel(owner, kind="webhook", url=hook.url())
    make_rule(owner, channels=[channel])
    route(EventFactory(camera=camera, severity="high"))
    delivery = Delivery.objects.get()

    countdowns = []
    while alert_queue:
        countdowns.append(alert_queue[0][1])
        run_queued(limit=1)
    assert countdowns == [None, 0.2, 0.4]  # exponential backoff: base, 2 * base
    assert [r["status"] for r in hook.requests] == [500, 503, 200]
    gaps = [b["at"] - a["at"] for a, b in zip(hook.requests, hook.requests[1:])]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4
    assert [r["headers"]["X-Alert-Attempt"] for r in hook.requests] == ["1", "2", "3"]
    assert all(verify(r["headers"], r["body"], SECRET) for r in hook.requests)  # each attempt signed anew
    assert len({r["headers"]["X-Alert-Delivery"] for r in hook.requests}) == 1  # one delivery, three attempts
    delivery.refresh_from_db()
    assert delivery.status == "sent" and delivery.attempts == 3 and delivery.error == ""


def test_an_attempt_that_is_not_due_or_already_done_does_nothing(camera, owner, hook, route, run_queued,
                                                                 alert_queue):
    from alerts.tasks import alert_deliver

    channel = make_channel(owner, kind="webhook", url=hook.url())
    make_rule(owner, channels=[channel])
    route(EventFactory(camera=camera, severity="critical"))
    delivery_id = alert_queue[0][0]
    run_queued()
    assert alert_deliver.run(delivery_id) == "done"  # a duplicate task: no second POST
    assert len(hook.requests) == 1


def test_after_the_last_attempt_the_delivery_is_failed_and_visible(camera, owner, hook, route, run_queued,
                                                                   alert_queue, settings, api_as, admin_client,
                                                                   django_capture_on_commit_callbacks):
    settings.ALERT_RETRY_BASE_SECONDS = 0.01
    settings.ALERT_MAX_ATTEMPTS = 3
    hook.statuses = [500] * 10
    channel = make_channel(owner, kind="webhook", url=hook.url())
    make_rule(owner, channels=[channel])
    route(EventFactory(camera=camera, severity="critical"))
    run_queued()
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == 3 and "HTTP 500" in delivery.error
    assert len(hook.requests) == 3 and alert_queue == []
    listed = api_as(owner).get("/api/v1/alerts/?status=failed").json()["results"]
    assert [(d["id"], d["status"], d["attempts"]) for d in listed] == [(delivery.pk, "failed", 3)]
    assert "HTTP 500" in listed[0]["error"]
    page = admin_client.get("/admin/alerts/delivery/?status__exact=failed")
    assert page.status_code == 200 and f"/admin/alerts/delivery/{delivery.pk}/change/" in page.content.decode()
    # An administrator can queue it again.
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post("/admin/alerts/delivery/",
                                     {"action": "retry_failed", "_selected_action": [delivery.pk]})
    assert response.status_code == 302
    hook.statuses = []
    run_queued()
    delivery.refresh_from_db()
    assert delivery.status == "sent" and delivery.attempts == 4


def test_unreachable_webhook_is_an_error_not_a_crash(camera, owner, route, run_queued, settings):
    settings.ALERT_MAX_ATTEMPTS = 1
    channel = make_channel(owner, kind="webhook", url="http://127.0.0.1:9/hook")
    make_rule(owner, channels=[channel])
    route(EventFactory(camera=camera, severity="critical"))
    run_queued()
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and "ConnectionError" in delivery.error


def test_apprise_channel_reaches_the_service(camera, owner, hook, route, run_queued):
    channel = make_channel(owner, kind="apprise", url=f"json://127.0.0.1:{hook.port}/apprise")
    make_rule(owner, channels=[channel])
    event = EventFactory(camera=camera, severity="critical", description="A person falls.")
    route(event)
    run_queued()
    assert Delivery.objects.get().status == "sent"
    body = hook.json()
    assert hook.requests[0]["path"] == "/apprise"
    assert body["title"].startswith("[CRITICAL]") and f"/events/{event.pk}/" in body["message"]


def test_apprise_failure_is_recorded(camera, owner, hook, route, run_queued, settings):
    settings.ALERT_MAX_ATTEMPTS = 1
    hook.statuses = [500]
    channel = make_channel(owner, kind="apprise", url=f"json://127.0.0.1:{hook.port}/apprise")
    make_rule(owner, channels=[channel])
    route(EventFactory(camera=camera, severity="critical"))
    run_queued()
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and delivery.error


def test_email_channel_with_its_own_address(camera, owner, route, run_queued):
    channel = make_channel(owner, kind="email", email="pager@example.com")
    make_rule(owner, channels=[channel])
    route(EventFactory(camera=camera, severity="high"))
    run_queued()
    assert mail.outbox[0].to == ["pager@example.com"]


def test_disabled_channel_gets_nothing(camera, owner, route):
    channel = make_channel(owner, kind="email", enabled=False)
    make_rule(owner, channels=[channel])
    route(EventFactory(camera=camera, severity="critical"))
    assert not Delivery.objects.exists()


def test_email_on_a_site_whose_mail_goes_to_the_console_is_never_reported_sent(camera, owner, route, run_queued,
                                                                                settings, api_as):
    # make run's default: EMAIL_BACKEND prints to the server's console; nobody receives anything.
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    settings.ALERT_MAX_ATTEMPTS = 5
    channel = make_channel(owner, kind="email", email="guard@example.com")
    make_rule(owner, channels=[channel])
    route(EventFactory(camera=camera, severity="critical"))
    run_queued()
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == 1  # retrying cannot help
    assert "Email is not set up on this site" in delivery.error and "EMAIL_HOST" in delivery.error
    # The channel's test says so too.
    test = api_as(owner).post(f"/api/v1/notification-channels/{channel.pk}/test/")
    run_queued()
    tested = Delivery.objects.exclude(pk=delivery.pk).get()
    assert tested.status == "failed" and "Email is not set up" in tested.error, test.json()
