"""Operator actions on a camera (start, stop, learn, restore) and the labels its pages share.

The dashboard and the camera page show events with the cameras, so they live in events/views.py.
"""

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views.decorators.http import require_POST

from .models import Camera, LearningJob
from .selectors import (
    CHANGE,
    OPERATE,
    camera_get_for_user,
    detector_versions_for_camera,
    user_has_camera_perm,
)
from .learning import LearningBusy, detector_version_restore, learning_start
from .services import camera_start, camera_stop, camera_update

LIVE_FPS_CHOICES = [fps for fps, _label in Camera.STREAM_FPS_CHOICES]
#: Camera states as the pages name them (translated labels of Camera.State; makemessages reads these).
STATE_LABELS = {
    "stopped": gettext_noop("Stopped"),
    "starting": gettext_noop("Starting"),
    "running": gettext_noop("Running"),
    "reconnecting": gettext_noop("Reconnecting"),
    "error": gettext_noop("Error"),
}


def state_labels() -> dict[str, str]:
    return {state: _(label) for state, label in STATE_LABELS.items()}


def chart_labels() -> dict[str, str]:
    """The score charts' legend, in the page's language (static/js/charts.js)."""
    return {"time": _("Time"), "score": _("Score"), "threshold": _("Threshold"), "event": _("Event")}


def camera_or_403(user, camera_id) -> Camera:
    """The camera if the user may view it; PermissionDenied otherwise (the same whether it exists or not)."""
    camera = camera_get_for_user(user, camera_id)
    if camera is None:  # the same answer whether it does not exist or may not be viewed
        raise PermissionDenied(_("No such camera, or you may not view it."))
    return camera


def _operate(request, camera_id, action, done: str):
    camera = camera_or_403(request.user, camera_id)
    if not user_has_camera_perm(request.user, OPERATE, camera):
        raise PermissionDenied(_("You may not start or stop this camera."))
    action(camera=camera, by=request.user)
    messages.success(request, done % {"camera": camera.name})
    return redirect("camera-page", camera_id=camera.pk)


@login_required
@require_POST
def camera_page_start(request, camera_id):
    return _operate(request, camera_id, camera_start, _("Camera %(camera)s is starting."))


@login_required
@require_POST
def camera_page_stop(request, camera_id):
    return _operate(request, camera_id, camera_stop, _("Camera %(camera)s is stopped."))


# -- learning what is normal (the panel's versions and progress come from the API and the WebSocket) ----------
#: The minutes offered on the camera page, within LEARN_MINUTES_MIN..LEARN_MINUTES_MAX.
LEARN_MINUTES = (1, 2, 5, 10, 15, 30, 60)


def learn_minute_choices() -> list:
    low, high = settings.LEARN_MINUTES_MIN, settings.LEARN_MINUTES_MAX
    return [m for m in LEARN_MINUTES if low <= m <= high] or [low]


def _operable_or_403(request, camera_id) -> Camera:
    camera = camera_or_403(request.user, camera_id)
    if not user_has_camera_perm(request.user, OPERATE, camera):
        raise PermissionDenied(_("You may not operate this camera."))
    return camera


def _problem(exc) -> str:
    return " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)


@login_required
@require_POST
def camera_page_learn(request, camera_id):
    """Learn what is normal now: minutes of the camera's footage, or uploaded clips (multipart)."""
    camera = _operable_or_403(request, camera_id)
    clips = request.FILES.getlist("clips")
    minutes = None if clips else request.POST.get("minutes") or None
    mode = request.POST.get("mode") or LearningJob.Mode.FRESH
    try:
        learning_start(camera=camera, by=request.user, minutes=minutes, clips=clips, mode=mode)
    except (ValidationError, LearningBusy) as exc:
        messages.error(request, _("Learning did not start: %(problem)s") % {"problem": _problem(exc)})
    else:
        messages.success(request, _("Learning started; its progress shows below."))
    return redirect(f"{reverse('camera-page', args=[camera.pk])}#learning")


@login_required
@require_POST
def camera_page_restore(request, camera_id, number):
    """Make an earlier learned version of the camera's detector active again."""
    camera = _operable_or_403(request, camera_id)
    version = detector_versions_for_camera(camera).filter(number=number).first()
    if version is None:
        messages.error(request, _("No version %(number)s on this camera.") % {"number": number})
    else:
        try:
            restored = detector_version_restore(camera=camera, version=version, by=request.user)
        except ValidationError as exc:
            messages.error(request, _("Not restored: %(problem)s") % {"problem": _problem(exc)})
        else:
            messages.success(request, _("Version %(old)s is active again (as version %(new)s).")
                             % {"old": version.number, "new": restored.number})
    return redirect(f"{reverse('camera-page', args=[camera.pk])}#learning")


# -- zones (the camera page's editor, static/js/zones.js) --------------------------------------------------
@login_required
@require_POST
def camera_page_zones(request, camera_id):
    """Save the camera's zones (``zones``: their JSON) through the camera update service: validated as the API
    and the admin validate them, audited, and a running camera restarts with them. For those who may change
    the camera (as ``PATCH /api/v1/cameras/{id}/``). The editor posts with fetch and gets JSON (400 naming the
    problem); a plain form post is sent back to the page with a message."""
    camera = camera_or_403(request.user, camera_id)
    if not user_has_camera_perm(request.user, CHANGE, camera):
        raise PermissionDenied(_("You may not change this camera's settings."))
    wants_json = request.headers.get("X-Requested-With") == "fetch"
    problem = None
    text = request.POST.get("zones")
    if text is None:
        problem = _("No zones were sent (the form's 'zones' field holds them, as JSON).")
    else:
        try:
            zones = json.loads(text) if text.strip() else []
        except ValueError as exc:
            problem = _("The zones are not valid JSON: %(problem)s") % {"problem": exc}
        else:
            if zones is None:
                problem = _("zones must be a list of zone objects, not null")
        if problem is None:
            try:
                camera = camera_update(camera=camera, by=request.user, zones=zones)
            except ValidationError as exc:
                problem = _problem(exc)
    if problem is not None:
        message = _("Zones not saved: %(problem)s") % {"problem": problem}
        if wants_json:
            return JsonResponse({"error": message}, status=400)
        messages.error(request, message)
    else:
        count = len(camera.zones or [])
        message = _("Zones saved (%(count)s).") % {"count": count}
        if wants_json:
            return JsonResponse({"zones": camera.zones, "message": message})
        messages.success(request, message)
    return redirect(f"{reverse('camera-page', args=[camera.pk])}#zones")
