"""Arming: which events of a camera alert, by mode (armed, home, away, disarmed), per camera or area, by
hand or by a weekly schedule (docs/alerts.md, "Arming").

* ``ArmingMode``: what each of the four modes lets alert (the event kinds and a minimum severity), one row
  per mode, edited in the admin;
* ``ArmingState``: the mode a camera or an area was switched to by hand (who, when); none: automatic;
* ``ArmingSchedule`` with its ``ArmingPeriod`` rows: weekly time ranges, local to a time zone, that put a
  camera, an area's cameras or every camera in a mode.

Events are always stored and shown; the mode only decides whether they alert (``selectors.arming_allows``).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from events.kinds import EVENT_KINDS
from events.severity import SEVERITIES, severity_rank

SEVERITY_CHOICES = [(s, s.title()) for s in SEVERITIES]
#: Monday first, as ``datetime.weekday()`` counts.
WEEKDAYS = (_("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"), _("Saturday"), _("Sunday"))


class Mode(models.TextChoices):
    ARMED = "armed", _("Armed")
    HOME = "home", _("Home")
    AWAY = "away", _("Away")
    DISARMED = "disarmed", _("Disarmed")


#: What a mode lets alert when its row is missing (and what the data migration creates): ``(kinds, min severity)``.
MODE_DEFAULTS = {
    Mode.ARMED: (list(EVENT_KINDS), "low"),
    Mode.AWAY: (list(EVENT_KINDS), "low"),
    Mode.HOME: (list(EVENT_KINDS), "high"),
    Mode.DISARMED: (["camera_health", "camera_offline"], "low"),
}


def validate_time_zone(value: str) -> None:
    if not value:
        return
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(_("Unknown time zone '%(zone)s'.") % {"zone": value}) from None


def validate_kinds(value) -> None:
    if not isinstance(value, list) or any(k not in EVENT_KINDS for k in value):
        raise ValidationError(_("Choose among the event kinds: %(kinds)s.") % {"kinds": ", ".join(EVENT_KINDS)})


def validate_days(value) -> None:
    if (not isinstance(value, list) or not value
            or any(type(d) is not int or not 0 <= d <= 6 for d in value)):  # noqa: E721 (not True, not 1.0)
        raise ValidationError(_("Name at least one day of the week (0 for Monday up to 6 for Sunday)."))


class ArmingMode(models.Model):
    """What one mode lets alert: an event alerts when its kind is among ``kinds`` and its severity is at
    least ``min_severity``. One row per mode (made by the migration; the admin edits, never adds)."""

    key = models.CharField(_("mode"), max_length=16, choices=Mode.choices, unique=True)
    kinds = models.JSONField(
        _("kinds that alert"), default=list, blank=True, validators=[validate_kinds],
        help_text=_("The event kinds that still alert in this mode: scene (anomalies in the scene), camera_health "
                    "(covered, blurred, moved, frozen, dark, blinded), camera_offline. None ticked: nothing alerts."))
    min_severity = models.CharField(
        _("minimum severity"), max_length=10, choices=SEVERITY_CHOICES, default="low",
        help_text=_("Events of a lower severity do not alert in this mode (whatever their kind)."))
    description = models.CharField(_("description"), max_length=200, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("arming mode")
        verbose_name_plural = _("arming modes")

    def __str__(self):
        return str(Mode(self.key).label) if self.key in Mode.values else self.key

    def allows(self, severity: str, kind: str) -> bool:
        return kind in (self.kinds or []) and severity_rank(severity) >= severity_rank(self.min_severity)


class ArmingState(models.Model):
    """The mode a camera, or an area (all its cameras), was switched to by hand. No row: automatic."""

    camera = models.OneToOneField("cameras.Camera", null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="+", verbose_name=_("camera"))
    area = models.OneToOneField("cameras.Area", null=True, blank=True, on_delete=models.CASCADE,
                                related_name="+", verbose_name=_("area"))
    mode = models.CharField(_("mode"), max_length=16, choices=Mode.choices)
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+", verbose_name=_("set by"))
    set_at = models.DateTimeField(_("set at"), default=timezone.now)

    class Meta:
        ordering = ["id"]
        verbose_name = _("arming state")
        verbose_name_plural = _("arming states")
        constraints = [
            models.CheckConstraint(
                condition=(Q(camera__isnull=False, area__isnull=True) | Q(camera__isnull=True, area__isnull=False)),
                name="arming_state_camera_xor_area"),
        ]

    def __str__(self):
        return f"{self.camera or self.area}: {self.mode}"

    def clean(self):
        if (self.camera_id is None) == (self.area_id is None):
            raise ValidationError(_("Choose a camera or an area (one of them)."))


class ArmingSchedule(models.Model):
    """Weekly periods that put cameras in a mode automatically: one camera's, an area's cameras', or (neither
    named) every camera's. Outside its periods a schedule says nothing."""

    name = models.CharField(_("name"), max_length=100)
    enabled = models.BooleanField(_("enabled"), default=True)
    camera = models.ForeignKey("cameras.Camera", null=True, blank=True, on_delete=models.CASCADE,
                               related_name="+", verbose_name=_("camera"))
    area = models.ForeignKey("cameras.Area", null=True, blank=True, on_delete=models.CASCADE,
                             related_name="+", verbose_name=_("area"))
    time_zone = models.CharField(
        _("time zone"), max_length=64, blank=True, default="", validators=[validate_time_zone],
        help_text=_("The periods' times are local to this time zone (empty: the site's TIME_ZONE)."))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("arming schedule")
        verbose_name_plural = _("arming schedules")
        constraints = [
            models.CheckConstraint(condition=Q(camera__isnull=True) | Q(area__isnull=True),
                                   name="arming_schedule_camera_or_area"),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        if self.camera_id is not None and self.area_id is not None:
            raise ValidationError(_("A schedule is for one camera, one area or every camera: not both."))

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone or settings.TIME_ZONE)


class ArmingPeriod(models.Model):
    """From ``start`` to ``end`` (local time) on each of ``days``, the schedule's cameras are in ``mode``. An
    ``end`` at or before ``start`` runs over midnight into the next day (22:00 to 07:00)."""

    schedule = models.ForeignKey(ArmingSchedule, on_delete=models.CASCADE, related_name="periods")
    days = models.JSONField(_("days"), default=list, validators=[validate_days],
                            help_text=_("The days the period starts on: 0 for Monday up to 6 for Sunday."))
    start = models.TimeField(_("start"))
    end = models.TimeField(_("end"), help_text=_("At or before the start: the next day."))
    mode = models.CharField(_("mode"), max_length=16, choices=Mode.choices)

    class Meta:
        ordering = ["id"]
        verbose_name = _("arming period")
        verbose_name_plural = _("arming periods")

    def __str__(self):
        days = ", ".join(str(WEEKDAYS[d]) for d in self.days if isinstance(d, int) and 0 <= d <= 6)
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M}: {self.mode}"


class HeldAlert(models.Model):
    """An event whose alerts its camera's arming mode held (the event's alert trail: why nothing was sent).
    One row per event, updated each time the event is routed and held again."""

    event = models.OneToOneField("events.AnomalyEvent", on_delete=models.CASCADE, related_name="+",
                                 verbose_name=_("event"))
    camera = models.ForeignKey("cameras.Camera", on_delete=models.CASCADE, related_name="+", verbose_name=_("camera"))
    mode = models.CharField(_("mode"), max_length=16, choices=Mode.choices)
    source = models.CharField(_("set by"), max_length=16,
                              help_text=_("Where the mode came from: camera, area, schedule or default."))
    severity = models.CharField(_("severity"), max_length=10, choices=SEVERITY_CHOICES)
    kind = models.CharField(_("kind"), max_length=32)
    held_at = models.DateTimeField(_("held at"), default=timezone.now)

    class Meta:
        ordering = ["-held_at"]
        verbose_name = _("held alert")
        verbose_name_plural = _("held alerts")

    def __str__(self):
        return f"{self.event_id}: {self.mode}"
