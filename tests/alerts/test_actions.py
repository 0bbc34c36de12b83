"""The agent's decided actions choose how channel alerts go out; without usable ones, the severity does."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import timezone

from alerts.models import AlertItem, Delivery
from alerts.services import alert_urgency
from tests.alerts.conftest import make_channel, make_rule
from tests.factories import EventFactory

pytestmark = pytest.mark.django_db


def quiet_around_now(rule_tz="UTC"):
    local = timezone.now().astimezone(ZoneInfo(rule_tz))
    start = (local - timedelta(hours=1)).time().replace(microsecond=0)
    end = (local + timedelta(hours=1)).time().replace(microsecond=0)
    return {"quiet_start": start, "quiet_end": end, "time_zone": rule_tz}


def decided(severity, actions, **extra):
    return {"severity": severity, "actions": actions, "reasons": ["test"], "policy": "rules", **extra}


@pytest.fixture
def inbox(owner):
    """The owner's email channel, an 'everything' rule on it, and in-app notifications."""
    channel = make_channel(owner, kind="email")
    make_rule(owner, channels=[channel], notify_in_app=True)
    return channel


def channel_items(inbox):
    return AlertItem.objects.filter(channel=inbox)


def test_alert_now_sends_a_medium_event_at_once(camera, owner, inbox, alert_queue, route, digest, run_queued):
    event = EventFactory(camera=camera, severity="medium",
                         decision=decided("medium", ["record", "notify", "alert_now"]))
    route(event)
    item = channel_items(inbox).get()
    assert item.state == "delivered" and item.severity == "medium"
    delivery = item.delivery
    assert (delivery.mode, delivery.status, delivery.channel, delivery.recipient) == ("immediate", "pending", inbox,
                                                                                    owner)
    assert (delivery.pk, None) in alert_queue
    assert digest() == []  # nothing left for the digest
    run_queued()
    delivery.refresh_from_db()
    assert delivery.status == "sent" and list(delivery.events.all()) == [event]
    assert len(mail.outbox) == 1 and mail.outbox[0].subject.startswith("[MEDIUM] ")


def test_escalate_alone_is_immediate_too(camera, inbox, alert_queue, route):
    route(EventFactory(camera=camera, severity="low", decision=decided("low", ["escalate"])))
    delivery = channel_items(inbox).get().delivery
    assert delivery.mode == "immediate" and (delivery.pk, None) in alert_queue


@pytest.mark.parametrize("severity", ["high", "critical"])
def test_notify_without_alert_now_waits_for_the_digest_even_when_high(camera, inbox, alert_queue, route, digest,
                                                                      severity):
    event = EventFactory(camera=camera, severity=severity, decision=decided(severity, ["record", "notify"]))
    route(event)
    assert channel_items(inbox).get().state == "queued"
    assert not Delivery.objects.filter(channel=inbox).exists()
    in_app = Delivery.objects.get(medium="in_app")  # in-app stays immediate
    assert in_app.mode == "immediate" and alert_queue == [(in_app.pk, None)]
    made = digest()
    assert len(made) == 1
    delivery = Delivery.objects.get(pk=made[0])
    assert (delivery.mode, delivery.channel) == ("digest", inbox) and list(delivery.events.all()) == [event]
    assert channel_items(inbox).get().state == "delivered"


@pytest.mark.parametrize("severity", ["low", "medium", "critical"])
def test_record_only_waits_for_the_digest(camera, owner, inbox, alert_queue, route, digest, severity):
    # The agent decides urgency, the recipient's rule whether they hear of it: record-only is not urgent.
    event = EventFactory(camera=camera, severity=severity, decision=decided(severity, ["record"]))
    route(event)
    assert channel_items(inbox).get().state == "queued"
    assert not Delivery.objects.filter(channel=inbox).exists()
    # The in-app notification is recorded and sent at once, as before.
    in_app = Delivery.objects.get()
    assert (in_app.medium, in_app.mode, in_app.recipient) == ("in_app", "immediate", owner)
    assert alert_queue == [(in_app.pk, None)]
    made = digest()
    assert len(made) == 1 and list(Delivery.objects.get(pk=made[0]).events.all()) == [event]


@pytest.mark.parametrize("decision", [
    {},  # an old event
    {"reasons": ["no actions"]},
    {"actions": "alert_now"},  # not a list
    {"actions": None},
    {"actions": ["page_everyone", 3, None]},  # only unknown actions
    ["alert_now"],  # not a dict
    "alert_now",
])
def test_without_usable_actions_the_severity_decides(camera, inbox, route, decision):
    medium = EventFactory(camera=camera, severity="medium", decision=decision)
    high = EventFactory(camera=camera, severity="high", decision=decision)
    low = EventFactory(camera=camera, severity="low", decision=decision)
    route(medium, high, low)
    states = {i.event_id: (i.state, i.delivery.mode if i.delivery_id else None) for i in channel_items(inbox)}
    assert states == {high.pk: ("delivered", "immediate"), medium.pk: ("queued", None), low.pk: ("queued", None)}


def test_unknown_actions_are_ignored_next_to_known_ones(camera, inbox, route):
    route(EventFactory(camera=camera, severity="medium", decision=decided("medium", ["page", "alert_now", 7])),
          EventFactory(camera=camera, severity="high", decision=decided("high", ["record", "wake_everyone"])))
    # "record" plus an unknown action is record-only: the high event waits for the digest.
    states = {i.severity: (i.state, i.delivery.mode if i.delivery_id else None) for i in channel_items(inbox)}
    assert states == {"medium": ("delivered", "immediate"), "high": ("queued", None)}


def test_a_decision_made_for_another_severity_falls_back_to_the_severity(camera, inbox, route):
    # The event's severity is not the one the actions were decided for (changed afterwards): the severity decides.
    critical = EventFactory(camera=camera, severity="critical", decision=decided("medium", ["record", "notify"]))
    medium = EventFactory(camera=camera, severity="medium", decision=decided("high", ["record", "alert_now"]))
    route(critical, medium)
    assert channel_items(inbox).get(event=critical).delivery.mode == "immediate"
    assert channel_items(inbox).get(event=medium).state == "queued"


def test_quiet_hours_still_hold_an_alert_now(camera, owner, alert_queue, route, digest, run_queued):
    channel = make_channel(owner)
    make_rule(owner, channels=[channel], **quiet_around_now("Asia/Seoul"))
    event = EventFactory(camera=camera, severity="medium",
                         decision=decided("medium", ["record", "notify", "alert_now"]))
    route(event)
    item = AlertItem.objects.get(channel=channel)
    assert item.state == "queued" and item.hold_until > timezone.now()
    assert not Delivery.objects.exists() and alert_queue == []
    assert digest() == []  # still quiet
    assert digest(now=item.hold_until + timedelta(seconds=1))  # the first digest after the quiet hours
    delivery = Delivery.objects.get()
    assert delivery.mode == "digest" and list(delivery.events.all()) == [event]
    run_queued()
    assert len(mail.outbox) == 1


def test_a_raise_to_alert_now_goes_out_at_once_and_retires_the_queued_one(camera, inbox, route, digest):
    event = EventFactory(camera=camera, severity="medium", decision=decided("medium", ["record", "notify"]))
    route(event)
    assert channel_items(inbox).get().state == "queued"
    event.severity, event.decision = "high", decided("high", ["record", "notify", "alert_now"])
    event.save()
    route(event)
    states = dict(channel_items(inbox).values_list("severity", "state"))
    assert states == {"medium": "superseded", "high": "delivered"}
    assert channel_items(inbox).get(severity="high").delivery.mode == "immediate"
    assert digest() == []


@pytest.mark.parametrize("severity,actions,expected", [
    ("medium", ["record", "notify", "alert_now"], "immediate"),
    ("low", ["escalate"], "immediate"),
    ("critical", ["record", "notify"], "digest"),
    ("high", ["record"], "digest"),
    ("high", [], "immediate"),  # no actions: the severity
    ("medium", ["bogus"], "digest"),
])
def test_alert_urgency(severity, actions, expected):
    event = EventFactory.build(severity=severity, decision=decided(severity, actions))
    assert alert_urgency(event) == expected
