"""Reads of arming: a camera's effective mode and whether an event of it may alert (docs/alerts.md, "Arming").

The effective mode of a camera at a moment, first found wins:

1. the camera's own mode, set by hand (``ArmingState`` of the camera);
2. its area's mode, set by hand (``ArmingState`` of the area);
3. a schedule's period running at that moment: the camera's own schedules first, then its area's, then
   those for every camera; within one of these, the period that started last wins;
4. ``armed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.utils import timezone
from django.utils.translation import gettext_lazy

from cameras.models import Camera
from cameras.selectors import (
    OPERATE,
    VIEW,
    area_get_for_user,
    camera_get_for_user,
    camera_ids_for_user,
    user_has_camera_perm,
)

from .models import MODE_DEFAULTS, ArmingMode, ArmingSchedule, ArmingState, Mode


@dataclass(frozen=True)
class Effective:
    """A camera's effective mode: ``source`` says where it came from (camera, area, schedule, default)."""

    mode: str
    source: str
    state: ArmingState | None = None
    schedule: ArmingSchedule | None = None

    def as_dict(self) -> dict:
        set_by = self.state.set_by.get_username() if self.state and self.state.set_by_id else None
        return {
            "mode": self.mode,
            "mode_label": str(Mode(self.mode).label),
            "source": self.source,
            "source_label": arming_source_label(self.source, set_by=set_by,
                                                schedule=self.schedule.name if self.schedule else None),
            "set_by": set_by,
            "set_at": self.state.set_at.isoformat() if self.state else None,
            "schedule": ({"id": self.schedule.pk, "name": self.schedule.name} if self.schedule else None),
        }


#: What the badge's tooltip says about where the mode comes from ({user}, {schedule} filled in).
SOURCE_LABELS = {
    "camera": gettext_lazy("Set on this camera by {user}"),
    "camera_nobody": gettext_lazy("Set on this camera"),
    "area": gettext_lazy("Set on the area by {user}"),
    "area_nobody": gettext_lazy("Set on the area"),
    "schedule": gettext_lazy("By the schedule '{schedule}'"),
    "default": gettext_lazy("No mode set: armed"),
}


def arming_source_labels() -> dict[str, str]:
    """The tooltips of SOURCE_LABELS, translated now (the dashboard hands them to static/js/arming.js)."""
    return {key: str(label) for key, label in SOURCE_LABELS.items()}


def arming_source_label(source: str, *, set_by: str | None = None, schedule: str | None = None) -> str:
    if source in ("camera", "area") and not set_by:
        source = f"{source}_nobody"
    return str(SOURCE_LABELS.get(source, "")).format(user=set_by or "", schedule=schedule or "")


def arming_modes() -> dict[str, ArmingMode]:
    """Every mode's definition by key; a mode whose row is missing gets its default (never fewer alerts)."""
    found = {m.key: m for m in ArmingMode.objects.all()}
    for key, (kinds, severity) in MODE_DEFAULTS.items():
        found.setdefault(str(key), ArmingMode(key=key, kinds=kinds, min_severity=severity))
    return found


def _period_start(period, local: datetime) -> datetime | None:
    """When the running occurrence of ``period`` started (naive, local), or None when it is not running."""
    now, day = local.replace(tzinfo=None), local.weekday()
    today = datetime.combine(local.date(), period.start)
    if period.start < period.end:
        return today if day in period.days and period.start <= now.time() < period.end else None
    # Over midnight (or a whole day when end == start): it runs from start today, or from start yesterday until end.
    if day in period.days and now.time() >= period.start:
        return today
    if (day - 1) % 7 in period.days and now.time() < period.end:
        return today - timedelta(days=1)
    return None


def _scheduled(schedules, at: datetime) -> tuple[str, ArmingSchedule] | None:
    """The mode of the period that started last among the running periods of ``schedules``."""
    best = None
    for schedule in schedules:
        local = at.astimezone(schedule.zone())
        for period in schedule.periods.all():
            started = _period_start(period, local)
            # Compared in UTC: schedules in different time zones stay comparable.
            if started is not None:
                key = (started.replace(tzinfo=local.tzinfo).astimezone(dt_timezone.utc), period.pk)
                if best is None or key > best[0]:
                    best = (key, period.mode, schedule)
    return (best[1], best[2]) if best else None


class _Context:
    """States and schedules read once for a set of cameras."""

    def __init__(self, cameras: list):
        camera_ids = [c.pk for c in cameras]
        area_ids = {c.area_id for c in cameras if c.area_id}
        states = ArmingState.objects.filter(camera_id__in=camera_ids) | ArmingState.objects.filter(area_id__in=area_ids)
        states = list(states.select_related("set_by"))
        self.camera_states = {s.camera_id: s for s in states if s.camera_id}
        self.area_states = {s.area_id: s for s in states if s.area_id}
        self.schedules = list(ArmingSchedule.objects.filter(enabled=True).prefetch_related("periods"))

    def effective(self, camera, at: datetime) -> Effective:
        state = self.camera_states.get(camera.pk)
        if state is not None:
            return Effective(state.mode, "camera", state=state)
        state = self.area_states.get(camera.area_id) if camera.area_id else None
        if state is not None:
            return Effective(state.mode, "area", state=state)
        for scope in (
            [s for s in self.schedules if s.camera_id == camera.pk],
            [s for s in self.schedules if camera.area_id and s.area_id == camera.area_id],
            [s for s in self.schedules if s.camera_id is None and s.area_id is None],
        ):
            found = _scheduled(scope, at)
            if found is not None:
                return Effective(found[0], "schedule", schedule=found[1])
        return Effective(Mode.ARMED.value, "default")


def arming_effective(camera_id: int, at: datetime | None = None) -> Effective:
    """The camera's effective mode at ``at`` (default: now); ``armed`` for an unknown camera."""
    camera = Camera.objects.filter(pk=camera_id).only("id", "area_id").first()
    if camera is None:
        return Effective(Mode.ARMED.value, "default")
    return _Context([camera]).effective(camera, at or timezone.now())


def arming_effective_many(cameras, at: datetime | None = None) -> dict[int, Effective]:
    """{camera id: effective mode} for ``cameras`` (Camera objects), with a fixed number of queries."""
    cameras = list(cameras)
    if not cameras:
        return {}
    context, at = _Context(cameras), at or timezone.now()
    return {c.pk: context.effective(c, at) for c in cameras}


def arming_allows(camera_id: int, severity: str, kind: str, at: datetime | None = None) -> bool:
    """Whether an event of the camera, of this severity and kind (events.kinds), may alert at ``at``."""
    return arming_modes()[arming_effective(camera_id, at).mode].allows(severity, kind)


def arming_decisions(events, at: datetime | None = None) -> dict:
    """{event id: (may it alert, its camera's effective mode)} for ``events`` (``camera_id``, ``severity``,
    ``kind``, ``started_at``), each judged at ``at`` or else at its start, with a fixed number of queries
    (routing and escalation ask for a whole batch)."""
    events = list(events)
    if not events:
        return {}
    cameras = {c.pk: c for c in Camera.objects.filter(pk__in={e.camera_id for e in events}).only("id", "area_id")}
    context, modes = _Context(list(cameras.values())), arming_modes()
    out = {}
    for event in events:
        camera = cameras.get(event.camera_id)
        effective = (context.effective(camera, at or event.started_at) if camera is not None
                     else Effective(Mode.ARMED.value, "default"))
        out[event.pk] = (modes[effective.mode].allows(event.severity, event.kind), effective)
    return out


# -- what a user sees and may do ---------------------------------------------------------------------------
def arming_camera_for_user(user, camera_id) -> Camera | None:
    """The camera if the user may view it (callers answer 404 otherwise)."""
    return camera_get_for_user(user, camera_id)


def arming_area_for_user(user, area_id):
    """The area if the user may see it (callers answer 404 otherwise)."""
    return area_get_for_user(user, area_id)


def arming_may_switch_camera(user, camera) -> bool:
    return user_has_camera_perm(user, OPERATE, camera)


def arming_may_switch_area(user, area) -> bool:
    """Switching an area switches all its cameras: the user must operate every one of them."""
    return all(user_has_camera_perm(user, OPERATE, c) for c in Camera.objects.filter(area=area))


def arming_camera_view(user, camera, at: datetime | None = None) -> dict:
    """A camera's arming as the API and the dashboard show it to ``user``."""
    effective = arming_effective_many([camera], at)[camera.pk]
    return _camera_view(user, camera, effective)


def _camera_view(user, camera, effective: Effective, may_switch: bool | None = None) -> dict:
    return {
        "camera": camera.pk,
        "area": camera.area_id,
        **effective.as_dict(),
        "override": effective.state.mode if effective.source == "camera" else None,
        "can_switch": arming_may_switch_camera(user, camera) if may_switch is None else may_switch,
        "modes": arming_mode_choices(),
    }


def arming_area_view(user, area, at: datetime | None = None) -> dict:
    """An area's arming: its own mode (None: automatic) and the effective mode of its cameras the user may view."""
    state = ArmingState.objects.filter(area=area).select_related("set_by").first()
    viewable = [c for c in Camera.objects.filter(area=area).order_by("id")
                if user_has_camera_perm(user, VIEW, c)]
    effective = arming_effective_many(viewable, at)
    return {
        "area": area.pk,
        "mode": state.mode if state else None,
        "mode_label": str(Mode(state.mode).label) if state else None,
        "set_by": state.set_by.get_username() if state and state.set_by_id else None,
        "set_at": state.set_at.isoformat() if state else None,
        "can_switch": arming_may_switch_area(user, area),
        "cameras": [{"camera": c.pk, "name": c.name, **effective[c.pk].as_dict()} for c in viewable],
        "modes": arming_mode_choices(),
    }


def arming_dashboard(user, cameras, at: datetime | None = None) -> dict[int, dict]:
    """{camera id: its arming as shown on a dashboard tile} for the cameras (the user may view them)."""
    cameras = list(cameras)
    if not cameras:
        return {}
    effective = arming_effective_many(cameras, at)
    operable = camera_ids_for_user(user, OPERATE)
    return {c.pk: _camera_view(user, c, effective[c.pk], may_switch=c.pk in operable) for c in cameras}


def arming_mode_choices() -> list[dict]:
    return [{"value": value, "label": str(label)} for value, label in Mode.choices]
