"""Alerts: where notifications go (channels), who wants which (rules), and what was sent (deliveries).

Model methods hold single-row rules only; routing, digests, suppression and sending live in
``alerts/services.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.db.models import Q

from events.kinds import EVENT_KINDS
from events.severity import SEVERITIES, severity_rank
from inference.addresses import AddressNotAllowed, check_host
from siteconfig.selectors import WHERE, webhook_networks

SEVERITY_CHOICES = [(s, s.capitalize()) for s in SEVERITIES]
#: Escalation: the longest wait of one step (a day), and the severities that escalate.
MAX_ESCALATION_MINUTES = 24 * 60
ESCALATION_SEVERITIES = ("high", "critical")


def validate_http_url(value: str) -> None:
    """An http(s) URL with a host (webhooks)."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError:
        raise ValidationError("Enter a valid http(s) URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        raise ValidationError("Enter a valid http(s) URL with a host, e.g. https://example.com/hook.")
    check_alert_host(value)


def check_alert_host(url: str) -> None:
    """ValidationError when the URL's host is an internal address settings do not allow."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return
    if host:
        try:
            check_host(host, webhook_networks(), what="alert host", where=WHERE["webhook"])
        except AddressNotAllowed as exc:
            raise ValidationError(f"{exc}.") from None


def validate_apprise_url(value: str) -> None:
    import apprise

    if not value or apprise.Apprise.instantiate(value, suppress_exceptions=True) is None:
        raise ValidationError(
            "Apprise does not recognise this URL (e.g. slack://..., tgram://bot/chat, ntfy://topic, discord://...)."
        )
    check_alert_host(value)


def validate_time_zone(value: str) -> None:
    if not value:
        return
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"Unknown time zone '{value}'.") from None


def _one_owner_clean(obj) -> None:
    if bool(obj.owner_id) == bool(obj.group_id):
        raise ValidationError({"owner": "Set exactly one owner: a user or a group."})


def _one_owner_constraint(name: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=(Q(owner__isnull=False, group__isnull=True) | Q(owner__isnull=True, group__isnull=False)),
        name=name,
    )


class NotificationChannel(models.Model):
    """A place alerts are sent to, owned by one user or one group."""

    class Kind(models.TextChoices):
        EMAIL = "email"
        WEBHOOK = "webhook"
        APPRISE = "apprise"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="notification_channels")
    group = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.CASCADE,
                              related_name="notification_channels")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    email = models.EmailField(blank=True, default="", help_text="Email: the address (empty: the owner's address).")
    url = models.CharField(max_length=2000, blank=True, default="",
                           help_text="Webhook: the http(s) URL. Apprise: the service URL (slack://, tgram://, ...).")
    secret = models.CharField(max_length=200, blank=True, default="",
                              help_text="Webhook: the HMAC-SHA256 signing key (never shown by the API).")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    MIN_SECRET_LENGTH = 16

    class Meta:
        verbose_name = _("notification channel")
        verbose_name_plural = _("notification channels")
        ordering = ["id"]
        constraints = [_one_owner_constraint("alerts_channel_one_owner")]

    def __str__(self):
        return f"{self.name} ({self.kind})"

    def clean(self):
        _one_owner_clean(self)
        errors = {}
        if self.kind == self.Kind.EMAIL:
            if not self.address():
                errors["email"] = "Give an address (a group channel, or an owner without an email address)."
        elif self.kind == self.Kind.WEBHOOK:
            try:
                validate_http_url(self.url)
            except ValidationError as exc:
                errors["url"] = exc.messages
            if len(self.secret or "") < self.MIN_SECRET_LENGTH:
                errors["secret"] = f"A webhook needs a signing secret of at least {self.MIN_SECRET_LENGTH} characters."
        elif self.kind == self.Kind.APPRISE:
            try:
                validate_apprise_url(self.url)
            except ValidationError as exc:
                errors["url"] = exc.messages
        if errors:
            raise ValidationError(errors)

    def address(self) -> str:
        """Email: the channel's address, or its owner's."""
        if self.email:
            return self.email
        return (self.owner.email if self.owner_id else "") or ""

    def owner_filter(self) -> dict:
        return {"owner_id": self.owner_id, "group_id": self.group_id}


class AlertRule(models.Model):
    """Which events one user (or group) wants, and through which of its channels."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="alert_rules")
    group = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.CASCADE,
                              related_name="alert_rules")
    name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    all_cameras = models.BooleanField(default=True, help_text="Every camera the owner may view (else: 'cameras').")
    cameras = models.ManyToManyField("cameras.Camera", blank=True, related_name="+")
    min_severity = models.CharField(max_length=10, choices=SEVERITY_CHOICES, default="medium")
    kinds = models.JSONField(
        default=list, blank=True,
        help_text="Which kinds of events: scene (anomalies in the scene), camera_health (the camera covered, "
                  "blurred, moved, frozen, dark or blinded), camera_offline. Empty: every kind.")
    quiet_start = models.TimeField(null=True, blank=True, help_text="Quiet hours start (local time).")
    quiet_end = models.TimeField(null=True, blank=True, help_text="Quiet hours end (local time).")
    time_zone = models.CharField(max_length=64, blank=True, default="", validators=[validate_time_zone],
                                 help_text="Time zone of the quiet hours (empty: the owner's, or UTC).")
    critical_in_quiet_hours = models.BooleanField(
        default=True, help_text="Critical alerts are still sent at once during quiet hours.")
    notify_in_app = models.BooleanField(default=True, help_text="Also notify open browser sessions.")
    channels = models.ManyToManyField(NotificationChannel, blank=True, related_name="rules")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")
        ordering = ["id"]
        constraints = [_one_owner_constraint("alerts_rule_one_owner")]

    def __str__(self):
        return self.name

    def clean(self):
        _one_owner_clean(self)
        kinds = self.kinds if self.kinds is not None else []
        if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
            raise ValidationError({"kinds": "Give a list of event kinds."})
        unknown = sorted(set(kinds) - set(EVENT_KINDS))
        if unknown:
            raise ValidationError({"kinds": f"Unknown event kind(s) {', '.join(unknown)}: use "
                                            f"{', '.join(EVENT_KINDS)}."})
        self.kinds = [k for k in EVENT_KINDS if k in kinds]  # each once, in a fixed order
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValidationError({"quiet_end": "Give both the start and the end of the quiet hours, or neither."})
        if self.quiet_start is not None and self.quiet_start == self.quiet_end:
            raise ValidationError({"quiet_end": "Quiet hours must end at another time than they start."})

    def accepts_severity(self, severity: str) -> bool:
        return severity_rank(severity) >= severity_rank(self.min_severity)

    def accepts_kind(self, kind: str) -> bool:
        """Whether the rule takes events of ``kind`` (events/kinds.py); no kinds: every kind."""
        return not self.kinds or kind in self.kinds

    def tz(self) -> ZoneInfo:
        for name in (self.time_zone, getattr(self.owner, "time_zone", "") if self.owner_id else "", "UTC"):
            try:
                if name:
                    return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
        return ZoneInfo("UTC")

    def quiet_until(self, now: datetime, severity: str = "") -> datetime | None:
        """When the current quiet hours end, or None when ``now`` is not in them (or the alert may pass)."""
        if self.quiet_start is None or self.quiet_end is None:
            return None
        if severity == "critical" and self.critical_in_quiet_hours:
            return None
        tz = self.tz()
        local = now.astimezone(tz)
        t, start, end = local.timetz().replace(tzinfo=None), self.quiet_start, self.quiet_end
        if start < end:
            quiet = start <= t < end
            end_day = local.date()
        else:  # over midnight, e.g. 22:00-07:00
            quiet = t >= start or t < end
            end_day = local.date() + (timedelta(days=1) if t >= start else timedelta())
        if not quiet:
            return None
        return datetime.combine(end_day, end, tzinfo=tz)


class Delivery(models.Model):
    """One message to one recipient through one channel (or in-app), and every attempt to send it."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"
        CANCELLED = "cancelled"  # not sent, and never will be: ``error`` says why (e.g. access revoked)

    class Mode(models.TextChoices):
        IMMEDIATE = "immediate"
        DIGEST = "digest"
        TEST = "test"
        ESCALATION = "escalation"  # a critical or high event left unacknowledged: see EscalationStep
        FOLLOW_UP = "follow_up"  # what came after an immediate alert (its description, its final severity)

    class FollowUpKind(models.TextChoices):
        DESCRIPTION = "description"  # the VLM's description arrived after the first alert went out
        SEVERITY = "severity"        # the final decision changed the severity the recipient was told
        INCIDENT = "incident"        # another event of the same incident (docs/alerts.md, "Incidents")

    class Medium(models.TextChoices):
        EMAIL = "email"
        WEBHOOK = "webhook"
        APPRISE = "apprise"
        IN_APP = "in_app"

    channel = models.ForeignKey(NotificationChannel, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="deliveries")
    medium = models.CharField(max_length=16, choices=Medium.choices)
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="alert_deliveries")
    recipient_group = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.CASCADE,
                                        related_name="alert_deliveries")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+", help_text="Test alerts: who asked for it.")
    mode = models.CharField(max_length=16, choices=Mode.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=1)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    suppressed_count = models.PositiveIntegerField(
        default=0, help_text="Similar alerts not sent because this one was sent within the suppression window.")
    reported_count = models.PositiveIntegerField(
        default=0, help_text="Earlier suppressed alerts this message reports.")
    subject = models.CharField(max_length=300, blank=True, default="")
    body = models.TextField(blank=True, default="")
    follow_up_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="follow_ups",
                                     help_text="Follow-ups: the immediate alert this message completes.")
    follow_up_kind = models.CharField(max_length=16, blank=True, default="", choices=FollowUpKind.choices,
                                      help_text="Follow-ups: what it tells (the description, a new severity, or "
                                                "another event of the same incident).")
    events = models.ManyToManyField("events.AnomalyEvent", through="AlertItem", through_fields=("delivery", "event"),
                                    related_name="alert_deliveries")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["-created_at", "-id"]
        constraints = [
            # One follow-up of each kind per first alert: routing the same update twice sends once. An
            # incident's thread has one per later event (made under the first alert's lock: services._incident_join).
            models.UniqueConstraint(fields=["follow_up_of", "follow_up_kind"],
                                    condition=Q(follow_up_of__isnull=False) & ~Q(follow_up_kind="incident"),
                                    name="alerts_delivery_one_follow_up_per_kind"),
        ]
        indexes = [
            models.Index(fields=["recipient", "-created_at"]),
            models.Index(fields=["status", "next_attempt_at"]),
        ]

    def __str__(self):
        return f"{self.get_mode_display()} {self.medium} #{self.pk} ({self.status})"

    def retry_delay(self, base: float) -> float:
        """Exponential backoff after the ``attempts``-th failure: base, 2*base, 4*base..."""
        return float(base) * (2 ** max(0, self.attempts - 1))

    def may_retry(self) -> bool:
        return self.attempts < self.max_attempts


class AlertItem(models.Model):
    """One event for one recipient slot (a channel, or a user's in-app notifications) at one severity.

    The item is the unit of routing: the idempotency record (one per event, slot and severity),
    the digest queue (state ``queued``) and the suppression ledger (``original`` points at the
    delivered item it duplicates; ``reported_in`` at the later message that reported it).
    """

    class State(models.TextChoices):
        QUEUED = "queued"            # waiting for the next digest
        DELIVERED = "delivered"      # part of a delivery (see its status)
        SUPPRESSED = "suppressed"    # duplicate within the window: counted on the original delivery
        SUPERSEDED = "superseded"    # replaced before sending by the same event at a higher severity
        WITHHELD = "withheld"        # the recipient may no longer view the camera

    event = models.ForeignKey("events.AnomalyEvent", on_delete=models.CASCADE, related_name="alert_items")
    channel = models.ForeignKey(NotificationChannel, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="items", help_text="Empty: in-app notification.")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="+")
    recipient_group = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.CASCADE,
                                        related_name="+")
    camera = models.ForeignKey("cameras.Camera", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=100)
    severity = models.CharField(max_length=10, choices=SEVERITY_CHOICES)
    state = models.CharField(max_length=16, choices=State.choices)
    hold_until = models.DateTimeField(null=True, blank=True, help_text="Quiet hours: not sent before this.")
    delivery = models.ForeignKey(Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="items")
    escalation = models.ForeignKey("Escalation", null=True, blank=True, on_delete=models.CASCADE, related_name="items",
                                   help_text="Sent by this escalation (outside routing: never suppressed or queued).")
    follow_up = models.BooleanField(
        default=False, help_text="Part of a follow-up to an alert already sent (outside routing: never suppressed).")
    original = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="similar")
    reported_in = models.ForeignKey(Delivery, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="reported_items")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("alert item")
        verbose_name_plural = _("alert items")
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "channel", "severity"],
                                    condition=Q(channel__isnull=False, escalation__isnull=True, follow_up=False),
                                    name="alerts_item_once_per_channel"),
            models.UniqueConstraint(fields=["event", "recipient", "severity"],
                                    condition=Q(channel__isnull=True, escalation__isnull=True, follow_up=False),
                                    name="alerts_item_once_in_app"),
        ]
        indexes = [
            models.Index(fields=["channel", "state"]),
            models.Index(fields=["camera", "kind", "severity", "state"]),
        ]

    def __str__(self):
        return f"{self.severity} {self.event_id} -> {self.channel_id or 'in-app'} ({self.state})"


class EscalationStep(models.Model):
    """One level of a rule's escalation policy: who hears of a critical or high event still unacknowledged.

    Step 1 is due ``after_minutes`` after the event started; each later step ``after_minutes`` after
    the previous step fired. Recipients: channels of the rule's owner, and users (or a group's
    members), who get an email at their account address and an in-app notification. Whether a
    recipient may view the camera is checked again at every delivery attempt, like every alert.
    """

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="escalation_steps")
    order = models.PositiveSmallIntegerField(default=1, help_text="1 for the first step, then 2, 3, ...")
    after_minutes = models.PositiveIntegerField(
        default=15, validators=[MinValueValidator(1), MaxValueValidator(MAX_ESCALATION_MINUTES)],
        help_text="Minutes unacknowledged before this step: after the event started (step 1) or after the "
                  "previous step fired.")
    channels = models.ManyToManyField(NotificationChannel, blank=True, related_name="escalation_steps",
                                      help_text="Channels of the rule's owner.")
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+",
                                   help_text="Users: an email at their address and an in-app notification.")
    group = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                              help_text="A group: each active member, like a user.")

    class Meta:
        verbose_name = _("escalation step")
        verbose_name_plural = _("escalation steps")
        # No unique (rule, order): the admin's inline may swap two steps' orders in one save; the
        # services number them 1..n and the admin's formset refuses two steps with one order.
        ordering = ["rule", "order", "id"]

    def __str__(self):
        return f"{self.rule} step {self.order} (+{self.after_minutes} min)"


class Escalation(models.Model):
    """One step fired for one event: the idempotency record (once per event and step) its deliveries point at."""

    event = models.ForeignKey("events.AnomalyEvent", on_delete=models.CASCADE, related_name="escalations")
    step = models.ForeignKey(EscalationStep, null=True, blank=True, on_delete=models.SET_NULL, related_name="fired")
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    order = models.PositiveSmallIntegerField(help_text="The step's order when it fired.")
    after_minutes = models.PositiveIntegerField()
    unacknowledged_minutes = models.PositiveIntegerField(help_text="Minutes since the event started, when fired.")
    fired_at = models.DateTimeField()

    class Meta:
        verbose_name = _("escalation")
        verbose_name_plural = _("escalations")
        ordering = ["fired_at", "id"]
        constraints = [models.UniqueConstraint(fields=["event", "step"], name="alerts_escalation_once_per_step")]

    def __str__(self):
        return f"{self.event_id} step {self.order} at {self.fired_at:%Y-%m-%d %H:%M:%S}"


def validate_push_endpoint(value: str) -> None:
    """A push service's endpoint (Web Push): an http(s) URL checked like a webhook's (siteconfig webhook networks)."""
    validate_http_url(value)


class PushSubscription(models.Model):
    """One browser's (or app's) Web Push subscription, for one user (docs/alerts.md "Web Push").

    Whoever posts an endpoint owns it from then on: an endpoint is one browser profile's, so when another user
    signs in there and subscribes, it moves to them. ``application_server_key`` is the site's VAPID public key
    it was made with: after new keys it cannot work any more, and is dropped at the next push.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_subscriptions")
    endpoint = models.CharField("endpoint", max_length=2000, unique=True, validators=[validate_push_endpoint],
                               help_text="The push service's URL for this browser (secret: it is the address).")
    p256dh = models.CharField(max_length=200, help_text="The browser's P-256 public key (base64url).")
    auth = models.CharField(max_length=100, help_text="The browser's authentication secret (base64url, 16 bytes).")
    application_server_key = models.CharField(
        max_length=100, blank=True, default="", help_text="The site's VAPID public key it was made with.")
    user_agent = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    failures = models.PositiveIntegerField(default=0, help_text="Failed pushes in a row (0 after a success).")

    class Meta:
        verbose_name = _("push subscription")
        verbose_name_plural = _("push subscriptions")
        ordering = ["id"]

    def __str__(self):
        host = urlsplit(self.endpoint).hostname or "?"
        return f"push to {host} for {self.user_id}"
