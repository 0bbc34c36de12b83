"""Routing: severity, digests, suppression, quiet hours, permissions, idempotency, in-app."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.models import Group
from django.core import mail
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from alerts.models import AlertItem, AlertRule, Delivery
from alerts.services import alert_kind, alerts_route_events
from cameras.groups import user_group
from events.services import event_records_store
from tests.alerts.conftest import make_channel, make_rule
from tests.factories import CameraFactory, EventFactory, UserFactory

pytestmark = pytest.mark.django_db


def url_of(event):
    return f"{settings.SITE_URL}/events/{event.pk}/"


@pytest.fixture
def inbox(owner):
    """The owner's email channel and an 'everything' rule on it."""
    channel = make_channel(owner, kind="email")
    make_rule(owner, channels=[channel])
    return channel


def test_critical_is_sent_at_once_by_a_task_queued_on_commit(camera, owner, inbox, alert_queue, run_queued,
                                                             django_capture_on_commit_callbacks):
    event = EventFactory(camera=camera, severity="critical", description="A person collapses.")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        alerts_route_events(event_ids=[event.pk])
        assert alert_queue == []  # nothing leaves before the transaction commits
    assert len(callbacks) == 1
    callbacks[0]()
    delivery = Delivery.objects.get()
    assert alert_queue == [(delivery.pk, None)]
    assert (delivery.mode, delivery.status, delivery.recipient, delivery.channel) == ("immediate", "pending", owner,
                                                                                      inbox)
    run_queued()
    delivery.refresh_from_db()
    assert delivery.status == "sent" and delivery.attempts == 1 and delivery.sent_at is not None
    assert list(delivery.events.all()) == [event]
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [owner.email]
    assert message.subject.startswith("[CRITICAL] " + camera.name)
    assert "A person collapses." in message.body and url_of(event) in message.body


def test_high_is_immediate_medium_and_low_wait_for_the_digest(camera, inbox, alert_queue, route):
    high = EventFactory(camera=camera, severity="high")
    medium = EventFactory(camera=camera, severity="medium")
    low = EventFactory(camera=camera, severity="low")
    route(high, medium, low)
    assert [d.mode for d in Delivery.objects.all()] == ["immediate"]
    assert Delivery.objects.get().items.get().event == high
    assert set(AlertItem.objects.filter(state="queued").values_list("event_id", flat=True)) == {medium.pk, low.pk}


def test_several_medium_events_make_one_digest_listing_each(camera, owner, inbox, alert_queue, route, digest,
                                                           run_queued):
    other = CameraFactory(name="Back door")
    assign_perm("view_camera", owner, other)
    now = timezone.now()
    events = [EventFactory(camera=camera, severity="medium", started_at=now - timedelta(seconds=30 - i))
              for i in range(3)]
    events.append(EventFactory(camera=other, severity="low", started_at=now))
    route(*events)
    assert not Delivery.objects.exists() and alert_queue == []
    made = digest()
    assert len(made) == 1
    delivery = Delivery.objects.get()
    assert delivery.mode == "digest" and set(delivery.events.all()) == set(events)
    run_queued()
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    assert mail.outbox[0].subject == "Digest: 4 events (3 medium, 1 low)"
    for event in events:
        assert url_of(event) in body
    assert "Back door" in body
    assert digest() == []  # nothing left: the next beat sends nothing


def test_one_digest_per_channel(camera, owner, route, digest):
    a, b = make_channel(owner, kind="email", name="a"), make_channel(owner, kind="email", name="b",
                                                                    email="b@example.com")
    make_rule(owner, channels=[a, b])
    route(EventFactory(camera=camera, severity="medium"), EventFactory(camera=camera, severity="low"))
    digest()
    assert sorted(Delivery.objects.values_list("channel__name", flat=True)) == ["a", "b"]
    assert all(d.items.count() == 2 for d in Delivery.objects.all())


def test_minimum_severity_and_camera_selection(camera, owner, route, digest):
    channel = make_channel(owner)
    other = CameraFactory()
    assign_perm("view_camera", owner, other)
    make_rule(owner, channels=[channel], min_severity="high", cameras=[camera])
    route(EventFactory(camera=camera, severity="medium"), EventFactory(camera=other, severity="critical"))
    digest()
    assert not AlertItem.objects.exists() and not Delivery.objects.exists()
    route(EventFactory(camera=camera, severity="high"))
    assert Delivery.objects.count() == 1


def test_a_rule_takes_only_the_kinds_of_events_it_names(camera, owner, route):
    """Camera health and offline events are events of their own kind: a rule for the camera's health alerts on
    a covered camera and not on a scene anomaly; a rule with no kinds takes every kind."""
    tamper, everything = make_channel(owner, name="tamper"), make_channel(owner, name="all")
    make_rule(owner, channels=[tamper], kinds=["camera_health", "camera_offline"])
    make_rule(owner, channels=[everything])
    scene = EventFactory(camera=camera, severity="high")
    covered = EventFactory(camera=camera, severity="high",
                           details={"kind": "camera_health", "condition": "covered"})
    offline = EventFactory(camera=camera, severity="high", details={"kind": "camera_offline"})
    assert (scene.kind, covered.kind, offline.kind) == ("scene", "camera_health", "camera_offline")
    route(scene, covered, offline)
    sent = {(d.channel.name, d.items.get().event_id) for d in Delivery.objects.all()}
    assert sent == {("tamper", covered.pk), ("tamper", offline.pk),
                    ("all", scene.pk), ("all", covered.pk), ("all", offline.pk)}


def test_no_alert_about_a_camera_the_user_may_not_view_whatever_the_rule_says(camera, owner, outsider, route,
                                                                               digest):
    mine = make_channel(outsider)
    # A rule written straight into the database, naming a camera the outsider may not view.
    make_rule(outsider, channels=[mine], cameras=[camera], notify_in_app=True)
    make_rule(outsider, channels=[mine], all_cameras=True, notify_in_app=True)
    route(EventFactory(camera=camera, severity="critical"), EventFactory(camera=camera, severity="medium"))
    digest()
    assert not AlertItem.objects.exists() and not Delivery.objects.exists()


def test_permission_revoked_before_the_digest_withholds_the_alert(camera, owner, inbox, route, digest):
    event = EventFactory(camera=camera, severity="medium")
    route(event)
    for perm in ("view_camera", "operate_camera", "change_camera", "delete_camera"):
        remove_perm(perm, owner, camera)
    assert digest() == []
    assert AlertItem.objects.get().state == "withheld"
    assert not Delivery.objects.exists()


def test_rules_only_use_their_owners_channels(camera, owner, viewer, route):
    foreign = make_channel(viewer, kind="email")
    make_rule(owner, channels=[foreign])  # bypassing the API's check
    route(EventFactory(camera=camera, severity="critical"))
    assert not Delivery.objects.exists()


def test_group_rule_reaches_the_group_channel_and_members_who_may_view(camera, route, run_queued):
    team = Group.objects.create(name="night shift")
    member, stranger_member = UserFactory(), UserFactory()
    team.user_set.add(member, stranger_member)
    channel = make_channel(group=team, kind="email", email="night@example.com")
    make_rule(group=team, channels=[channel], notify_in_app=True)
    event = EventFactory(camera=camera, severity="critical")
    route(event)
    assert not Delivery.objects.exists()  # the group may not view the camera
    assign_perm("view_camera", team, camera)
    route(event)
    run_queued()
    email = Delivery.objects.get(medium="email")
    assert email.recipient_group == team and email.recipient is None and email.status == "sent"
    assert mail.outbox[0].to == ["night@example.com"]
    assert set(Delivery.objects.filter(medium="in_app").values_list("recipient", flat=True)) == {
        member.pk, stranger_member.pk}


def test_an_update_that_does_not_raise_severity_does_not_alert_again(camera, owner, inbox, alert_queue,
                                                                    django_capture_on_commit_callbacks):
    record = {"id": "7b0b3c1e-6f59-4c1d-9d2a-000000000001", "camera_id": camera.pk,
              "started_at": timezone.now().isoformat(), "severity": "high", "peak_score": 0.9}
    with django_capture_on_commit_callbacks(execute=True):
        event_records_store([record])  # events.services hands the ids to alerts_route_events after commit
    assert Delivery.objects.count() == 1 and len(alert_queue) == 1
    for severity in ("high", "medium", "high"):
        with django_capture_on_commit_callbacks(execute=True):
            event_records_store([{**record, "severity": severity, "ended_at": timezone.now().isoformat(),
                                  "description": "Closed."}])
    assert Delivery.objects.filter(mode="immediate").count() == 1  # no second alert
    # What the updates told came as follow-ups to it (test_two_stage.py): the description once, and the
    # final severity once (medium); the last store (high again) sends nothing more.
    follow_ups = Delivery.objects.filter(mode="follow_up").order_by("id")
    assert [d.follow_up_kind for d in follow_ups] == ["description", "severity"]
    assert len(alert_queue) == 3


def test_a_raised_severity_is_routed_at_the_new_one(camera, owner, inbox, route, digest, run_queued):
    event = EventFactory(camera=camera, severity="medium", ended_at=None)  # preliminary, on open
    route(event)
    assert AlertItem.objects.get().state == "queued"
    event.severity, event.description = "high", "Someone fell and does not get up."
    event.save()  # final, on close
    route(event)
    delivery = Delivery.objects.get()
    assert delivery.mode == "immediate" and delivery.items.get().severity == "high"
    assert AlertItem.objects.get(severity="medium").state == "superseded"  # not sent again in a digest
    assert digest() == []
    run_queued()
    assert "[HIGH]" in mail.outbox[0].subject and "does not get up" in mail.outbox[0].body


def test_suppression_window_counts_duplicates_and_the_next_message_reports_them(camera, owner, inbox, route,
                                                                               run_queued):
    first = EventFactory(camera=camera, severity="critical")
    route(first)
    run_queued()
    original = Delivery.objects.get()
    duplicates = [EventFactory(camera=camera, severity="critical") for _ in range(3)]
    route(*duplicates)
    assert Delivery.objects.count() == 1  # not sent again...
    original.refresh_from_db()
    assert original.suppressed_count == 3  # ...but counted on the original ("+3 similar")
    assert set(AlertItem.objects.filter(state="suppressed").values_list("event_id", flat=True)) == {
        e.pk for e in duplicates}
    # Different severity, kind or camera is another alert.
    other_camera = CameraFactory()
    assign_perm("view_camera", owner, other_camera)
    route(EventFactory(camera=camera, severity="high"),
          EventFactory(camera=camera, severity="critical", details={"kind": "fire"}),
          EventFactory(camera=other_camera, severity="critical"))
    assert Delivery.objects.count() == 4
    run_queued()
    # The window passes: the next alert goes out, and says how many were suppressed.
    Delivery.objects.filter(pk=original.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.ALERT_SUPPRESS_SECONDS + 1))
    later = EventFactory(camera=camera, severity="critical")
    route(later)
    run_queued()
    delivery = Delivery.objects.get(items__event=later)
    assert delivery.status == "sent" and delivery.reported_count == 3
    assert "3 similar alerts suppressed" in delivery.body
    assert AlertItem.objects.filter(state="suppressed", reported_in=delivery).count() == 3
    # Reported once only.
    Delivery.objects.filter(pk=delivery.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.ALERT_SUPPRESS_SECONDS + 1))
    route(EventFactory(camera=camera, severity="critical"))
    run_queued()
    assert Delivery.objects.order_by("-id").first().reported_count == 0


def test_duplicates_suppressed_before_the_original_goes_out_are_in_its_message(camera, owner, inbox, route,
                                                                                run_queued):
    route(EventFactory(camera=camera, severity="high"))
    route(EventFactory(camera=camera, severity="high"), EventFactory(camera=camera, severity="high"))
    run_queued()
    delivery = Delivery.objects.get()
    assert delivery.suppressed_count == 2 and "(+2 similar" in mail.outbox[0].body


def test_digest_items_are_suppressed_by_a_digest_already_sent(camera, owner, inbox, route, digest, run_queued):
    route(EventFactory(camera=camera, severity="medium"), EventFactory(camera=camera, severity="medium"))
    digest()
    run_queued()
    sent = Delivery.objects.get()
    route(EventFactory(camera=camera, severity="medium"))
    assert digest() == []
    sent.refresh_from_db()
    assert sent.suppressed_count == 1


def quiet_around_now(rule_tz="UTC"):
    local = timezone.now().astimezone(ZoneInfo(rule_tz))
    start = (local - timedelta(hours=1)).time().replace(microsecond=0)
    end = (local + timedelta(hours=1)).time().replace(microsecond=0)
    return {"quiet_start": start, "quiet_end": end, "time_zone": rule_tz}


def test_quiet_hours_hold_alerts_until_they_end(camera, owner, route, digest, run_queued):
    channel = make_channel(owner)
    make_rule(owner, channels=[channel], critical_in_quiet_hours=False, **quiet_around_now("Asia/Seoul"))
    high, medium = EventFactory(camera=camera, severity="high"), EventFactory(camera=camera, severity="medium")
    route(high, medium)
    assert not Delivery.objects.exists()
    held = AlertItem.objects.filter(state="queued")
    assert held.count() == 2 and all(i.hold_until > timezone.now() for i in held)
    assert digest() == []
    end = held.first().hold_until
    assert digest(now=end + timedelta(seconds=1))  # the first digest after the quiet hours has both
    run_queued()
    assert set(Delivery.objects.get().events.all()) == {high, medium} and len(mail.outbox) == 1


def test_critical_passes_quiet_hours_unless_told_otherwise(camera, owner, route):
    channel = make_channel(owner)
    make_rule(owner, channels=[channel], **quiet_around_now())
    route(EventFactory(camera=camera, severity="critical"))
    assert Delivery.objects.get().mode == "immediate"


def test_a_rule_outside_its_quiet_hours_wins(camera, owner, route):
    channel = make_channel(owner)
    make_rule(owner, channels=[channel], critical_in_quiet_hours=False, **quiet_around_now())
    make_rule(owner, channels=[channel], name="always")
    route(EventFactory(camera=camera, severity="high"))
    assert Delivery.objects.get().mode == "immediate"


@pytest.mark.parametrize("start,end,local,quiet,ends", [
    (time(22), time(7), datetime(2026, 1, 10, 23, 30), True, datetime(2026, 1, 11, 7)),
    (time(22), time(7), datetime(2026, 1, 10, 6, 59), True, datetime(2026, 1, 10, 7)),
    (time(22), time(7), datetime(2026, 1, 10, 7, 0), False, None),
    (time(22), time(7), datetime(2026, 1, 10, 12, 0), False, None),
    (time(12), time(14), datetime(2026, 1, 10, 13, 0), True, datetime(2026, 1, 10, 14)),
    (time(12), time(14), datetime(2026, 1, 10, 14, 0), False, None),
])
def test_quiet_hours_rule(start, end, local, quiet, ends):
    tz = ZoneInfo("Europe/Paris")
    rule = AlertRule(quiet_start=start, quiet_end=end, time_zone="Europe/Paris")
    now = local.replace(tzinfo=tz)
    result = rule.quiet_until(now, "high")
    assert (result is not None) == quiet
    if quiet:
        assert result == ends.replace(tzinfo=tz)
        assert rule.quiet_until(now, "critical") is None  # critical passes by default


def test_kind_of_an_event():
    assert alert_kind(EventFactory.build(details={"kind": "fall"})) == "fall"
    assert alert_kind(EventFactory.build(details={"zones": [{"name": "gate", "rule": "forbidden"}]})) == \
        "zone:forbidden"
    # As the worker records them: the detector's zone hits under "detector_details".
    recorded = {"detector_details": {"zones": [{"name": "gate", "kind": "forbidden", "rule": "forbidden"},
                                               {"name": "door", "kind": "loiter", "rule": "loiter"}]}}
    assert alert_kind(EventFactory.build(details=recorded)) == "zone:forbidden,loiter"
    assert alert_kind(EventFactory.build(details={})) == "anomaly"


def test_online_operators_get_a_notification_on_their_websocket(camera, owner, route, run_queued):
    make_rule(owner, notify_in_app=True, min_severity="medium")
    layer = get_channel_layer()
    channel_name = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group(owner.pk), channel_name)
    try:
        event = EventFactory(camera=camera, severity="high", description="Someone climbs the fence.")
        route(event, EventFactory(camera=camera, severity="low"))
        run_queued()
        message = async_to_sync(layer.receive)(channel_name)
    finally:
        async_to_sync(layer.group_discard)(user_group(owner.pk), channel_name)
    assert message["type"] == "notification"
    payload = message["payload"]
    assert payload["event"] == str(event.pk) and payload["camera"] == camera.pk
    assert payload["severity"] == "high" and "Someone climbs the fence." in payload["title"]
    assert payload["url"] == url_of(event)
    delivery = Delivery.objects.get()  # the low one is under the rule's minimum
    assert delivery.medium == "in_app" and delivery.status == "sent" and delivery.recipient == owner
