"""Escalation: a critical or high event nobody acknowledged goes to the next recipients of the rule.

Each step fires once per event (the beat may run twice), only while the event is still ``new``,
and is sent through the ordinary deliveries: the same retries, transports, records and the same
permission re-check at every attempt. Real transports throughout: a local HTTP receiver, Django's
test mailbox, the channel layer.
"""

import json
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import Group
from django.core import mail
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from alerts.models import AlertItem, AlertRule, Delivery, Escalation, EscalationStep
from audit.models import AuditEntry
from cameras.groups import user_group
from events.services import event_acknowledge
from tests.alerts.conftest import SECRET, make_channel, make_rule
from tests.factories import CameraFactory, EventFactory, UserFactory

pytestmark = pytest.mark.django_db

RULES = "/api/v1/alert-rules/"


@pytest.fixture
def escalate(django_capture_on_commit_callbacks):
    """One run of the beat task (as the worker runs it), its on-commit callbacks queueing the deliveries."""
    from alerts import tasks

    def run(now=None):
        from alerts.services import alerts_escalate

        with django_capture_on_commit_callbacks(execute=True):
            return alerts_escalate(now=now) if now else tasks.alerts_escalation.run()

    return run


def add_step(rule, order, after_minutes, *, channels=(), users=(), group=None) -> EscalationStep:
    step = EscalationStep.objects.create(rule=rule, order=order, after_minutes=after_minutes, group=group)
    step.channels.set(channels)
    step.users.set(users)
    return step


def event_ago(camera, minutes, severity="high", **fields):
    return EventFactory(camera=camera, severity=severity, started_at=timezone.now() - timedelta(minutes=minutes),
                        decision={"severity": severity, "actions": ["alert_now"], "reasons": []}, **fields)


def escalation_mails():
    return [m for m in mail.outbox if "Escalation" in m.subject]


def test_a_high_event_unacknowledged_past_step_1_notifies_its_recipients_once(camera, owner, viewer, hook, route,
                                                                             escalate, run_queued, alert_queue):
    first = make_channel(owner, kind="email", name="mine")
    pager = make_channel(owner, kind="webhook", name="pager", url=hook.url())
    rule = make_rule(owner, channels=[first], min_severity="high")
    add_step(rule, 1, 5, channels=[pager], users=[viewer])
    event = event_ago(camera, 7, description="A man climbs the fence.")
    route(event)  # the ordinary alert went to the rule's channel
    run_queued()
    assert [m.to for m in mail.outbox] == [[owner.email]]

    layer = get_channel_layer()
    name = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group(viewer.pk), name)
    try:
        made = escalate()
        assert len(made) == 3  # the pager, and the viewer's email and in-app notification
        assert escalate() == []  # the beat again: nothing more
        run_queued()
        pushed = async_to_sync(layer.receive)(name)
    finally:
        async_to_sync(layer.group_discard)(user_group(viewer.pk), name)

    assert len(hook.requests) == 1
    payload = json.loads(hook.requests[0]["body"])
    assert payload["type"] == "alert" and payload["event"]["id"] == str(event.pk)
    assert payload["escalation"]["step"] == 1 and payload["escalation"]["unacknowledged_minutes"] == 7
    assert payload["subject"].startswith("Escalation (step 1): [HIGH]")
    assert "Escalation, step 1: not acknowledged for 7 minutes." in payload["text"]
    assert f"/events/{event.pk}/" in payload["text"]
    assert hook.requests[0]["headers"]["X-Alert-Signature"].startswith("sha256=") and SECRET not in payload["text"]

    [message] = escalation_mails()
    assert message.to == [viewer.email] and message.subject.startswith("Escalation (step 1):")
    assert "not acknowledged for 7 minutes" in message.body and f"/events/{event.pk}/" in message.body
    assert pushed["type"] == "notification" and pushed["payload"]["event"] == str(event.pk)
    assert pushed["payload"]["escalation"]["step"] == 1

    escalated = Delivery.objects.filter(mode=Delivery.Mode.ESCALATION)
    assert sorted(escalated.values_list("medium", "status")) == [("email", "sent"), ("in_app", "sent"),
                                                                  ("webhook", "sent")]
    assert all(list(d.events.all()) == [event] for d in escalated)
    assert Escalation.objects.get().order == 1 and alert_queue == []
    # Escalations stay out of routing: the same event raised to critical is routed as usual.
    event.severity, event.decision = "critical", {"severity": "critical", "actions": ["alert_now"]}
    event.save()
    route(event)
    assert Delivery.objects.filter(mode=Delivery.Mode.IMMEDIATE).count() == 2


def test_two_beats_at_once_fire_a_step_once(camera, owner, escalate, monkeypatch):
    from alerts import services

    rule = make_rule(owner)
    add_step(rule, 1, 5, channels=[make_channel(owner)])
    event_ago(camera, 6)
    assert len(escalate()) == 1
    # A second beat that read "not fired yet" before the first committed: the unique record stops it.
    monkeypatch.setattr(services, "escalations_fired", lambda event_ids: {})
    assert escalate() == []
    assert Escalation.objects.count() == 1 and Delivery.objects.count() == 1


@pytest.mark.parametrize("status", ["acknowledged", "resolved", "false_alarm"])
def test_an_event_acknowledged_or_closed_before_the_step_escalates_nothing(camera, owner, escalate, status):
    rule = make_rule(owner)
    add_step(rule, 1, 5, channels=[make_channel(owner)])
    event_ago(camera, 30, status=status,
              acknowledged_at=timezone.now() - timedelta(minutes=29) if status == "acknowledged" else None)
    assert escalate() == []
    assert not Escalation.objects.exists() and not Delivery.objects.exists()


@pytest.mark.parametrize("severity", ["medium", "low"])
def test_medium_and_low_events_never_escalate(camera, owner, escalate, severity):
    rule = make_rule(owner)
    add_step(rule, 1, 1, channels=[make_channel(owner)])
    event_ago(camera, 30, severity=severity)
    assert escalate() == [] and not Escalation.objects.exists()


def test_not_before_the_step_is_due_and_not_for_old_events(camera, owner, escalate, settings):
    rule = make_rule(owner)
    add_step(rule, 1, 10, channels=[make_channel(owner)])
    event_ago(camera, 9, severity="critical")
    assert escalate() == []
    settings.ALERT_ESCALATION_MAX_AGE_HOURS = 1
    event_ago(camera, 61, severity="critical")  # older than the horizon: a backlog, not an incident
    assert escalate() == []
    assert len(escalate(now=timezone.now() + timedelta(minutes=2))) == 1  # the first one, now due


def test_step_2_follows_step_1_and_an_acknowledgement_stops_the_rest(camera, owner, viewer, escalate, run_queued):
    rule = make_rule(owner)
    add_step(rule, 1, 5, channels=[make_channel(owner, name="first")])
    add_step(rule, 2, 10, users=[viewer])
    event = event_ago(camera, 6, severity="critical")
    assert len(escalate()) == 1
    fired = Escalation.objects.get()
    assert fired.event == event and fired.unacknowledged_minutes == 6
    # Step 2 waits 10 minutes after step 1 fired, not after the event started.
    assert escalate(now=fired.fired_at + timedelta(minutes=9)) == []
    later = fired.fired_at + timedelta(minutes=10, seconds=1)
    assert len(escalate(now=later)) == 2  # the viewer's email and in-app notification
    assert escalate(now=later + timedelta(minutes=30)) == []  # no step 3
    run_queued()
    assert [m.to for m in mail.outbox] == [[owner.email], [viewer.email]]
    assert "Escalation (step 2)" in mail.outbox[1].subject and "16 minutes" in mail.outbox[1].body

    # Another event, acknowledged after step 1: step 2 never fires.
    other = event_ago(camera, 6, severity="high")
    assert len(escalate()) == 1
    event_acknowledge(event=other, by=owner)  # as the page and the API do
    assert escalate(now=timezone.now() + timedelta(hours=1)) == []
    assert Escalation.objects.filter(event=other).count() == 1


def test_a_recipient_who_lost_access_is_cancelled_not_sent(camera, owner, viewer, escalate, run_queued):
    rule = make_rule(owner)
    add_step(rule, 1, 5, users=[viewer])
    event_ago(camera, 6)
    assert len(escalate()) == 2
    remove_perm("view_camera", viewer, camera)
    run_queued()
    assert mail.outbox == []
    for delivery in Delivery.objects.all():
        assert delivery.status == Delivery.Status.CANCELLED and delivery.sent_at is None
        assert "may no longer view camera" in delivery.error
        assert set(delivery.items.values_list("state", flat=True)) == {AlertItem.State.WITHHELD}


def test_a_group_step_reaches_each_member_who_may_view_the_camera(camera, owner, escalate, run_queued):
    team = Group.objects.create(name="guards")
    owner.groups.add(team)
    inside, outside = UserFactory(username="inside"), UserFactory(username="outside")
    team.user_set.add(inside, outside)
    assign_perm("view_camera", inside, camera)
    rule = make_rule(owner)
    add_step(rule, 1, 5, group=team)
    event_ago(camera, 6)
    escalate()
    run_queued()
    assert sorted(m.to[0] for m in mail.outbox) == sorted([owner.email, inside.email])
    cancelled = Delivery.objects.filter(status=Delivery.Status.CANCELLED)
    assert {d.recipient for d in cancelled} == {outside}


def test_a_rule_that_does_not_apply_or_its_quiet_hours_hold_the_step(camera, owner, escalate):
    other = CameraFactory()
    assign_perm("view_camera", owner, other)
    elsewhere = make_rule(owner, cameras=[other])
    add_step(elsewhere, 1, 5, channels=[make_channel(owner)])
    critical_only = make_rule(owner, min_severity="critical")
    add_step(critical_only, 1, 5, channels=[make_channel(owner)])
    event_ago(camera, 6, severity="high")
    assert escalate() == []
    now = timezone.now()
    quiet = make_rule(owner, quiet_start=(now - timedelta(hours=1)).time(), quiet_end=(now + timedelta(hours=1)).time(),
                      time_zone="UTC")
    add_step(quiet, 1, 5, channels=[make_channel(owner)])
    assert escalate() == []  # (quiet hours may span midnight)
    assert len(escalate(now=now + timedelta(hours=1, minutes=1))) == 1  # after the quiet hours


def test_the_escalation_schedule_is_defined_once(settings):
    from surveillance.schedules import beat_schedules

    settings.ALERT_ESCALATION_CHECK_SECONDS = 30
    assert beat_schedules()["alerts-escalation"] == {"task": "alerts.tasks.alerts_escalation", "every": 30}


# -- API and admin -------------------------------------------------------------------------------------
def test_the_api_sets_replaces_and_removes_steps(api_as, owner, viewer, camera):
    channel = make_channel(owner)
    body = {"name": "night", "escalation_steps": [
        {"after_minutes": 5, "channels": [channel.pk]},
        {"after_minutes": 15, "users": [viewer.pk]},
    ]}
    response = api_as(owner).post(RULES, body, format="json")
    assert response.status_code == 201, response.json()
    rule = response.json()
    steps = rule["escalation_steps"]
    assert [(s["order"], s["after_minutes"], s["channels"], s["users"], s["group"]) for s in steps] == [
        (1, 5, [channel.pk], [], None), (2, 15, [], [viewer.pk], None)]
    assert api_as(owner).get(f"{RULES}{rule['id']}/").json()["escalation_steps"] == steps
    assert any("escalation_steps" in e.changes for e in AuditEntry.objects.filter(action="rule.create"))

    # Another change of the rule keeps the steps (and their ids: what they fired stays fired).
    patched = api_as(owner).patch(f"{RULES}{rule['id']}/", {"name": "night 2"}, format="json").json()
    assert patched["escalation_steps"] == steps
    replaced = api_as(owner).patch(f"{RULES}{rule['id']}/", {"escalation_steps": [
        {"after_minutes": 3, "users": [viewer.pk]}]}, format="json").json()
    assert [(s["id"], s["after_minutes"], s["users"]) for s in replaced["escalation_steps"]] == [
        (steps[0]["id"], 3, [viewer.pk])]
    cleared = api_as(owner).patch(f"{RULES}{rule['id']}/", {"escalation_steps": []}, format="json").json()
    assert cleared["escalation_steps"] == [] and not EscalationStep.objects.exists()


@pytest.mark.parametrize("step, words", [
    ({"after_minutes": 0, "channels": "mine"}, "after_minutes"),
    ({"after_minutes": 5}, "at least one recipient"),
])
def test_invalid_steps_are_400s(api_as, owner, step, words):
    channel = make_channel(owner)
    step = {k: ([channel.pk] if v == "mine" else v) for k, v in step.items()}
    response = api_as(owner).post(RULES, {"name": "r", "escalation_steps": [step]}, format="json")
    assert response.status_code == 400 and words in json.dumps(response.json())


def test_nobody_attaches_someone_elses_channel_stranger_or_group(api_as, owner, outsider, camera):
    channel = make_channel(owner)
    stranger = UserFactory(username="stranger")  # shares no camera with the owner
    team = Group.objects.create(name="not mine")
    for step, words in (
        ({"after_minutes": 5, "channels": [channel.pk]}, "belongs to the rule's owner"),
    ):
        response = api_as(outsider).post(RULES, {"name": "r", "escalation_steps": [step]}, format="json")
        assert response.status_code == 400 and words in json.dumps(response.json())
    for step, words in (
        ({"after_minutes": 5, "users": [stranger.pk]}, "no user with id"),
        ({"after_minutes": 5, "users": [999999]}, "no user with id"),  # the same answer as a stranger
        ({"after_minutes": 5, "group": team.pk}, "no group with id"),
    ):
        response = api_as(owner).post(RULES, {"name": "r", "escalation_steps": [step]}, format="json")
        assert response.status_code == 400 and words in json.dumps(response.json()), response.json()
    assert not EscalationStep.objects.exists()
    # Someone else's rule is not there at all.
    rule = make_rule(owner)
    add_step(rule, 1, 5, channels=[channel])
    assert api_as(outsider).get(f"{RULES}{rule.pk}/").status_code == 404
    assert api_as(outsider).patch(f"{RULES}{rule.pk}/", {"escalation_steps": []}, format="json").status_code == 404
    assert EscalationStep.objects.count() == 1


def _admin_rule_form(owner, steps) -> dict:
    data = {"owner": owner.pk, "name": "admin rule", "enabled": "on", "all_cameras": "on", "min_severity": "high",
            "time_zone": "", "critical_in_quiet_hours": "on",
            "escalation_steps-TOTAL_FORMS": str(len(steps)), "escalation_steps-INITIAL_FORMS": "0",
            "escalation_steps-MIN_NUM_FORMS": "0", "escalation_steps-MAX_NUM_FORMS": "1000"}
    for i, step in enumerate(steps):
        for key, value in step.items():
            data[f"escalation_steps-{i}-{key}"] = value
    return data


def test_the_admin_edits_steps_inline_with_the_same_checks(admin_client, owner, viewer, outsider):
    mine, theirs = make_channel(owner), make_channel(outsider)
    response = admin_client.post("/admin/alerts/alertrule/add/", _admin_rule_form(owner, [
        {"order": 1, "after_minutes": 5, "channels": [theirs.pk]}]))
    assert response.status_code == 200 and "belongs to the rule&#x27;s owner" in response.content.decode()
    assert not EscalationStep.objects.exists()

    response = admin_client.post("/admin/alerts/alertrule/add/", _admin_rule_form(owner, [
        {"order": 1, "after_minutes": 5, "channels": [mine.pk]},
        {"order": 2, "after_minutes": 10, "users": [viewer.pk]}]))
    assert response.status_code == 302, response.content.decode()[:3000]
    steps = list(EscalationStep.objects.order_by("order"))
    assert [(s.order, s.after_minutes, list(s.channels.all()), list(s.users.all())) for s in steps] == [
        (1, 5, [mine], []), (2, 10, [], [viewer])]
    assert any("escalation_steps" in e.changes for e in AuditEntry.objects.filter(action="rule.update"))
    page = admin_client.get(f"/admin/alerts/alertrule/{steps[0].rule_id}/change/")
    assert page.status_code == 200 and "escalation_steps-0-after_minutes" in page.content.decode()

    # Swapping two steps in one save.
    data = _admin_rule_form(owner, [
        {"id": steps[0].pk, "rule": steps[0].rule_id, "order": 2, "after_minutes": 5, "channels": [mine.pk]},
        {"id": steps[1].pk, "rule": steps[0].rule_id, "order": 1, "after_minutes": 10, "users": [viewer.pk]}])
    data["escalation_steps-INITIAL_FORMS"] = "2"
    response = admin_client.post(f"/admin/alerts/alertrule/{steps[0].rule_id}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert list(EscalationStep.objects.order_by("order").values_list("pk", flat=True)) == [steps[1].pk, steps[0].pk]
    data["escalation_steps-1-order"] = 2  # both 2: refused
    response = admin_client.post(f"/admin/alerts/alertrule/{steps[0].rule_id}/change/", data)
    assert response.status_code == 200 and "its own order" in response.content.decode()
    assert admin_client.get("/admin/alerts/escalation/").status_code == 200


def test_the_admin_picks_a_rules_kinds_from_a_list(admin_client, owner):
    data = _admin_rule_form(owner, [])
    data["kinds"] = ["camera_health", "camera_offline"]
    response = admin_client.post("/admin/alerts/alertrule/add/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    rule = AlertRule.objects.get(name="admin rule")
    assert rule.kinds == ["camera_health", "camera_offline"]
    listing = admin_client.get("/admin/alerts/alertrule/").content.decode()
    assert "Camera health (tamper), Camera offline" in listing
    page = admin_client.get(f"/admin/alerts/alertrule/{rule.pk}/change/").content.decode()
    assert 'type="checkbox" name="kinds" value="camera_health"' in page and "checked" in page
    data["kinds"] = ["meteor"]
    response = admin_client.post(f"/admin/alerts/alertrule/{rule.pk}/change/", data)
    assert response.status_code == 200 and "meteor is not one of the available choices" in response.content.decode()
