"""Arming (docs/alerts.md, "Arming"): modes decide which events alert; events are always stored.

Routing runs for real (alerts.services.alerts_route_events) with Django's test mailbox as the transport.
"""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from alerts.models import AlertItem, Delivery, Escalation, EscalationStep
from arming.models import ArmingMode, ArmingPeriod, ArmingSchedule, ArmingState, HeldAlert
from arming.selectors import arming_allows, arming_effective
from arming.services import arming_set
from audit.models import AuditEntry
from cameras.groups import camera_group
from events.models import AnomalyEvent
from tests.alerts.conftest import make_channel, make_rule
from tests.factories import AreaFactory, CameraFactory, EventFactory

pytestmark = pytest.mark.django_db

SEOUL = ZoneInfo("Asia/Seoul")


def critical(camera, **fields):
    fields.setdefault("decision", {"severity": "critical", "actions": ["alert_now"], "reasons": []})
    return EventFactory(camera=camera, severity="critical", **fields)


def health(camera, severity="high", kind="camera_health"):
    return EventFactory(camera=camera, severity=severity, details={"kind": kind, "condition": "covered"},
                        decision={"severity": severity, "actions": ["alert_now"], "reasons": []})


@pytest.fixture
def inbox(owner):
    channel = make_channel(owner, kind="email")
    make_rule(owner, channels=[channel])
    return channel


# -- the modes' defaults and what they let alert -------------------------------------------------------------
def test_the_migration_makes_the_four_modes_with_their_documented_defaults():
    modes = {m.key: (sorted(m.kinds), m.min_severity) for m in ArmingMode.objects.all()}
    every = sorted(["scene", "camera_health", "camera_offline"])
    assert modes == {"armed": (every, "low"), "away": (every, "low"), "home": (every, "high"),
                     "disarmed": (["camera_health", "camera_offline"], "low")}


def test_armed_by_default_routes_as_before(camera, owner, inbox, route):
    event = critical(camera)
    assert arming_effective(camera.pk).mode == "armed" and arming_effective(camera.pk).source == "default"
    route(event)
    assert Delivery.objects.filter(mode="immediate").count() == 1
    assert not HeldAlert.objects.exists()


def test_disarmed_stores_a_critical_event_but_sends_nothing_and_says_why(camera, owner, inbox, route, run_queued):
    arming_set(camera=camera, mode="disarmed", by=owner)
    event = critical(camera)
    route(event)
    run_queued()
    assert AnomalyEvent.objects.filter(pk=event.pk).exists()  # stored and shown, never dropped
    assert Delivery.objects.count() == 0 and AlertItem.objects.count() == 0
    held = HeldAlert.objects.get(event=event)
    assert (held.mode, held.source, held.severity, held.kind) == ("disarmed", "camera", "critical", "scene")
    route(event)  # routed again (its description, its close): still held, one trail row
    assert Delivery.objects.count() == 0 and HeldAlert.objects.count() == 1


def test_disarmed_still_reports_the_camera_itself_unless_its_mode_says_otherwise(camera, owner, inbox, route):
    arming_set(camera=camera, mode="disarmed", by=owner)
    route(health(camera))
    route(health(camera, kind="camera_offline"))
    assert Delivery.objects.filter(mode="immediate").count() == 2
    # The administrator silences the camera's own trouble too when disarmed.
    ArmingMode.objects.filter(key="disarmed").update(kinds=[])
    route(health(camera, severity="critical"))
    assert Delivery.objects.filter(mode="immediate").count() == 2
    assert HeldAlert.objects.count() == 1


def test_home_lets_only_its_minimum_severity_alert_and_away_everything(camera, owner, inbox, route):
    arming_set(camera=camera, mode="home", by=owner)
    medium = EventFactory(camera=camera, severity="medium")
    high = EventFactory(camera=camera, severity="high", decision={"severity": "high", "actions": ["alert_now"]})
    route(medium, high)
    assert list(AlertItem.objects.values_list("event_id", flat=True)) == [high.pk]
    assert HeldAlert.objects.get().event_id == medium.pk

    arming_set(camera=camera, mode="away", by=owner)
    later = EventFactory(camera=camera, severity="medium")
    route(later)
    assert AlertItem.objects.filter(event=later).count() == 1


def test_home_and_away_follow_what_the_admin_configured(camera):
    ArmingMode.objects.filter(key="home").update(kinds=["camera_health", "camera_offline"], min_severity="medium")
    ArmingMode.objects.filter(key="away").update(kinds=["scene"], min_severity="critical")
    arming_set(camera=camera, mode="home", by=None)
    assert not arming_allows(camera.pk, "critical", "scene")
    assert arming_allows(camera.pk, "medium", "camera_health") and not arming_allows(camera.pk, "low", "camera_health")
    arming_set(camera=camera, mode="away", by=None)
    assert arming_allows(camera.pk, "critical", "scene") and not arming_allows(camera.pk, "high", "scene")
    assert not arming_allows(camera.pk, "critical", "camera_offline")


def test_a_missing_mode_row_falls_back_to_its_default():
    camera = CameraFactory()
    ArmingMode.objects.filter(key="armed").delete()
    assert arming_allows(camera.pk, "low", "scene")


# -- switching: audited, pushed live -------------------------------------------------------------------------
def test_each_switch_is_audited_with_the_old_and_new_mode_and_pushed_after_commit(
        camera, owner, django_capture_on_commit_callbacks):
    layer = get_channel_layer()
    name = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(camera_group(camera.pk), name)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            arming_set(camera=camera, mode="disarmed", by=owner)
        assert len(callbacks) == 1  # nothing pushed before the commit
        callbacks[0]()
        pushed = async_to_sync(layer.receive)(name)
    finally:
        async_to_sync(layer.group_discard)(camera_group(camera.pk), name)
    assert pushed["type"] == "camera.arming" and pushed["camera"] == camera.pk
    assert pushed["arming"]["mode"] == "disarmed" and pushed["arming"]["source"] == "camera"
    assert pushed["arming"]["set_by"] == owner.username

    arming_set(camera=camera, mode="home", by=owner)
    arming_set(camera=camera, mode="home", by=owner)  # the same again: nothing to record
    arming_set(camera=camera, mode=None, by=owner)
    entries = AuditEntry.objects.filter(action="arming.set").order_by("id")
    assert [(e.details["old"], e.details["new"]) for e in entries] == [
        ("auto", "disarmed"), ("disarmed", "home"), ("home", "auto")]
    assert all(e.actor == owner and e.camera_id == camera.pk and e.changes == ["mode"] for e in entries)
    assert not ArmingState.objects.exists()


# -- areas and precedence ----------------------------------------------------------------------------------------
def test_an_areas_mode_applies_to_its_cameras_unless_a_camera_overrides_it(owner, route):
    area = AreaFactory()
    gate, door, elsewhere = CameraFactory(area=area), CameraFactory(area=area), CameraFactory()
    arming_set(area=area, mode="disarmed", by=None)
    assert [arming_effective(c.pk).mode for c in (gate, door, elsewhere)] == ["disarmed", "disarmed", "armed"]
    assert arming_effective(gate.pk).source == "area"
    arming_set(camera=door, mode="armed", by=None)
    assert (arming_effective(door.pk).mode, arming_effective(door.pk).source) == ("armed", "camera")
    assert AuditEntry.objects.filter(action="arming.set", target_type="area").get().details == {
        "scope": "area", "old": "auto", "new": "disarmed"}


def test_a_hand_set_mode_wins_over_the_schedule():
    camera = CameraFactory()
    schedule = ArmingSchedule.objects.create(name="always", time_zone="UTC")
    ArmingPeriod.objects.create(schedule=schedule, days=list(range(7)), start=time(0), end=time(0), mode="home")
    assert (arming_effective(camera.pk).mode, arming_effective(camera.pk).source) == ("home", "schedule")
    arming_set(camera=camera, mode="away", by=None)
    assert arming_effective(camera.pk).mode == "away"


# -- weekly schedules, local time ----------------------------------------------------------------------------
def at_seoul(day, hour, minute=0):
    """2025-06-02 is a Monday."""
    return datetime(2025, 6, day, hour, minute, tzinfo=SEOUL)


@pytest.fixture
def nights():
    """Weeknights (Monday to Friday) 22:00 to 07:00 Seoul time: disarmed; Saturday daytime: home."""
    camera = CameraFactory()
    schedule = ArmingSchedule.objects.create(name="Nights", time_zone="Asia/Seoul", camera=camera)
    ArmingPeriod.objects.create(schedule=schedule, days=[0, 1, 2, 3, 4], start=time(22), end=time(7), mode="disarmed")
    ArmingPeriod.objects.create(schedule=schedule, days=[5], start=time(9), end=time(18), mode="home")
    return camera


@pytest.mark.parametrize("moment, mode", [
    (at_seoul(2, 21, 59), "armed"),      # Monday just before
    (at_seoul(2, 22, 0), "disarmed"),    # Monday 22:00
    (at_seoul(3, 6, 59), "disarmed"),    # over midnight into Tuesday
    (at_seoul(3, 7, 0), "armed"),        # Tuesday 07:00: over
    (at_seoul(7, 6, 0), "disarmed"),     # Saturday morning: Friday night's period
    (at_seoul(7, 22, 30), "armed"),      # Saturday night: no period starts on Saturday night
    (at_seoul(7, 9, 0), "home"),
    (at_seoul(8, 6, 0), "armed"),        # Sunday morning: Saturday started no night period
])
def test_a_weekly_schedule_switches_at_the_right_local_time(nights, moment, mode):
    assert arming_effective(nights.pk, moment).mode == mode
    # The same moment in UTC gives the same answer: the periods are local to the schedule's time zone.
    assert arming_effective(nights.pk, moment.astimezone(ZoneInfo("UTC"))).mode == mode


def test_routing_uses_the_schedule_at_the_events_start(nights, owner, route):
    channel = make_channel(owner, kind="email")
    make_rule(owner, channels=[channel])
    from guardian.shortcuts import assign_perm

    assign_perm("view_camera", owner, nights)
    night = critical(nights, started_at=at_seoul(2, 23))
    day = critical(nights, started_at=at_seoul(3, 12))
    route(night, day)
    assert list(AlertItem.objects.values_list("event_id", flat=True)) == [day.pk]
    assert HeldAlert.objects.get().source == "schedule"


def test_a_cameras_schedule_wins_over_its_areas_and_the_sites():
    area = AreaFactory()
    camera, other = CameraFactory(area=area), CameraFactory(area=area)
    for name, scope, mode in (("site", {}, "away"), ("area", {"area": area}, "home"), ("cam", {"camera": camera},
                                                                                       "disarmed")):
        schedule = ArmingSchedule.objects.create(name=name, time_zone="Asia/Seoul", **scope)
        ArmingPeriod.objects.create(schedule=schedule, days=[0], start=time(8), end=time(20), mode=mode)
    moment = at_seoul(2, 12)
    assert arming_effective(camera.pk, moment).mode == "disarmed"
    assert arming_effective(other.pk, moment).mode == "home"
    assert arming_effective(CameraFactory().pk, moment).mode == "away"
    ArmingSchedule.objects.filter(name="cam").update(enabled=False)
    assert arming_effective(camera.pk, moment).mode == "home"


# -- escalation ------------------------------------------------------------------------------------------------
def test_a_disarmed_camera_escalates_nothing(camera, owner, django_capture_on_commit_callbacks):
    from alerts.services import alerts_escalate

    rule = make_rule(owner)
    step = EscalationStep.objects.create(rule=rule, order=1, after_minutes=5)
    step.channels.set([make_channel(owner)])
    critical(camera, started_at=timezone.now() - timedelta(minutes=6))
    arming_set(camera=camera, mode="disarmed", by=owner)
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts_escalate() == []
    arming_set(camera=camera, mode=None, by=owner)
    with django_capture_on_commit_callbacks(execute=True):
        assert len(alerts_escalate()) == 1
    assert Escalation.objects.count() == 1


def test_a_batch_of_events_is_judged_with_a_fixed_number_of_queries(django_assert_max_num_queries):
    """Routing and escalation judge their whole batch at once (arming_decisions): no query per event."""
    from arming.selectors import arming_decisions

    cameras = [CameraFactory() for _ in range(3)]
    events = [EventFactory(camera=cameras[i % 3], severity="critical") for i in range(12)]
    with django_assert_max_num_queries(5):  # cameras, states, schedules (+ their periods), modes
        decisions = arming_decisions(events)
    assert set(decisions) == {e.pk for e in events} and all(ok for ok, _effective in decisions.values())
