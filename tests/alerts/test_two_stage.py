"""Two-stage alerts: the first alert goes out when the episode opens and says what the detector saw;
the description (and the final severity) that come later are a follow-up linked to it, never a
second alert (docs/alerts.md, "Two-stage alerts").

Events are stored as the worker stores them (``events.services.event_records_store``: the
``events_stored`` announcement routes them), and sent through real transports: a local HTTP
receiver (webhook and Apprise's ``json://``), Django's test mailbox, the channel layer.
"""

import hashlib
import hmac
import json
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core import mail
from django.utils import timezone
from guardian.shortcuts import remove_perm

from alerts.models import AlertItem, Delivery
from cameras.groups import user_group
from tests.alerts.conftest import SECRET, make_channel, make_rule

pytestmark = pytest.mark.django_db

DESCRIPTION = "A man in a grey jacket climbs over the fence."

DETAILS = {
    "detector": "zoned",
    "objects": [{"id": 3, "track": 3, "label": "person", "box": [10, 10, 50, 90]}],
    "object_terms": [],
    "detector_details": {"zones": [{"name": "fence", "kind": "forbidden", "rule": "forbidden", "labels": ["person"],
                                    "seconds": 2.0, "area": 0.1, "active": True}]},
}


def opened(camera, severity="high", **extra) -> dict:
    """The record the worker emits when an episode opens: preliminary severity, no description."""
    return {"id": str(uuid.uuid4()), "camera_id": camera.pk, "started_at": timezone.now().isoformat(),
            "severity": severity, "peak_score": 0.9, "description": "", "labels": ["person"],
            "details": DETAILS, **extra}


@pytest.fixture
def pushes(owner):
    """Every ``notification`` the owner's open WebSockets got, read once at the end of a test (the
    channel layer's receive buffers belong to one event loop)."""
    layer = get_channel_layer()
    name = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group(owner.pk), name)
    yield lambda: async_to_sync(_drain)(layer, name)
    async_to_sync(layer.group_discard)(user_group(owner.pk), name)


async def _drain(layer, name, timeout=0.5) -> list[dict]:
    import asyncio

    got = []
    while True:
        try:
            got.append(await asyncio.wait_for(layer.receive(name), timeout))
        except asyncio.TimeoutError:
            return got


def signed(request) -> bool:
    ts, sig = request["headers"]["X-Alert-Timestamp"], request["headers"]["X-Alert-Signature"]
    expected = hmac.new(SECRET.encode(), ts.encode() + b"." + request["body"], hashlib.sha256).hexdigest()
    return sig == f"sha256={expected}"


@pytest.fixture
def everywhere(owner, hook):
    """The owner's email, webhook and Apprise channels, and in-app notifications, for every event."""
    channels = {
        "email": make_channel(owner, kind="email", email="pager@example.com"),
        "webhook": make_channel(owner, kind="webhook", url=hook.url("/hook")),
        "apprise": make_channel(owner, kind="apprise", url=f"json://127.0.0.1:{hook.port}/apprise"),
    }
    make_rule(owner, channels=list(channels.values()), notify_in_app=True)
    return channels


def test_the_first_alert_names_what_was_seen_and_the_description_follows_once(camera, owner, everywhere, hook,
                                                                              store, run_queued, alert_queue, pushes):
    record = opened(camera)
    store(record)
    run_queued()

    # Stage 1: one immediate alert per channel and in-app, saying what the detector saw.
    first = {d.medium: d for d in Delivery.objects.filter(mode="immediate")}
    assert sorted(first) == ["apprise", "email", "in_app", "webhook"]
    assert {d.status for d in first.values()} == {"sent"}
    seen = "Unusual motion; in view: person. In the forbidden zone 'fence'."
    assert len(mail.outbox) == 1
    first_mail = mail.outbox[0]
    assert first_mail.subject == f"[HIGH] {camera.name}: {seen}" and seen in first_mail.body
    first_message_id = first_mail.message()["Message-ID"]
    assert first_message_id and first_message_id.startswith(f"<alert-{first['email'].pk}.")
    hooked = [r for r in hook.requests if r["path"] == "/hook"]
    assert len(hooked) == 1 and seen in json.loads(hooked[0]["body"])["text"]
    apprised = [r for r in hook.requests if r["path"] == "/apprise"]
    assert len(apprised) == 1 and seen in json.loads(apprised[0]["body"])["message"]

    # Stage 2: the description arrives (the episode is still open): one follow-up per channel, linked.
    store({**record, "description": DESCRIPTION})
    run_queued()
    assert Delivery.objects.filter(mode="immediate").count() == 4  # no second full alert
    follow = {d.medium: d for d in Delivery.objects.filter(mode="follow_up")}
    assert sorted(follow) == ["apprise", "email", "in_app", "webhook"]
    for medium, delivery in follow.items():
        assert delivery.status == "sent" and delivery.follow_up_of_id == first[medium].pk
        assert delivery.follow_up_kind == "description"
        assert list(delivery.events.values_list("id", flat=True)) == [uuid.UUID(record["id"])]

    # Email: a reply to the first message.
    assert len(mail.outbox) == 2
    reply = mail.outbox[1]
    assert reply.to == ["pager@example.com"]
    assert reply.subject == f"Re: {first_mail.subject}"
    assert reply.extra_headers["In-Reply-To"] == first_message_id
    assert reply.extra_headers["References"] == first_message_id
    assert reply.message()["Message-ID"] != first_message_id
    assert reply.body.startswith(f"Update: {DESCRIPTION}") and f"/events/{record['id']}/" in reply.body

    # Webhook: signed as usual, saying which delivery it follows.
    hooked = [r for r in hook.requests if r["path"] == "/hook"]
    assert len(hooked) == 2 and signed(hooked[1])
    payload = json.loads(hooked[1]["body"])
    assert payload["type"] == "follow_up" and payload["kind"] == "description"
    assert payload["follow_up_of"] == first["webhook"].pk and payload["delivery"] == follow["webhook"].pk
    assert hooked[1]["headers"]["X-Alert-Delivery"] == str(follow["webhook"].pk)
    assert payload["description"] == DESCRIPTION and payload["event"]["description"] == DESCRIPTION

    # Apprise: a short update.
    apprised = [r for r in hook.requests if r["path"] == "/apprise"]
    assert len(apprised) == 2
    update = json.loads(apprised[1]["body"])
    assert update["message"].startswith(f"Update: {DESCRIPTION}") and update["title"].startswith("Re: [HIGH]")

    # The same description stored again (a re-emission), and the close at the same severity: nothing more.
    store({**record, "description": DESCRIPTION})
    store({**record, "description": DESCRIPTION, "ended_at": timezone.now().isoformat()})
    assert alert_queue == []
    assert Delivery.objects.count() == 8 and len(mail.outbox) == 2 and len(hook.requests) == 4

    # In-app: the first notification, then the same one (same delivery id) with the new text; nothing else.
    notification, changed = pushes()
    assert notification["payload"]["delivery"] == first["in_app"].pk and seen in notification["payload"]["title"]
    assert "update" not in notification["payload"]
    assert changed["type"] == "notification"
    assert changed["payload"]["delivery"] == first["in_app"].pk and changed["payload"]["update"] is True
    assert changed["payload"]["event"] == record["id"] and DESCRIPTION in changed["payload"]["title"]
    assert changed["payload"]["follow_up_of"] == first["in_app"].pk


def test_routing_the_same_update_twice_sends_one_follow_up(camera, owner, hook, store, run_queued, alert_queue,
                                                           django_capture_on_commit_callbacks):
    from alerts.services import alerts_route_events

    channel = make_channel(owner, kind="webhook", url=hook.url())
    make_rule(owner, channels=[channel])
    record = opened(camera)
    store(record)
    run_queued()
    store({**record, "description": DESCRIPTION})
    with django_capture_on_commit_callbacks(execute=True):
        alerts_route_events(event_ids=[record["id"]])  # a task delivered twice
    run_queued()
    assert Delivery.objects.filter(mode="follow_up").count() == 1
    assert [hook.json(i)["type"] for i in range(len(hook.requests))] == ["alert", "follow_up"]


def test_a_recipient_who_lost_access_gets_no_follow_up(camera, owner, hook, store, run_queued):
    channel = make_channel(owner, kind="webhook", url=hook.url())
    make_rule(owner, channels=[channel])
    record = opened(camera)
    store(record)
    run_queued()
    store({**record, "description": DESCRIPTION})  # the follow-up is routed and queued...
    follow_up = Delivery.objects.get(mode="follow_up")
    remove_perm("view_camera", owner, camera)  # ...then the access is revoked before it goes
    run_queued()
    follow_up.refresh_from_db()
    assert follow_up.status == "cancelled" and "may no longer view camera" in follow_up.error
    assert set(follow_up.items.values_list("state", flat=True)) == {AlertItem.State.WITHHELD}
    assert len(hook.requests) == 1  # the first alert only


def test_the_final_severity_is_a_follow_up_and_a_raise_to_critical_still_alerts(camera, owner, store, run_queued):
    channel = make_channel(owner, kind="email")
    make_rule(owner, channels=[channel])
    # Two events at once on one camera: of different kinds, so neither suppresses the other.
    lowered, raised = opened(camera), opened(camera, details={"objects": DETAILS["objects"]})
    store(lowered, raised)
    run_queued()
    assert len(mail.outbox) == 2 and Delivery.objects.filter(mode="immediate").count() == 2

    closed = timezone.now().isoformat()
    store({**lowered, "severity": "medium", "description": "Only a delivery man.", "ended_at": closed},
          {**raised, "severity": "critical", "description": "Someone forces the gate.", "ended_at": closed})
    run_queued()
    # Lowered: one follow-up with the description and the new severity, replying to the first alert.
    follow_up = Delivery.objects.get(mode="follow_up")
    assert follow_up.follow_up_kind == "description"
    reply = next(m for m in mail.outbox if m.subject.startswith("Re: "))
    assert "Update: Only a delivery man." in reply.body and "Severity now medium (was high)." in reply.body
    # Raised to critical: a full alert, as before two-stage alerts.
    critical = Delivery.objects.filter(mode="immediate").order_by("-id").first()
    assert critical.items.get().severity == "critical"
    assert any(m.subject.startswith("[CRITICAL]") and "Someone forces the gate." in m.body for m in mail.outbox)
    assert len(mail.outbox) == 4


def test_a_follow_up_waits_for_its_first_alert_and_is_dropped_when_that_already_told_it(
        camera, owner, hook, store, run_queued, alert_queue, settings):
    settings.ALERT_RETRY_BASE_SECONDS = 0.05
    hook.statuses = [500]  # the first alert's first attempt fails: it is retried
    channel = make_channel(owner, kind="webhook", url=hook.url())
    make_rule(owner, channels=[channel])
    record = opened(camera)
    store(record)
    run_queued(limit=1)
    first = Delivery.objects.get(mode="immediate")
    assert first.status == "pending"
    store({**record, "description": DESCRIPTION})  # arrives while the first alert waits for its retry
    follow_up = Delivery.objects.get(mode="follow_up")
    assert [d for d, _countdown in alert_queue] == [first.pk, follow_up.pk]
    alert_queue.reverse()  # the follow-up's task comes before the first alert's retry
    assert run_queued(limit=1) == ["retry"]  # it waits for the first alert...
    follow_up.refresh_from_db()
    assert follow_up.status == "pending" and follow_up.attempts == 0 and hook.requests[-1]["status"] == 500
    run_queued()
    first.refresh_from_db()
    follow_up.refresh_from_db()
    assert first.status == "sent" and DESCRIPTION in hook.json(-1)["text"]  # the retry told the description
    # ...which already told the description: the follow-up is not sent (one attempt: waiting did not count).
    assert follow_up.status == "cancelled" and "already carried the description" in follow_up.error
    assert follow_up.attempts == 1
    assert [r["status"] for r in hook.requests] == [500, 200]


def test_the_first_alert_and_its_follow_ups_in_the_recipients_language(camera, store, run_queued):
    from guardian.shortcuts import assign_perm

    from tests.factories import UserFactory

    minji = UserFactory(username="minji", language="ko", time_zone="Asia/Seoul")
    assign_perm("view_camera", minji, camera)
    make_rule(minji, channels=[make_channel(minji, kind="email", email="minji@example.com")])
    record = opened(camera)
    store(record)
    run_queued()
    store({**record, "description": DESCRIPTION})
    run_queued()
    store({**record, "description": DESCRIPTION, "severity": "medium", "ended_at": timezone.now().isoformat()})
    run_queued()
    first, described, lowered = mail.outbox
    assert "보이는 것: 사람." in first.subject and "금지 구역 'fence' 안에 있음." in first.body
    assert described.subject == f"Re: {first.subject}" and described.body.startswith(f"업데이트: {DESCRIPTION}")
    assert lowered.subject == f"Re: {first.subject}" and lowered.body.startswith("심각도 변경: 높음 → 보통.")
    assert [d.follow_up_kind for d in Delivery.objects.filter(mode="follow_up").order_by("id")] == [
        "description", "severity"]
    first_id = first.message()["Message-ID"]
    assert described.extra_headers["In-Reply-To"] == lowered.extra_headers["In-Reply-To"] == first_id
