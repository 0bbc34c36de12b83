"""Alert workflows: channels and rules, routing stored events, digests, suppression and sending.

Routing (``alerts_route_events``), called after events are stored or updated:

1. every enabled rule whose minimum severity the event meets, whose cameras include the
   event's camera, and whose owner (user, or group) may view that camera, selects its
   owner's enabled channels, and the owner (or each group member who may view the camera)
   for an in-app notification;
2. per slot (a channel, or one user's in-app notifications) the event is routed once per
   severity: an update that does not raise the severity routes nothing; a raise routes the
   event again at the new severity and retires a still-queued lower one;
3. an alert with the same camera, kind and severity as one delivered to the same slot within
   ``ALERT_SUPPRESS_SECONDS`` is suppressed: counted on that delivery (``suppressed_count``)
   and reported by the first message of the slot after the window;
4. what the agent decided urgent (``alert_now``; without a decision, critical and high) goes out at
   once (a delivery queued on commit, see ``alert_urgency``); the rest, and
   anything held by quiet hours, wait for the digest beat (``alerts_digest_build``), which
   sends one message per channel. In-app notifications are always immediate.
5. two-stage alerts: once a slot had an immediate alert about the event, what the event brings
   later (its description, its final severity) is a follow-up linked to that alert (``_follow_up``:
   a delivery of mode ``follow_up``, at most one of each kind per alert), not a second alert; only
   a raise to critical is routed again as an alert.
6. incidents: an event of an incident (events of the cameras of one area within its window), in a
   slot that already had an immediate alert about an earlier event of the incident, is an
   ``incident`` follow-up to that alert (``_route_in_incident``: one thread per incident and slot),
   not a full alert; a raise of what the slot was told of the incident to critical still is one.

Every delivery is a row; failed attempts are retried with exponential backoff up to
``max_attempts`` and then marked failed. Every attempt (the first, a retry, a re-queued one)
checks again that the recipient may still view each event's camera: events it may not are
withheld, and a delivery left with none is cancelled (status ``cancelled``, ``error`` says why).

Escalation (``alerts_escalate``, a beat task): a critical or high event nobody acknowledged
(still ``new``) goes, step by step, to the recipients of the escalation steps of each rule that
applies to it (``EscalationStep``). Each step fires once per event (an ``Escalation`` row,
unique per event and step) and is sent through the same deliveries as any alert.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from arming.selectors import arming_decisions
from arming.services import arming_events_allowed
from audit.services import audit_record
from cameras.groups import user_group
from events.models import AnomalyEvent
from events.selectors import events_by_ids
from events.severity import severity_rank

from . import messages, push, transports
from .models import (
    ESCALATION_SEVERITIES,
    MAX_ESCALATION_MINUTES,
    AlertItem,
    AlertRule,
    Delivery,
    Escalation,
    EscalationStep,
    NotificationChannel,
)
from .selectors import (
    alert_item_existing_severities,
    alert_item_original,
    alert_items_due,
    alert_items_first_immediate,
    alert_items_incident_joined,
    alert_items_incident_thread,
    camera_ids_for_recipient,
    channels_with_due_items,
    deliveries_overdue,
    escalations_fired,
    events_unacknowledged,
    follow_ups_of,
    group_members,
    rules_for_escalation,
    rules_for_routing,
)

log = logging.getLogger(__name__)

IMMEDIATE_SEVERITIES = ("high", "critical")
#: A queued attempt this late, or a send claimed this long ago, is considered lost and re-queued.
OVERDUE_GRACE_SECONDS = 60
#: An attempt may start this much before its scheduled time (clock skew between processes).
ATTEMPT_SLACK = timedelta(seconds=1)

CHANNEL_FIELDS = ("name", "kind", "email", "url", "secret", "enabled")
RULE_FIELDS = ("name", "enabled", "all_cameras", "min_severity", "kinds", "quiet_start", "quiet_end", "time_zone",
               "critical_in_quiet_hours", "notify_in_app")


class PermanentSendError(transports.SendError):
    """A failure that retrying cannot fix (channel deleted or disabled)."""


# -- channels --------------------------------------------------------------------------------------
# Every change is audited (audit.services): who, which object, and the names of the changed fields only
# (a webhook's secret or an Apprise URL's token never reaches the audit log). ``by`` defaults to the owner.
def notification_channel_create(*, owner=None, group=None, by=None, **fields) -> NotificationChannel:
    fields = _only(fields, CHANNEL_FIELDS)
    channel = NotificationChannel(owner=owner, group=group, **fields)
    channel.full_clean()
    with transaction.atomic():
        channel.save()
        audit_record(actor=by or owner, action="channel.create", target=channel, changes=list(fields))
    return channel


def notification_channel_update(*, channel: NotificationChannel, by=None, **fields) -> NotificationChannel:
    fields = _only(fields, CHANNEL_FIELDS)
    if not fields.get("secret"):
        fields.pop("secret", None)  # write-only: leaving it out keeps the current one
    changed = [name for name, value in fields.items() if getattr(channel, name) != value]
    for name, value in fields.items():
        setattr(channel, name, value)
    channel.full_clean()
    with transaction.atomic():
        channel.save()
        if changed:
            audit_record(actor=by or channel.owner, action="channel.update", target=channel, changes=changed)
    return channel


def notification_channel_delete(*, channel: NotificationChannel, by=None) -> None:
    with transaction.atomic():
        audit_record(actor=by or channel.owner, action="channel.delete", target=channel)
        channel.delete()  # its deliveries stay, with channel emptied


def alert_channel_test(*, channel: NotificationChannel, by) -> Delivery:
    """Send a test alert through the channel now (one attempt) and return its delivery record."""
    delivery = _delivery_create(channel=channel, recipient=channel.owner, recipient_group=channel.group,
                                mode=Delivery.Mode.TEST, by=by, max_attempts=1)
    alert_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return delivery


# -- rules -----------------------------------------------------------------------------------------
def alert_rule_create(*, owner=None, group=None, cameras=(), channels=(), escalation_steps=(), by=None,
                      **fields) -> AlertRule:
    fields = _only(fields, RULE_FIELDS)
    rule = AlertRule(owner=owner, group=group, **fields)
    rule.full_clean()
    cameras, channels = alert_rule_check_targets(rule, list(cameras or ()), list(channels or ()))
    steps = alert_rule_check_escalation(rule, list(escalation_steps or ()))
    with transaction.atomic():
        rule.save()
        rule.cameras.set(cameras)
        rule.channels.set(channels)
        _escalation_steps_set(rule, steps)
        audit_record(actor=by or owner, action="rule.create", target=rule,
                     changes=list(fields) + ["cameras", "channels"] + (["escalation_steps"] if steps else []))
    return rule


def alert_rule_update(*, rule: AlertRule, cameras=None, channels=None, escalation_steps=None, by=None,
                      **fields) -> AlertRule:
    """Change a rule; ``cameras``, ``channels`` and ``escalation_steps`` (the whole list) are kept when None."""
    fields = _only(fields, RULE_FIELDS)
    changed = [name for name, value in fields.items() if getattr(rule, name) != value]
    for name, value in fields.items():
        setattr(rule, name, value)
    rule.full_clean()
    old_cameras = sorted(rule.cameras.values_list("id", flat=True))
    old_channels = sorted(rule.channels.values_list("id", flat=True))
    cameras = old_cameras if cameras is None else list(cameras)
    channels = old_channels if channels is None else list(channels)
    cameras, channels = alert_rule_check_targets(rule, cameras, channels)
    changed += [name for name, old, new in (("cameras", old_cameras, cameras), ("channels", old_channels, channels))
                if old != new]
    steps = None
    if escalation_steps is not None:
        steps = alert_rule_check_escalation(rule, list(escalation_steps))
        if steps != _escalation_steps_of(rule):
            changed.append("escalation_steps")
    with transaction.atomic():
        rule.save()
        rule.cameras.set(cameras)
        rule.channels.set(channels)
        if steps is not None:
            _escalation_steps_set(rule, steps)
        if changed:
            audit_record(actor=by or rule.owner, action="rule.update", target=rule, changes=changed)
    return rule


def alert_rule_delete(*, rule: AlertRule, by=None) -> None:
    with transaction.atomic():
        audit_record(actor=by or rule.owner, action="rule.delete", target=rule)
        rule.delete()


def alert_rule_check_targets(rule: AlertRule, cameras: list, channels: list) -> tuple[list[int], list[int]]:
    """Cameras the owner may view and channels of the same owner, or a ValidationError naming the field."""
    errors = {}
    camera_ids = {int(getattr(c, "pk", c)) for c in cameras}
    channel_ids = {int(getattr(c, "pk", c)) for c in channels}
    allowed = camera_ids_for_recipient(user=rule.owner, group=rule.group)
    unknown = sorted(camera_ids - allowed)
    if unknown:
        errors["cameras"] = [f"No camera with id(s) {unknown}, or the owner may not view it."]
    elif not rule.all_cameras and not camera_ids:
        errors["cameras"] = ["Choose at least one camera, or set all_cameras."]
    own = set(NotificationChannel.objects.filter(owner_id=rule.owner_id, group_id=rule.group_id)
              .values_list("id", flat=True))
    foreign = sorted(channel_ids - own)
    if foreign:
        errors["channels"] = [f"No channel with id(s) {foreign} belongs to the rule's owner."]
    if errors:
        raise ValidationError(errors)
    return sorted(camera_ids), sorted(channel_ids)


# -- escalation steps ------------------------------------------------------------------------------------
def alert_rule_check_escalation(rule: AlertRule, steps: list) -> list[dict]:
    """The rule's escalation steps, in order, checked: a ValidationError on ``escalation_steps`` otherwise.

    Each step is a dict: ``after_minutes`` (1 to a day), ``channels`` (the rule owner's own),
    ``users`` (active users who may view at least one camera the owner may view: anyone else answers
    as if they did not exist) and ``group`` (for a user's rule, a group the owner belongs to). A step
    names at least one recipient. Whether a recipient may view the event's camera is checked again
    at every delivery attempt. Returns ``[{"after_minutes", "channels", "users", "group"}]`` with ids.
    """
    errors: list[str] = []
    clean: list[dict] = []
    own = set(NotificationChannel.objects.filter(owner_id=rule.owner_id, group_id=rule.group_id)
              .values_list("id", flat=True))
    shared = camera_ids_for_recipient(user=rule.owner if rule.owner_id else None,
                                      group=rule.group if rule.group_id else None)
    users_ok: dict[int, bool] = {}
    for n, step in enumerate(steps, start=1):
        step = dict(step or {})
        unknown = set(step) - {"after_minutes", "channels", "users", "group"}
        if unknown:
            raise TypeError(f"Unexpected escalation step field(s): {sorted(unknown)}")
        try:
            minutes = int(step.get("after_minutes"))
        except (TypeError, ValueError):
            minutes = 0
        channel_ids = sorted({int(getattr(c, "pk", c)) for c in step.get("channels") or ()})
        user_ids = sorted({int(getattr(u, "pk", u)) for u in step.get("users") or ()})
        group = step.get("group")
        group_id = int(getattr(group, "pk", group)) if group not in (None, "") else None
        if not 1 <= minutes <= MAX_ESCALATION_MINUTES:
            errors.append(f"Step {n}: after_minutes must be between 1 and {MAX_ESCALATION_MINUTES}.")
        foreign = [c for c in channel_ids if c not in own]
        if foreign:
            errors.append(f"Step {n}: no channel with id(s) {foreign} belongs to the rule's owner.")
        for user_id in user_ids:
            if user_id not in users_ok:
                user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
                users_ok[user_id] = user is not None and bool(camera_ids_for_recipient(user=user) & shared)
        strangers = [u for u in user_ids if not users_ok[u]]
        if strangers:
            errors.append(f"Step {n}: no user with id(s) {strangers} may view the rule owner's cameras.")
        if group_id is not None and not _group_allowed(rule, group_id):
            errors.append(f"Step {n}: no group with id {group_id} that the rule's owner belongs to.")
        if not (channel_ids or user_ids or group_id):
            errors.append(f"Step {n}: name at least one recipient (a channel, a user or a group).")
        clean.append({"after_minutes": minutes, "channels": channel_ids, "users": user_ids, "group": group_id})
    if errors:
        raise ValidationError({"escalation_steps": errors})
    return clean


def _group_allowed(rule: AlertRule, group_id: int) -> bool:
    """A user's rule may escalate to a group its owner belongs to; a group's rule (admin) to any group."""
    if rule.owner_id:
        return rule.owner.groups.filter(pk=group_id).exists()
    return Group.objects.filter(pk=group_id).exists()


def _escalation_steps_of(rule: AlertRule) -> list[dict]:
    if rule.pk is None:
        return []
    return [{"after_minutes": s.after_minutes, "channels": sorted(c.pk for c in s.channels.all()),
             "users": sorted(u.pk for u in s.users.all()), "group": s.group_id}
            for s in EscalationStep.objects.filter(rule=rule).prefetch_related("channels", "users").order_by("order")]


def _escalation_steps_set(rule: AlertRule, steps: list[dict]) -> None:
    """Steps 1..n become ``steps``; a step kept at its place keeps its id (and what it already fired)."""
    getattr(rule, "_prefetched_objects_cache", {}).pop("escalation_steps", None)
    existing = list(EscalationStep.objects.filter(rule=rule).order_by("order", "id"))
    EscalationStep.objects.filter(pk__in=[s.pk for s in existing[len(steps):]]).delete()
    for order, spec in enumerate(steps, start=1):
        step = existing[order - 1] if order <= len(existing) else EscalationStep(rule=rule)
        step.order, step.after_minutes, step.group_id = order, spec["after_minutes"], spec["group"]
        step.full_clean(exclude=["rule"])
        step.save()
        step.channels.set(spec["channels"])
        step.users.set(spec["users"])


def alert_escalation_steps_changed(*, rule: AlertRule, by) -> None:
    """Admin: the rule's escalation steps were edited inline (saved by the admin's formset): audited."""
    audit_record(actor=by, action="rule.update", target=rule, changes=["escalation_steps"])


# -- routing -----------------------------------------------------------------------------------------
def alert_kind(event) -> str:
    """What happened, for duplicate suppression: an explicit ``kind``, else the zone rules hit, else 'anomaly'."""
    for source in (event.details, event.decision):
        if isinstance(source, dict) and isinstance(source.get("kind"), str) and source["kind"].strip():
            return source["kind"].strip()[:100]
    details = event.details if isinstance(event.details, dict) else {}
    inner = details.get("detector_details")
    # The worker records the detector's details (zone hits among them) under "detector_details".
    zones = details.get("zones") or (inner.get("zones") if isinstance(inner, dict) else None)
    if isinstance(zones, list):
        rules = sorted({str(z["rule"]) for z in zones if isinstance(z, dict) and z.get("rule")})
        if rules:
            return ("zone:" + ",".join(rules))[:100]
    return "anomaly"


@dataclass
class _Target:
    channel: NotificationChannel | None  # None: in-app
    recipient: object | None
    recipient_group: object | None
    hold_until: datetime | None = None

    @property
    def slot(self) -> dict:
        if self.channel is not None:
            return {"channel_id": self.channel.pk}
        return {"channel__isnull": True, "recipient_id": self.recipient.pk}


class _Viewable:
    """Camera ids each user or group may view, computed once per routing call."""

    def __init__(self):
        self.cache: dict[tuple, set[int]] = {}

    def of(self, *, user=None, group=None) -> set[int]:
        key = ("u", user.pk) if user is not None else ("g", group.pk)
        if key not in self.cache:
            self.cache[key] = camera_ids_for_recipient(user=user, group=group)
        return self.cache[key]


def alerts_route_events(*, event_ids: list) -> None:
    """Route stored (or updated) events to the people responsible for their cameras. Safe to call twice."""
    events = list(events_by_ids(event_ids))
    if not events:
        return
    rules = rules_for_routing()
    if not rules:
        return
    viewable = _Viewable()
    members: dict[int, list] = {}
    now = timezone.now()
    # One transaction for the batch: a digest built meanwhile sees all of its events or none.
    with transaction.atomic():
        armed = arming_events_allowed(events=events)
        for event in events:
            if event.pk not in armed:
                continue  # its camera's arming mode holds its alerts (docs/alerts.md "Arming"); the event stays stored
            # Two-stage alerts: a slot that already had an immediate alert about the event gets a
            # follow-up (the description, the final severity), not a second alert; only a raise to
            # critical is routed again as an alert.
            firsts = {_slot_key(i): i for i in alert_items_first_immediate(event_id=event.pk)}
            # Incidents: the slots whose thread the event already joined (an incident follow-up about it).
            joined = ({_slot_key(i): i for i in alert_items_incident_joined(event_id=event.pk)}
                      if event.incident_id else {})
            joined = {key: item for key, item in joined.items() if key not in firsts}
            for key, target in _targets_for(event, rules, viewable, members, now).items():
                first, join = firsts.pop(key, None), joined.pop(key, None)
                if first is not None and not (event.severity == "critical" and first.severity != "critical"):
                    _follow_up(event, first)
                elif first is None and event.incident_id:
                    _route_in_incident(event, target, join, now)
                else:
                    _route_one(event, target, now)
            for first in (*firsts.values(), *joined.values()):
                # No rule takes the event any more (e.g. its final severity fell under the rule's
                # minimum): who was alerted still hears that it was lowered, if they may view the camera.
                lowered = severity_rank(event.severity) < severity_rank(first.severity)
                if lowered and _may_follow_up(first, event, viewable):
                    _follow_up(event, first)


def _targets_for(event, rules, viewable: _Viewable, members: dict, now) -> dict[tuple, _Target]:
    targets: dict[tuple, _Target] = {}
    for rule in rules:
        if not rule.accepts_severity(event.severity) or not rule.accepts_kind(event.kind):
            continue
        if not rule.all_cameras and event.camera_id not in {c.pk for c in rule.cameras.all()}:
            continue
        owner = rule.owner if rule.owner_id else None
        group = rule.group if rule.group_id else None
        # The permission rule: whatever the rule says, the owner must be allowed to view the camera.
        if event.camera_id not in viewable.of(user=owner, group=group):
            continue
        hold = rule.quiet_until(now, event.severity)
        for channel in rule.channels.all():
            if channel.owner_id != rule.owner_id or channel.group_id != rule.group_id:
                continue  # only the rule owner's own channels: their owner is who was checked above
            key = ("c", channel.pk)
            if key in targets:
                other = targets[key].hold_until
                targets[key].hold_until = None if other is None or hold is None else min(other, hold)
            else:
                targets[key] = _Target(channel=channel, recipient=channel.owner if channel.owner_id else None,
                                       recipient_group=group, hold_until=hold)
        if rule.notify_in_app:
            if owner is not None:
                users = [owner]
            else:
                if group.pk not in members:
                    members[group.pk] = group_members(group)
                users = [u for u in members[group.pk] if event.camera_id in viewable.of(user=u)]
            for user in users:
                targets.setdefault(("u", user.pk), _Target(channel=None, recipient=user, recipient_group=None))
    return targets


#: The agent's actions (inference.agent.ACTIONS, not imported: it would load the inference package), and
#: those of them that ask for an alert at once.
AGENT_ACTIONS = ("record", "notify", "alert_now", "escalate")
URGENT_ACTIONS = ("alert_now", "escalate")


def alert_urgency(event) -> str:
    """How the agent's decision wants channel alerts sent: "immediate" or "digest".

    The agent decides how urgent an event is; the recipient's rule (its minimum severity, cameras
    and quiet hours) decides whether they hear of it at all. From the decision's ``actions``
    (inference.agent.ACTIONS):

    * ``alert_now`` or ``escalate``: at once, whatever the severity (quiet hours still hold it);
    * otherwise (``notify``, or ``record`` alone): the digest, even for high and critical (the
      agent decided it is not urgent).

    Unknown action strings are ignored. Without a usable decision (not a dict, ``actions`` not a
    list or holding no known action, or a ``severity`` other than the event's, so the actions
    were decided for another severity) the severity decides: ``IMMEDIATE_SEVERITIES`` at once,
    the others in the digest.
    """
    decision = event.decision if isinstance(event.decision, dict) else {}
    actions = decision.get("actions")
    decided_for = decision.get("severity", event.severity)
    known = {a for a in actions if isinstance(a, str) and a in AGENT_ACTIONS} if isinstance(actions, list) else set()
    if not known or decided_for != event.severity:
        return "immediate" if event.severity in IMMEDIATE_SEVERITIES else "digest"
    return "immediate" if known & set(URGENT_ACTIONS) else "digest"


def _route_in_incident(event, target: _Target, join: AlertItem | None, now) -> AlertItem | Delivery | None:
    """Route an event of an incident to a slot that had no immediate alert of its own about it.

    The slot's thread is its first immediate alert about an event of the incident (its head). The
    event joins it as an ``incident`` follow-up instead of a full alert (``_route_one`` with the
    head, after the usual suppression, severity and urgency rules); once joined, what it brings
    later (description, final severity) follows up on that follow-up. Exception, as for one event:
    an event raising what the slot was told of the incident to critical goes out as a full alert
    (its own follow-ups then follow it). A slot without a thread (e.g. a recipient who may view
    only this camera) gets a full alert, which heads its thread.
    """
    thread = alert_items_incident_thread(incident_id=event.incident_id, slot=target.slot)
    if event.severity == "critical" and not any(item.severity == "critical" for item in thread):
        return _route_one(event, target, now)
    if join is not None:
        return _follow_up(event, join)
    return _route_one(event, target, now, thread=thread[0] if thread else None)


def _route_one(event, target: _Target, now, thread: AlertItem | None = None) -> AlertItem | None:
    """Route the event to one slot: suppressed, queued for the digest, or an immediate alert (or, with
    ``thread``, the head of the slot's incident thread: an ``incident`` follow-up to it)."""
    rank = severity_rank(event.severity)
    slot = target.slot
    if any(severity_rank(s) >= rank for s in alert_item_existing_severities(event_id=event.pk, slot=slot)):
        return None  # already routed at this severity or above: an update that does not raise it
    # A raise retires the lower severity still waiting for a digest: the event goes out at the new one.
    AlertItem.objects.filter(event_id=event.pk, state=AlertItem.State.QUEUED, **slot).update(
        state=AlertItem.State.SUPERSEDED)
    urgency = alert_urgency(event)
    kind = alert_kind(event)
    item = AlertItem(event=event, channel=target.channel, recipient=target.recipient,
                     recipient_group=target.recipient_group, camera_id=event.camera_id, kind=kind,
                     severity=event.severity, hold_until=target.hold_until)
    since = now - timedelta(seconds=settings.ALERT_SUPPRESS_SECONDS)
    original = alert_item_original(slot=slot, camera_id=event.camera_id, kind=kind, severity=event.severity,
                                   since=since)
    if original is not None:
        item.state, item.original = AlertItem.State.SUPPRESSED, original
        if _save_once(item):
            Delivery.objects.filter(pk=original.delivery_id).update(suppressed_count=F("suppressed_count") + 1)
        return item
    immediate = target.channel is None or (urgency == "immediate" and target.hold_until is None)
    if not immediate:
        item.state = AlertItem.State.QUEUED
        return item if _save_once(item) else None
    if thread is not None:
        joined = _incident_join(event, thread, target, kind)
        if joined is not None:
            return joined
    delivery = _delivery_create(channel=target.channel, recipient=target.recipient,
                                recipient_group=target.recipient_group, mode=Delivery.Mode.IMMEDIATE)
    item.state, item.delivery = AlertItem.State.DELIVERED, delivery
    if not _save_once(item):
        delivery.delete()
        return None
    _attach_earlier_suppressed(delivery=delivery, slot=slot, now=now)
    _queue_on_commit(delivery.pk)
    return item


def _slot_key(item: AlertItem) -> tuple:
    """The ``_targets_for`` key of an item's slot."""
    return ("c", item.channel_id) if item.channel_id else ("u", item.recipient_id)


def _may_follow_up(first: AlertItem, event, viewable: _Viewable) -> bool:
    """A slot outside today's targets: its channel still enabled, its recipient still allowed to view the camera."""
    if first.channel_id and not first.channel.enabled:
        return False
    if first.recipient_id:
        if not first.recipient.is_active:
            return False
        return event.camera_id in viewable.of(user=first.recipient)
    if first.recipient_group_id:
        return event.camera_id in viewable.of(group=first.recipient_group)
    return False


def _follow_up(event, first: AlertItem) -> Delivery | None:
    """A follow-up to the immediate alert ``first`` when the event brings what it did not say. Safe to call twice.

    * ``description``: the event has a description the first alert did not carry (at most one per alert);
    * ``severity``: the event is closed (its final decision) with a severity other than the one the
      recipient was last told (at most one per alert).

    Nothing when the first alert was cancelled or failed (the recipient never had it).
    """
    # Locked: two routings of the same event at once decide one after the other, each seeing the
    # follow-ups the other made (the second waits for the first's commit).
    alert = Delivery.objects.select_for_update().filter(pk=first.delivery_id).first()
    if alert is None or alert.status in (Delivery.Status.CANCELLED, Delivery.Status.FAILED):
        return None
    earlier = follow_ups_of(delivery_id=alert.pk)
    done = {d.follow_up_kind for d in earlier}
    told = next((d.told for d in reversed(earlier) if d.told and d.status != Delivery.Status.CANCELLED),
                first.severity)
    if ((event.description or "").strip() and Delivery.FollowUpKind.DESCRIPTION not in done
            and not messages.carries_description(alert, event)):
        kind = Delivery.FollowUpKind.DESCRIPTION
    elif event.ended_at is not None and event.severity != told and Delivery.FollowUpKind.SEVERITY not in done:
        kind = Delivery.FollowUpKind.SEVERITY
    else:
        return None
    try:
        with transaction.atomic():
            delivery = _delivery_create(channel=first.channel, recipient=first.recipient,
                                        recipient_group=first.recipient_group, mode=Delivery.Mode.FOLLOW_UP,
                                        medium=alert.medium, follow_up_of=alert, follow_up_kind=kind)
    except IntegrityError:
        return None  # a concurrent routing of the same update made it
    AlertItem.objects.create(event=event, channel=first.channel, recipient=first.recipient,
                             recipient_group=first.recipient_group, camera_id=event.camera_id, kind=first.kind,
                             severity=event.severity, state=AlertItem.State.DELIVERED, delivery=delivery,
                             follow_up=True)
    _queue_on_commit(delivery.pk)
    return delivery


def _incident_join(event, head: AlertItem, target: _Target, kind: str) -> AlertItem | None:
    """An ``incident`` follow-up about ``event`` to the alert heading the slot's incident thread. Safe to call twice.

    None when that alert was cancelled or failed meanwhile (the caller sends a full alert instead).
    The head's delivery is locked: two routings of the event at once decide one after the other, and
    the second finds the follow-up the first made (one per event and slot).
    """
    alert = Delivery.objects.select_for_update().filter(pk=head.delivery_id).first()
    if alert is None or alert.status in (Delivery.Status.CANCELLED, Delivery.Status.FAILED):
        return None
    existing = AlertItem.objects.filter(event_id=event.pk, follow_up=True, escalation__isnull=True,
                                        delivery__follow_up_kind=Delivery.FollowUpKind.INCIDENT,
                                        **target.slot).first()
    if existing is not None:
        return existing
    delivery = _delivery_create(channel=target.channel, recipient=target.recipient,
                                recipient_group=target.recipient_group, mode=Delivery.Mode.FOLLOW_UP,
                                medium=alert.medium, follow_up_of=alert, follow_up_kind=Delivery.FollowUpKind.INCIDENT)
    item = AlertItem.objects.create(event=event, channel=target.channel, recipient=target.recipient,
                                    recipient_group=target.recipient_group, camera_id=event.camera_id, kind=kind,
                                    severity=event.severity, state=AlertItem.State.DELIVERED, delivery=delivery,
                                    follow_up=True)
    _queue_on_commit(delivery.pk)
    return item


def _save_once(item: AlertItem) -> bool:
    """Insert the item unless a concurrent routing of the same event already did (unique per slot/severity)."""
    try:
        with transaction.atomic():
            item.save()
        return True
    except IntegrityError:
        return False


def _attach_earlier_suppressed(*, delivery: Delivery, slot: dict, now) -> int:
    """The first message of a slot after a suppression window reports what the window suppressed."""
    window_start = now - timedelta(seconds=settings.ALERT_SUPPRESS_SECONDS)
    return AlertItem.objects.filter(
        **slot, state=AlertItem.State.SUPPRESSED, reported_in__isnull=True,
        original__delivery__created_at__lt=window_start,
    ).update(reported_in=delivery)


def _delivery_create(*, channel, recipient, recipient_group, mode, by=None, max_attempts=None,
                     medium=None, follow_up_of=None, follow_up_kind="") -> Delivery:
    return Delivery.objects.create(
        channel=channel, medium=medium or (channel.kind if channel is not None else Delivery.Medium.IN_APP),
        recipient=recipient, recipient_group=recipient_group, requested_by=by, mode=mode,
        status=Delivery.Status.PENDING, max_attempts=max_attempts or settings.ALERT_MAX_ATTEMPTS,
        next_attempt_at=timezone.now(), follow_up_of=follow_up_of, follow_up_kind=follow_up_kind,
    )


def _queue_on_commit(delivery_id: int, countdown: float | None = None) -> None:
    def queue():
        from .tasks import alert_deliver

        try:
            if countdown:
                alert_deliver.apply_async((delivery_id,), countdown=countdown)
            else:
                alert_deliver.delay(delivery_id)
        except Exception:  # the broker is down: the digest beat re-queues overdue deliveries
            log.exception("Could not queue alert delivery %s; the digest beat will retry it", delivery_id)

    transaction.on_commit(queue)


# -- escalation ------------------------------------------------------------------------------------------
def alerts_escalate(*, now=None) -> list[int]:
    """Fire the escalation steps that are due; returns the new delivery ids. Safe to run twice.

    For each critical or high event still ``new`` (not acknowledged, resolved or a false alarm) that
    started less than ``ALERT_ESCALATION_MAX_AGE_HOURS`` ago, and each enabled rule with steps that
    applies to it (severity, cameras, the owner may view the camera): step 1 is due ``after_minutes``
    after the event started, each later step ``after_minutes`` after the previous one fired. During
    the rule's quiet hours (unless critical ones pass) a due step waits for their end.
    """
    now = now or timezone.now()
    rules = rules_for_escalation()
    if not rules:
        return []
    events = events_unacknowledged(since=now - timedelta(hours=settings.ALERT_ESCALATION_MAX_AGE_HOURS))
    if not events:
        return []
    fired = escalations_fired(event_ids=[e.pk for e in events])
    viewable = _Viewable()
    made: list[int] = []
    armed = arming_decisions(events, at=now)
    for event in events:
        if not armed[event.pk][0]:
            continue  # its camera is disarmed now (or its mode does not let this event alert): no escalation
        for rule in rules:
            if not _rule_applies(rule, event, viewable) or rule.quiet_until(now, event.severity) is not None:
                continue
            since = event.started_at
            for step in rule.escalation_steps.all():
                fired_at = fired.get((event.pk, step.pk))
                if fired_at is not None:
                    since = fired_at
                    continue
                if now >= since + timedelta(minutes=step.after_minutes):
                    made += _escalation_fire(event, rule, step, now)
                break
    return made


def _rule_applies(rule: AlertRule, event, viewable: _Viewable) -> bool:
    if not rule.accepts_severity(event.severity) or not rule.accepts_kind(event.kind):
        return False
    if not rule.all_cameras and event.camera_id not in {c.pk for c in rule.cameras.all()}:
        return False
    return event.camera_id in viewable.of(user=rule.owner if rule.owner_id else None,
                                          group=rule.group if rule.group_id else None)


def _escalation_fire(event, rule: AlertRule, step: EscalationStep, now) -> list[int]:
    """Record the step as fired for the event (once: unique) and queue a delivery per recipient."""
    made = []
    with transaction.atomic():
        # An operator acknowledging it meanwhile wins: the event row is locked and read again.
        current = AnomalyEvent.objects.select_for_update().filter(pk=event.pk).first()
        if (current is None or current.status != AnomalyEvent.Status.NEW or current.acknowledged_at is not None
                or current.severity not in ESCALATION_SEVERITIES):
            return []
        escalation = Escalation(event=current, step=step, rule=rule, order=step.order, after_minutes=step.after_minutes,
                                unacknowledged_minutes=max(0, int((now - current.started_at).total_seconds() // 60)),
                                fired_at=now)
        try:
            with transaction.atomic():
                escalation.save()
        except IntegrityError:
            return []  # another run fired it
        kind = alert_kind(current)
        group = rule.group if rule.group_id else None
        targets: list[tuple] = []
        for channel in step.channels.all():  # enabled ones (selectors.rules_for_escalation)
            if channel.owner_id == rule.owner_id and channel.group_id == rule.group_id:
                targets.append((channel, None, channel.owner if channel.owner_id else None, group))
        users = {u.pk: u for u in step.users.all() if u.is_active}
        if step.group_id:
            users.update({u.pk: u for u in group_members(step.group)})
        for user in users.values():
            if user.email:
                targets.append((None, Delivery.Medium.EMAIL, user, None))
            targets.append((None, Delivery.Medium.IN_APP, user, None))
        for channel, medium, recipient, recipient_group in targets:
            delivery = _delivery_create(channel=channel, recipient=recipient, recipient_group=recipient_group,
                                        mode=Delivery.Mode.ESCALATION, medium=medium)
            AlertItem.objects.create(event=current, channel=channel, recipient=recipient,
                                     recipient_group=recipient_group, camera_id=current.camera_id, kind=kind,
                                     severity=current.severity, state=AlertItem.State.DELIVERED, delivery=delivery,
                                     escalation=escalation)
            _queue_on_commit(delivery.pk)
            made.append(delivery.pk)
    log.info("Escalation: event %s step %d of rule %s: %d deliveries", event.pk, step.order, rule.pk, len(made))
    return made


# -- digests and recovery --------------------------------------------------------------------------------
def alerts_digest_build(*, now=None) -> list[int]:
    """One digest delivery per channel with queued alerts that are due; returns the new delivery ids."""
    now = now or timezone.now()
    made = []
    for channel_id in channels_with_due_items(now=now):
        with transaction.atomic():
            channel = (NotificationChannel.objects.select_for_update(of=("self",)).select_related("owner", "group")
                       .filter(pk=channel_id, enabled=True).first())
            if channel is None:
                continue
            items = alert_items_due(channel_id=channel.pk, now=now)
            # Permissions may have changed since routing: never send a camera the owner may no longer view.
            allowed = camera_ids_for_recipient(user=channel.owner if channel.owner_id else None,
                                               group=channel.group if channel.group_id else None)
            withheld = [i.pk for i in items if i.camera_id not in allowed]
            keep = [i.pk for i in items if i.camera_id in allowed]
            if withheld:
                AlertItem.objects.filter(pk__in=withheld, state=AlertItem.State.QUEUED).update(
                    state=AlertItem.State.WITHHELD)
            if not keep:
                continue
            delivery = _delivery_create(channel=channel, recipient=channel.owner if channel.owner_id else None,
                                        recipient_group=channel.group if channel.group_id else None,
                                        mode=Delivery.Mode.DIGEST)
            taken = AlertItem.objects.filter(pk__in=keep, state=AlertItem.State.QUEUED).update(
                state=AlertItem.State.DELIVERED, delivery=delivery)
            if not taken:
                delivery.delete()
                continue
            _attach_earlier_suppressed(delivery=delivery, slot={"channel_id": channel.pk}, now=now)
            _queue_on_commit(delivery.pk)
            made.append(delivery.pk)
    return made


def alerts_requeue_overdue(*, now=None) -> list[int]:
    """Re-queue deliveries whose queued attempt was lost or whose sender died mid-send."""
    now = now or timezone.now()
    grace = timedelta(seconds=OVERDUE_GRACE_SECONDS)
    sending_before = now - grace - timedelta(seconds=3 * settings.ALERT_HTTP_TIMEOUT)
    ids = []
    for delivery in deliveries_overdue(pending_before=now - grace, sending_before=sending_before):
        with transaction.atomic():
            # A send interrupted mid-way counts as an attempt (it was counted when claimed).
            Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENDING).update(
                status=Delivery.Status.PENDING, next_attempt_at=now, claimed_at=None)
            _queue_on_commit(delivery.pk)
        ids.append(delivery.pk)
    return ids


def alert_delivery_retry(*, delivery: Delivery) -> Delivery:
    """Admin: give a failed delivery a fresh series of attempts."""
    now = timezone.now()
    with transaction.atomic():
        updated = Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.FAILED).update(
            status=Delivery.Status.PENDING, next_attempt_at=now,
            max_attempts=F("attempts") + settings.ALERT_MAX_ATTEMPTS)
        if updated:
            _queue_on_commit(delivery.pk)
    delivery.refresh_from_db()
    return delivery


# -- sending ---------------------------------------------------------------------------------------
def alert_delivery_attempt(*, delivery_id: int) -> float | None:
    """Make one attempt to send a pending delivery that is due. Safe to call twice.

    Returns the delay before the next attempt (queued on commit) when it failed and may be
    retried, else None.
    """
    now = timezone.now()
    claimed = Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + ATTEMPT_SLACK)
    ).update(status=Delivery.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1, updated_at=now)
    if not claimed:
        return None  # already sent, failed, being sent, or not yet due
    delivery = Delivery.objects.select_related("channel__owner", "recipient", "recipient_group").get(pk=delivery_id)
    allowed = None
    if delivery.mode != Delivery.Mode.TEST:
        # Permissions may have changed since routing or the last attempt: checked again at every attempt.
        allowed = camera_ids_for_recipient(user=delivery.recipient if delivery.recipient_id else None,
                                           group=delivery.recipient_group if delivery.recipient_group_id else None)
        with transaction.atomic():
            why = _withhold_unviewable(delivery, allowed)
            if why:
                Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.SENDING).update(
                    status=Delivery.Status.CANCELLED, error=why, next_attempt_at=None, claimed_at=None,
                    updated_at=timezone.now())
        if why:
            log.info("Alert delivery %s: %s", delivery_id, why)
            return None
    if delivery.mode == Delivery.Mode.FOLLOW_UP:
        why, wait = _follow_up_hold(delivery, now)
        if wait is not None:
            return _follow_up_postpone(delivery, wait)
        if why:
            Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.SENDING).update(
                status=Delivery.Status.CANCELLED, error=why, next_attempt_at=None, claimed_at=None,
                updated_at=timezone.now())
            log.info("Alert delivery %s: %s", delivery_id, why)
            return None
    message = None
    try:
        message = _render(delivery, allowed)
        _transport(delivery, message)
    except Exception as exc:
        if not isinstance(exc, transports.SendError):
            log.exception("Alert delivery %s failed unexpectedly", delivery_id)
        return _attempt_failed(delivery, message, str(exc) or type(exc).__name__,
                               permanent=isinstance(exc, (PermanentSendError, transports.NotConfigured)))
    Delivery.objects.filter(pk=delivery_id).update(
        status=Delivery.Status.SENT, sent_at=timezone.now(), error="", next_attempt_at=None, claimed_at=None,
        subject=message.subject, body=message.text, updated_at=timezone.now())
    return None


def _attempt_failed(delivery: Delivery, message, error: str, *, permanent: bool) -> float | None:
    now = timezone.now()
    fields = {"error": error[:2000], "claimed_at": None, "updated_at": now}
    if message is not None:
        fields.update(subject=message.subject, body=message.text)
    if delivery.may_retry() and not permanent:
        delay = delivery.retry_delay(settings.ALERT_RETRY_BASE_SECONDS)
        with transaction.atomic():
            Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENDING).update(
                status=Delivery.Status.PENDING, next_attempt_at=now + timedelta(seconds=delay), **fields)
            _queue_on_commit(delivery.pk, countdown=delay)
        log.info("Alert delivery %s attempt %d failed (%s); retrying in %.3g s", delivery.pk, delivery.attempts,
                 error, delay)
        return delay
    Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENDING).update(
        status=Delivery.Status.FAILED, next_attempt_at=None, **fields)
    log.warning("Alert delivery %s failed after %d attempt(s): %s", delivery.pk, delivery.attempts, error)
    return None


#: A follow-up waits for its first alert (still being sent or retried) at most this long, then gives up.
FOLLOW_UP_MAX_WAIT = timedelta(hours=1)


def _follow_up_hold(delivery: Delivery, now) -> tuple[str, float | None]:
    """Whether a follow-up may go now: ("", None) yes; (why, None) never (cancel it); ("", seconds) later.

    It goes after its first alert only: while the first is still being sent (or retried) it waits;
    when the first was cancelled or failed (the recipient never had it), or already carried the
    description it would bring (the first was sent after the description arrived), it is not sent.
    """
    first = delivery.follow_up_of
    if first is None:
        return "Cancelled: the alert this follow-up completes was deleted; nothing was sent.", None
    first = Delivery.objects.filter(pk=first.pk).first()
    if first is None or first.status in (Delivery.Status.CANCELLED, Delivery.Status.FAILED):
        state = first.status if first is not None else "deleted"
        return (f"Cancelled: the alert this follow-up completes (delivery {delivery.follow_up_of_id}) was not "
                f"delivered ({state}); nothing was sent."), None
    if first.status != Delivery.Status.SENT:
        if now - delivery.created_at > FOLLOW_UP_MAX_WAIT:
            return (f"Cancelled: the alert this follow-up completes (delivery {first.pk}) was still not sent "
                    f"after {int(FOLLOW_UP_MAX_WAIT.total_seconds() // 60)} minutes; nothing was sent."), None
        return "", max(1.0, float(settings.ALERT_RETRY_BASE_SECONDS))
    if delivery.follow_up_kind == Delivery.FollowUpKind.DESCRIPTION:
        item = delivery.items.select_related("event").first()
        if item is not None and messages.carries_description(first, item.event):
            return ("Cancelled: the alert this follow-up completes already carried the description; "
                    "nothing was sent."), None
    return "", None


def _follow_up_postpone(delivery: Delivery, wait: float) -> float:
    """The first alert is not sent yet: try again in ``wait`` seconds (not counted as an attempt)."""
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENDING).update(
            status=Delivery.Status.PENDING, attempts=F("attempts") - 1, claimed_at=None,
            next_attempt_at=timezone.now() + timedelta(seconds=wait), updated_at=timezone.now())
        _queue_on_commit(delivery.pk, countdown=wait)
    log.info("Alert delivery %s: a follow-up waits %.3g s for its first alert", delivery.pk, wait)
    return wait


def _withhold_unviewable(delivery: Delivery, allowed: set[int]) -> str:
    """Withhold the delivery's events whose camera the recipient may no longer view (state ``withheld``).

    Returns why nothing is left to send when that was all of them, else "" (the rest is sent).
    """
    items = list(delivery.items.filter(state=AlertItem.State.DELIVERED).values_list("id", "camera_id"))
    withheld = [pk for pk, camera_id in items if camera_id not in allowed]
    if not withheld:
        return ""
    AlertItem.objects.filter(pk__in=withheld, state=AlertItem.State.DELIVERED).update(state=AlertItem.State.WITHHELD)
    if len(withheld) < len(items):
        return ""
    cameras = sorted({camera_id for _, camera_id in items})
    who = "the recipient" if delivery.recipient_id else "the recipient group"
    what = f"camera {cameras[0]}" if len(cameras) == 1 else f"cameras {', '.join(map(str, cameras))}"
    return f"Cancelled: {who} may no longer view {what} (access revoked after the alert was routed); nothing was sent."


def _render(delivery: Delivery, allowed: set[int] | None = None) -> transports.Message:
    """The message to send; ``allowed`` (camera ids the recipient may view) leaves out other cameras' reports."""
    if delivery.mode == Delivery.Mode.TEST:
        if delivery.channel is None:
            raise PermanentSendError("The channel was deleted.")
        return messages.render_test(delivery=delivery, channel=delivery.channel)
    if delivery.mode == Delivery.Mode.FOLLOW_UP:
        return _render_follow_up(delivery, allowed)
    with transaction.atomic():
        # Duplicates suppressed so far against this message are counted in it ("+N similar").
        AlertItem.objects.filter(original__delivery=delivery, state=AlertItem.State.SUPPRESSED,
                                 reported_in__isnull=True).update(reported_in=delivery)
        reported = list(AlertItem.objects.filter(reported_in=delivery).select_related("camera", "original"))
        similar = Counter(i.original_id for i in reported if i.original and i.original.delivery_id == delivery.pk)
        earlier = [i for i in reported if not (i.original and i.original.delivery_id == delivery.pk)
                   and (allowed is None or i.camera_id in allowed)]
        Delivery.objects.filter(pk=delivery.pk).update(reported_count=len(earlier))
    items = list(delivery.items.filter(state=AlertItem.State.DELIVERED)
                 .select_related("event__camera", "event__incident__area", "escalation")
                 .order_by("event__started_at", "id"))
    if not items:
        raise PermanentSendError("The delivery has no events left (they were deleted).")
    reports = messages.summarize_reports(earlier)
    escalation = items[0].escalation if delivery.mode == Delivery.Mode.ESCALATION else None
    if delivery.medium == Delivery.Medium.IN_APP:
        return messages.render_in_app(delivery=delivery, item=items[0], similar=similar.get(items[0].pk, 0),
                                      reports=reports, escalation=escalation)
    return messages.render_alert(delivery=delivery, items=items, similar=dict(similar), reports=reports,
                                 escalation=escalation)


def _render_follow_up(delivery: Delivery, allowed: set[int] | None = None) -> transports.Message:
    item = (delivery.items.filter(state=AlertItem.State.DELIVERED)
            .select_related("event__camera", "event__incident__area").first())
    if item is None:
        raise PermanentSendError("The delivery has no events left (they were deleted).")
    first = delivery.follow_up_of
    # The severity the recipient was told before this follow-up: the latest earlier one's, else the first's
    # (whose own item is a follow-up's when the first is an incident follow-up: the event's place in the thread).
    previous = next((d.told for d in reversed(follow_ups_of(delivery_id=first.pk))
                     if d.pk < delivery.pk and d.told and d.status != Delivery.Status.CANCELLED), "") if first else ""
    if not previous and first is not None:
        previous = first.items.filter(follow_up=first.mode == Delivery.Mode.FOLLOW_UP).values_list(
            "severity", flat=True).first() or ""
    # The thread's head: the alert an in-app update replaces. Its subject is replied to only while the
    # recipient may still view its camera (an incident's head is about another camera).
    head = first
    while head is not None and head.mode == Delivery.Mode.FOLLOW_UP and head.follow_up_of_id:
        head = head.follow_up_of
    head_cameras = set(head.items.values_list("camera_id", flat=True)) if head is not None else set()
    reply = allowed is None or head_cameras <= allowed
    return messages.render_follow_up(delivery=delivery, first=first, item=item,
                                     previous_severity=previous or item.event.severity, head=head, reply=reply)


def _transport(delivery: Delivery, message: transports.Message) -> None:
    if delivery.medium == Delivery.Medium.IN_APP:
        transports.send_in_app(group=user_group(delivery.recipient_id), message=message)
        push.push_queue(user_id=delivery.recipient_id, payload=message.payload)  # Web Push: queued, never blocks
        return
    channel = delivery.channel
    if channel is None and delivery.mode == Delivery.Mode.ESCALATION and delivery.medium == Delivery.Medium.EMAIL:
        # An escalation to a user (not through a channel): their account's address. (A deleted channel's
        # escalation items went with it, so such a delivery never gets here.)
        recipient = delivery.recipient
        if recipient is None or not recipient.is_active or not recipient.email:
            raise PermanentSendError("The recipient has no email address (or was deactivated).")
        transports.send_email(address=recipient.email, message=message)
        return
    if channel is None:
        raise PermanentSendError("The channel was deleted.")
    if not channel.enabled and delivery.mode != Delivery.Mode.TEST:
        raise PermanentSendError("The channel is disabled.")
    if channel.kind == NotificationChannel.Kind.EMAIL:
        transports.send_email(address=channel.address(), message=message)
    elif channel.kind == NotificationChannel.Kind.WEBHOOK:
        transports.send_webhook(url=channel.url, secret=channel.secret, message=message, delivery_id=delivery.pk,
                                attempt=delivery.attempts)
    elif channel.kind == NotificationChannel.Kind.APPRISE:
        transports.send_apprise(url=channel.url, message=message)
    else:
        raise PermanentSendError(f"Unknown channel kind '{channel.kind}'.")


def _only(fields: dict, allowed) -> dict:
    unknown = set(fields) - set(allowed)
    if unknown:
        raise TypeError(f"Unexpected field(s): {sorted(unknown)}")
    return dict(fields)
