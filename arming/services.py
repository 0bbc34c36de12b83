"""Writes of arming: switching a camera's or an area's mode (audited, pushed live after commit), and holding the
alerts of an event its camera's mode does not let alert (docs/alerts.md, "Arming")."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import audit_record
from cameras.groups import camera_group
from cameras.models import Area, Camera

from .models import ArmingState, HeldAlert, Mode
from .selectors import arming_decisions, arming_effective_many

log = logging.getLogger(__name__)

#: The ``type`` of the channel-layer message pushed to a camera's group when its mode changes.
MESSAGE_TYPE = "camera.arming"


def arming_mode_clean(mode) -> str | None:
    """The mode a request names: one of Mode's values, or None (empty, null, "auto": back to automatic)."""
    if mode is None or mode == "" or mode == "auto":
        return None
    if not isinstance(mode, str) or mode not in Mode.values:
        raise ValidationError({"mode": _("Unknown mode '%(mode)s': choose armed, home, away or disarmed, or null "
                                         "to follow the area and the schedules.") % {"mode": mode}})
    return mode


def arming_set(*, camera: Camera | None = None, area: Area | None = None, mode, by) -> ArmingState | None:
    """Switch a camera (or every camera of an area) to ``mode`` by hand; None clears the hand-set mode.

    Audited (``arming.set``, with the old and the new mode); the cameras' new effective modes are pushed to
    their live groups after commit. Setting the mode already set changes nothing. Permission checks are the
    caller's (the API: operate_camera on the camera, on every camera of the area).
    """
    if (camera is None) == (area is None):
        raise ValueError("arming_set needs a camera or an area")
    mode = arming_mode_clean(mode)
    target = camera if camera is not None else area
    scope = {"camera": camera} if camera is not None else {"area": area}
    with transaction.atomic():
        current = ArmingState.objects.select_for_update().filter(**scope).first()
        old = current.mode if current else None
        if old == mode:
            return current
        if mode is None:
            current.delete()
            state = None
        elif current is None:
            state = ArmingState.objects.create(**scope, mode=mode, set_by=_user(by), set_at=timezone.now())
        else:
            current.mode, current.set_by, current.set_at = mode, _user(by), timezone.now()
            current.save(update_fields=["mode", "set_by", "set_at"])
            state = current
        audit_record(actor=by, action="arming.set", target=target, changes=["mode"],
                     details={"scope": "camera" if camera is not None else "area",
                              "old": old or "auto", "new": mode or "auto"})
        camera_ids = [camera.pk] if camera is not None else list(
            Camera.objects.filter(area=area).values_list("id", flat=True))
        transaction.on_commit(lambda: arming_broadcast(camera_ids=camera_ids))
    return state


def _user(by):
    return by if getattr(by, "is_authenticated", False) else None


def arming_broadcast(*, camera_ids) -> None:
    """Push each camera's effective mode to its live group (``camera.arming``). Never raises."""
    layer = get_channel_layer()
    if layer is None or not camera_ids:
        return
    try:
        cameras = list(Camera.objects.filter(pk__in=camera_ids).only("id", "area_id"))
        effective = arming_effective_many(cameras)
        messages = [(camera_group(c.pk), {"type": MESSAGE_TYPE, "camera": c.pk, "arming": effective[c.pk].as_dict()})
                    for c in cameras]

        async def send_all():
            for group, message in messages:
                await layer.group_send(group, message)

        async_to_sync(send_all)()
    except Exception:
        log.exception("Live push of the arming mode of cameras %s failed; it is stored", camera_ids)


def arming_events_allowed(*, events) -> set:
    """Routing asks this once per batch: the ids of the events that may alert under their camera's mode (at
    their start).

    For each one held, the hold is recorded on the event's trail (``HeldAlert``, one row per event, updated at
    each routing) and logged; the event itself is stored and shown as always.
    """
    events = list(events)
    decisions = arming_decisions(events)
    allowed = set()
    for event in events:
        ok, effective = decisions[event.pk]
        if ok:
            allowed.add(event.pk)
            continue
        HeldAlert.objects.update_or_create(
            event_id=event.pk,
            defaults={"camera_id": event.camera_id, "mode": effective.mode, "source": effective.source,
                      "severity": event.severity, "kind": event.kind, "held_at": timezone.now()})
        log.info("Alerts of event %s held: camera %s is %s (%s); %s %s events do not alert in this mode",
                 event.pk, event.camera_id, effective.mode, effective.source, event.severity, event.kind)
    return allowed


def arming_config_audit(*, target, action: str, by, changes) -> None:
    """Admin: a mode's definition or a schedule was edited (saved by the admin): audited."""
    audit_record(actor=by, action=action, target=target, changes=list(changes or []))
