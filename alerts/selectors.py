"""Reads of alert channels, rules and deliveries, with the permission filtering of cameras.selectors."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db.models import Prefetch, Q, QuerySet
from guardian.shortcuts import get_objects_for_group

from cameras.models import Camera
from cameras.selectors import VIEW, camera_ids_for_user
from events.models import AnomalyEvent

from .models import (
    ESCALATION_SEVERITIES,
    AlertItem,
    AlertRule,
    Delivery,
    Escalation,
    EscalationStep,
    NotificationChannel,
    PushSubscription,
)


# -- API: a user's own -------------------------------------------------------------------------
def channel_list_for_user(user) -> QuerySet:
    """Channels the user owns (group channels are managed by administrators in the admin)."""
    if not getattr(user, "is_authenticated", False):
        return NotificationChannel.objects.none()
    return NotificationChannel.objects.filter(owner=user).order_by("id")


def channel_get_for_user(user, channel_id) -> NotificationChannel | None:
    return channel_list_for_user(user).filter(pk=channel_id).first()


def rule_list_for_user(user) -> QuerySet:
    if not getattr(user, "is_authenticated", False):
        return AlertRule.objects.none()
    return AlertRule.objects.filter(owner=user).prefetch_related(
        "cameras", "channels",
        Prefetch("escalation_steps", queryset=EscalationStep.objects.prefetch_related("channels", "users")),
    ).order_by("id")


def rule_get_for_user(user, rule_id) -> AlertRule | None:
    return rule_list_for_user(user).filter(pk=rule_id).first()


def delivery_list_for_user(user, *, status=None, channel=None, mode=None) -> QuerySet:
    """Deliveries addressed to the user, newest first."""
    if not getattr(user, "is_authenticated", False):
        return Delivery.objects.none()
    qs = Delivery.objects.filter(recipient=user).select_related("channel").prefetch_related(
        Prefetch("items", queryset=AlertItem.objects.only("id", "delivery_id", "event_id")))
    if status:
        qs = qs.filter(status=status)
    if channel is not None:
        qs = qs.filter(channel_id=channel)
    if mode:
        qs = qs.filter(mode=mode)
    return qs.order_by("-created_at", "-id")


def delivery_get_for_user(user, delivery_id) -> Delivery | None:
    return delivery_list_for_user(user).filter(pk=delivery_id).first()


# -- routing -------------------------------------------------------------------------------------
def rules_for_routing() -> list[AlertRule]:
    """Enabled rules with their cameras, enabled channels of the same owner, and owners."""
    return list(
        AlertRule.objects.filter(enabled=True)
        .filter(Q(owner__isnull=True) | Q(owner__is_active=True))
        .select_related("owner", "group")
        .prefetch_related(
            Prefetch("cameras", queryset=Camera.objects.only("id")),
            Prefetch("channels", queryset=NotificationChannel.objects.filter(enabled=True).select_related("owner")),
        )
    )


def camera_ids_for_group(group: Group) -> set[int]:
    """Cameras a group may view (object grants or a global grant); every member inherits them."""
    return set(get_objects_for_group(group, VIEW, klass=Camera, accept_global_perms=True)
               .values_list("id", flat=True))


def camera_ids_for_recipient(*, user=None, group=None) -> set[int]:
    if user is not None:
        return camera_ids_for_user(user)
    if group is not None:
        return camera_ids_for_group(group)
    return set()


def group_members(group: Group) -> list:
    return list(group.user_set.filter(is_active=True))


def alert_item_existing_severities(*, event_id, slot: dict) -> list[str]:
    return list(AlertItem.objects.filter(event_id=event_id, escalation__isnull=True, follow_up=False, **slot)
                .values_list("severity", flat=True))


def alert_items_first_immediate(*, event_id) -> list[AlertItem]:
    """Every immediate alert of the event (routing's own, not an escalation's), oldest first, with its delivery.

    Two-stage alerts: what arrives for the event after one of them (the description, the final
    severity) is a follow-up to it, not a second alert.
    """
    return list(
        AlertItem.objects.filter(event_id=event_id, escalation__isnull=True, follow_up=False,
                                 state=AlertItem.State.DELIVERED, delivery__mode=Delivery.Mode.IMMEDIATE)
        .select_related("delivery", "channel__owner", "recipient", "recipient_group")
        .order_by("delivery__created_at", "id")
    )


def alert_items_incident_thread(*, incident_id: int, slot: dict) -> list[AlertItem]:
    """The immediate alerts one slot had about the events of an incident, oldest first, with their deliveries.

    Incidents: the first of them heads the slot's thread (later events of the incident are follow-ups
    to it); alerts that were cancelled or failed (the recipient never had them) do not count.
    """
    return list(
        AlertItem.objects.filter(event__incident_id=incident_id, escalation__isnull=True, follow_up=False,
                                 state=AlertItem.State.DELIVERED, delivery__mode=Delivery.Mode.IMMEDIATE, **slot)
        .exclude(delivery__status__in=(Delivery.Status.CANCELLED, Delivery.Status.FAILED))
        .select_related("delivery", "channel__owner", "recipient", "recipient_group")
        .order_by("delivery__created_at", "id")
    )


def alert_items_incident_joined(*, event_id) -> list[AlertItem]:
    """The event's incident follow-ups (one per slot whose thread it joined), oldest first.

    What the event brings later (its description, its final severity) follows up on these, as it
    would on an immediate alert of its own.
    """
    return list(
        AlertItem.objects.filter(event_id=event_id, escalation__isnull=True, follow_up=True,
                                 delivery__mode=Delivery.Mode.FOLLOW_UP,
                                 delivery__follow_up_kind=Delivery.FollowUpKind.INCIDENT)
        .select_related("delivery", "channel__owner", "recipient", "recipient_group")
        .order_by("delivery__created_at", "id")
    )


def follow_ups_of(*, delivery_id: int) -> list[Delivery]:
    """The follow-ups of one alert about its own event, oldest first, with the severity each was routed at
    (``told``). An incident's thread (follow-ups about its other events, kind ``incident``) is left out:
    they tell of other events."""
    deliveries = list(Delivery.objects.filter(follow_up_of_id=delivery_id)
                      .exclude(follow_up_kind=Delivery.FollowUpKind.INCIDENT).order_by("created_at", "id"))
    told = dict(AlertItem.objects.filter(delivery__in=deliveries, follow_up=True)
                .values_list("delivery_id", "severity"))
    for d in deliveries:
        d.told = told.get(d.pk, "")
    return deliveries


def alert_item_original(*, slot: dict, camera_id: int, kind: str, severity: str, since) -> AlertItem | None:
    """The latest delivered alert with the same camera, kind and severity to the same slot since ``since``."""
    return (
        AlertItem.objects.filter(**slot, camera_id=camera_id, kind=kind, severity=severity, original__isnull=True,
                                 state=AlertItem.State.DELIVERED, delivery__created_at__gte=since,
                                 escalation__isnull=True, follow_up=False)
        .exclude(delivery__status=Delivery.Status.FAILED)
        .order_by("-delivery__created_at", "-id")
        .first()
    )


def channels_with_due_items(*, now) -> list[int]:
    return list(
        AlertItem.objects.filter(state=AlertItem.State.QUEUED, channel__isnull=False, channel__enabled=True)
        .filter(Q(hold_until__isnull=True) | Q(hold_until__lte=now))
        .values_list("channel_id", flat=True).distinct()
    )


def alert_items_due(*, channel_id: int, now) -> list[AlertItem]:
    return list(
        AlertItem.objects.filter(state=AlertItem.State.QUEUED, channel_id=channel_id)
        .filter(Q(hold_until__isnull=True) | Q(hold_until__lte=now))
        .select_related("event__camera").order_by("event__started_at", "id")
    )


def deliveries_overdue(*, pending_before, sending_before) -> QuerySet:
    """Deliveries whose queued attempt got lost (broker restart) or whose sender died mid-send."""
    return Delivery.objects.filter(
        Q(status=Delivery.Status.PENDING, next_attempt_at__lt=pending_before)
        | Q(status=Delivery.Status.SENDING, claimed_at__lt=sending_before)
    )


# -- escalation -----------------------------------------------------------------------------------
def rules_for_escalation() -> list[AlertRule]:
    """Enabled rules with at least one escalation step: their cameras, steps (in order) and recipients."""
    return list(
        AlertRule.objects.filter(enabled=True, escalation_steps__isnull=False)
        .filter(Q(owner__isnull=True) | Q(owner__is_active=True))
        .distinct()
        .select_related("owner", "group")
        .prefetch_related(
            Prefetch("cameras", queryset=Camera.objects.only("id")),
            Prefetch("escalation_steps", queryset=EscalationStep.objects.select_related("group").prefetch_related(
                Prefetch("channels", queryset=NotificationChannel.objects.filter(enabled=True)
                         .select_related("owner")),
                "users",
            ).order_by("order", "id")),
        )
    )


def events_unacknowledged(*, since) -> list:
    """Critical and high events started since ``since`` that nobody acknowledged, resolved or dismissed."""
    return list(AnomalyEvent.objects.filter(
        severity__in=ESCALATION_SEVERITIES, status=AnomalyEvent.Status.NEW, acknowledged_at__isnull=True,
        started_at__gte=since,
    ).order_by("started_at"))


def escalations_fired(*, event_ids) -> dict[tuple, object]:
    """{(event id, step id): when it fired} for the steps already fired for these events."""
    return {(event_id, step_id): fired_at for event_id, step_id, fired_at in
            Escalation.objects.filter(event_id__in=list(event_ids), step__isnull=False)
            .values_list("event_id", "step_id", "fired_at")}


# -- Web Push: a user's own subscriptions -------------------------------------------------------------
def push_subscription_list_for_user(user) -> QuerySet:
    """The user's Web Push subscriptions (one per browser or app); nobody sees another user's."""
    if not getattr(user, "is_authenticated", False):
        return PushSubscription.objects.none()
    return PushSubscription.objects.filter(user=user).order_by("id")


def push_subscription_get_for_user(user, subscription_id):
    return push_subscription_list_for_user(user).filter(pk=subscription_id).first()


def push_subscriptions_of(*, user_id: int) -> list:
    """Where an alert for ``user_id`` is pushed: their subscriptions, while their account is active."""
    return list(PushSubscription.objects.filter(user_id=user_id, user__is_active=True).order_by("-created_at", "-id"))
