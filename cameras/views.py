"""Operator pages for cameras: the dashboard and one camera's page (live view, scores, events, controls)."""

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import OuterRef, Subquery
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views.decorators.http import require_POST

from events.models import AnomalyEvent
from events.selectors import event_list_for_user, score_history

from .models import Camera, LearningJob
from .selectors import (
    OPERATE,
    camera_get_for_user,
    camera_list_for_user,
    detector_versions_for_camera,
    user_has_camera_perm,
)
from .services import LearningBusy, camera_start, camera_stop, detector_version_restore, learning_start

DASHBOARD_EVENTS = 20
CAMERA_EVENTS = 50
#: The 24-hour timeline shows at most this many events (the newest).
TIMELINE_EVENTS = 500
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


def _camera_or_403(user, camera_id) -> Camera:
    camera = camera_get_for_user(user, camera_id)
    if camera is None:  # the same answer whether it does not exist or may not be viewed
        raise PermissionDenied(_("No such camera, or you may not view it."))
    return camera


def _latest_event_id():
    return Subquery(AnomalyEvent.objects.filter(camera=OuterRef("pk")).order_by("-started_at", "-id").values("id")[:1])


@login_required
def dashboard(request):
    """Every camera the user may view, with its live picture, state and latest event."""
    cameras = list(camera_list_for_user(request.user).annotate(latest_event_id=_latest_event_id()))
    latest_ids = [c.latest_event_id for c in cameras if c.latest_event_id]
    latest = {e.pk: e for e in event_list_for_user(request.user).filter(pk__in=latest_ids)} if latest_ids else {}
    for camera in cameras:
        camera.latest_event = latest.get(camera.latest_event_id)
    events = list(event_list_for_user(request.user)[:DASHBOARD_EVENTS])
    return render(request, "cameras/dashboard.html", {
        "cameras": cameras, "events": events, "state_labels": state_labels(), "live_fps": 1,
    })


@login_required
def camera_page(request, camera_id):
    """Live view with a frame-rate choice, the anomaly-score timeline, the camera's events and controls."""
    camera = _camera_or_403(request.user, camera_id)
    since = timezone.now() - timedelta(hours=24)
    events = list(event_list_for_user(request.user, camera=camera.pk)[:CAMERA_EVENTS])
    timeline = [
        {"id": str(e["id"]), "t": e["started_at"].timestamp(), "peak": e["peak_score"], "severity": e["severity"],
         "curve": e["details"].get("score_curve", []) if isinstance(e["details"], dict) else []}
        for e in event_list_for_user(request.user, camera=camera.pk, since=since).select_related(None)
        .values("id", "started_at", "peak_score", "severity", "details")[:TIMELINE_EVENTS]
    ]
    fps = camera.stream_fps if camera.stream_fps in LIVE_FPS_CHOICES else 5
    return render(request, "cameras/camera.html", {
        "camera": camera,
        "events": events,
        "timeline": {"since": since.timestamp(), "threshold": camera.threshold, "events": timeline,
                     "history": _history(camera, since)},
        "can_operate": user_has_camera_perm(request.user, OPERATE, camera),
        "learn_minutes": learn_minute_choices(),
        "fps_choices": LIVE_FPS_CHOICES,
        "live_fps": fps,
        "state_labels": state_labels(),
        "chart_labels": chart_labels(),
    })


def _history(camera, since) -> dict:
    """The camera's stored scores since ``since`` (events.selectors.score_history), for the 24-hour chart."""
    history = score_history(camera_id=camera.pk, since=since, until=timezone.now())
    return {key: history[key] for key in ("step_seconds", "t", "max", "mean")}


def _operate(request, camera_id, action, done: str):
    camera = _camera_or_403(request.user, camera_id)
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
    camera = _camera_or_403(request.user, camera_id)
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
