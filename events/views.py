"""Operator pages about what happens: the dashboard, a camera's page (live view, score timeline, events,
controls), the event list, one event, its snapshot and clip, and the operator's actions on events."""

import logging
import mimetypes
import os
import re
import uuid
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, SuspiciousFileOperation, ValidationError
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import get_conditional_response
from django.utils.http import http_date, url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop, ngettext
from django.views.decorators.http import require_POST

from cameras.selectors import (
    CHANGE, OPERATE, camera_ids_for_user, camera_list_for_user, camera_perms_for_user, user_has_camera_perm,
)
from cameras.views import LIVE_FPS_CHOICES, camera_or_403, chart_labels, learn_minute_choices, state_labels

from .models import AnomalyEvent, EventNote
from .describe import label_name
from .kinds import EVENT_KINDS, HEALTH_CONDITIONS
from .reasons import INPUT_NAMES, input_name, severity_name, zone_entry
from .selectors import (
    camera_conditions_for_user,
    event_get_for_user,
    event_list_for_user,
    event_list_picture,
    event_notes,
    event_thumbnails,
    incident_for_user,
    score_history,
)
from .services import (
    event_acknowledge,
    event_keep,
    event_note_add,
    event_reopen,
    event_resolve,
    events_acknowledge_many,
    events_resolve_many,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 50
DASHBOARD_EVENTS = 20
CAMERA_EVENTS = 50
#: The 24-hour timeline shows at most this many events (the newest).
TIMELINE_EVENTS = 500
#: Labels of the model's choices, translated where shown (makemessages reads these).
CHOICE_LABELS = (
    gettext_noop("Low"), gettext_noop("Medium"), gettext_noop("High"), gettext_noop("Critical"),
    gettext_noop("New"), gettext_noop("Acknowledged"), gettext_noop("Resolved"), gettext_noop("False Alarm"),
)
FRAGMENTS = {
    "row": "events/_event_row.html",
    "tile": "events/_event_tile.html",
    "actions": "events/_event_actions.html",
    "analysis": "events/_event_analysis.html",
    "notes": "events/_event_notes_live.html",
}


#: The severity filter's "high and critical" choice (``?severity=urgent``).
URGENT = "urgent"


class EventFilterForm(forms.Form):
    camera = forms.TypedChoiceField(label=gettext_lazy("Camera"), required=False, coerce=int, empty_value=None)
    severity = forms.ChoiceField(label=gettext_lazy("Severity"), required=False)
    status = forms.ChoiceField(label=gettext_lazy("Status"), required=False)
    since = forms.DateTimeField(label=gettext_lazy("From"), required=False,
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(label=gettext_lazy("Until"), required=False,
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), required=False)
    label = forms.RegexField(label=gettext_lazy("Object"), required=False, regex=r"^[A-Za-z][A-Za-z ]{0,39}$",
                             widget=forms.TextInput(attrs={"placeholder": gettext_lazy("person, bicycle, car…"),
                                                           "size": 12}))

    def __init__(self, *args, cameras=(), **kwargs):
        super().__init__(*args, **kwargs)
        everything = [("", _("All"))]
        self.fields["camera"].choices = everything + [(c.pk, c.name) for c in cameras]
        self.fields["severity"].choices = everything + [(URGENT, _("High and critical"))] + [
            (v, _(label)) for v, label in AnomalyEvent.Severity.choices]
        self.fields["status"].choices = everything + [(v, _(label)) for v, label in AnomalyEvent.Status.choices]
        self.fields["kind"].choices = everything + [(v, _(label)) for v, label in EVENT_KINDS.items()]

    def clean(self):
        data = super().clean()
        if data.get("severity") == URGENT:  # the alert badge's link: the severities that alert at once
            data["severity"] = ["high", "critical"]
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            self.add_error("until", _("Must be later than 'From'."))
        return data


def _event_or_403(user, event_id) -> AnomalyEvent:
    event = event_get_for_user(user, event_id)
    if event is None:  # the same answer whether it does not exist or its camera may not be viewed
        raise PermissionDenied(_("No such event, or you may not view its camera."))
    return event


def _back(request, fallback):
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return redirect(target)
    return redirect(fallback)


@login_required
def event_list_page(request):
    """Events of the cameras the user may view: filters, pages, and bulk acknowledge where allowed."""
    cameras = list(camera_list_for_user(request.user).only("id", "name"))
    form = EventFilterForm(request.GET or None, cameras=cameras)
    filters = {k: v for k, v in form.cleaned_data.items() if v not in (None, "")} if form.is_valid() else {}
    page = Paginator(event_list_for_user(request.user, **filters), PAGE_SIZE).get_page(request.GET.get("page"))
    operable = camera_ids_for_user(request.user, OPERATE)
    events = _with_pictures(page.object_list)
    for event in events:
        event.can_operate = event.camera_id in operable
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "events/list.html", {
        "form": form, "page": page, "events": events, "query": query.urlencode(),
        "can_bulk": any(e.can_operate and e.status in AnomalyEvent.OPEN_STATUSES for e in events),
    })


def _with_pictures(events) -> list:
    """The events as a list, each with ``picture``: what its row shows as a thumbnail (no query)."""
    events = list(events)
    for event in events:
        event.picture = event_list_picture(event)
    return events


def _bulk_ids(request) -> list[str]:
    return [v for v in request.POST.getlist("event") if _is_uuid(v)][:PAGE_SIZE * 4]


def _bulk_left_alone(request, skipped: int) -> None:
    if skipped:
        messages.warning(request, ngettext(
            "%(n)d event was left as it was (already handled, or you may not operate its camera).",
            "%(n)d events were left as they were (already handled, or you may not operate their cameras).",
            skipped) % {"n": skipped})


@login_required
@require_POST
def event_bulk_acknowledge(request):
    """Acknowledge the chosen new events of cameras the user may operate; others are left as they are."""
    done, skipped = events_acknowledge_many(event_ids=_bulk_ids(request), by=request.user)
    messages.success(request, ngettext("%(n)d event acknowledged.", "%(n)d events acknowledged.", done) % {"n": done})
    _bulk_left_alone(request, skipped)
    return _back(request, "event-list-page")


@login_required
@require_POST
def event_bulk_resolve(request):
    """Resolve the chosen open events of cameras the user may operate, or (``false_alarm``) mark them as false
    alarms; closed events and those of cameras the user may only view are left as they are, and counted."""
    false_alarm = request.POST.get("false_alarm") in ("1", "true", "on")
    done, skipped = events_resolve_many(event_ids=_bulk_ids(request), by=request.user, false_alarm=false_alarm)
    if false_alarm:
        text = ngettext("%(n)d event marked as a false alarm.", "%(n)d events marked as false alarms.", done)
    else:
        text = ngettext("%(n)d event resolved.", "%(n)d events resolved.", done)
    messages.success(request, text % {"n": done})
    _bulk_left_alone(request, skipped)
    return _back(request, "event-list-page")


def _event_context(request, event) -> dict:
    details = event.details if isinstance(event.details, dict) else {}
    size = details.get("frame_size") or [0, 0]
    regions = [r for r in details.get("regions") or [] if isinstance(r, list) and len(r) == 4]
    boxes = [o for o in details.get("peak_objects") or []
             if isinstance(o, dict) and isinstance(o.get("box"), list) and len(o["box"]) == 4]
    event.picture = event_list_picture(event)
    return {
        "boxes": boxes,
        "objects": [o for o in details.get("objects") or [] if isinstance(o, dict) and "label" in o],
        "object_terms": [t for t in details.get("object_terms") or [] if isinstance(t, dict) and t.get("explain")],
        "event": event,
        "can_operate": user_has_camera_perm(request.user, OPERATE, event.camera),
        "frame_size": size if len(size) == 2 and all(size) else None,
        "regions": regions,
        "decision": event.decision if isinstance(event.decision, dict) else {},
        "decision_inputs": _inputs_shown(event.decision),
        "duration": (event.ended_at - event.started_at).total_seconds() if event.ended_at else None,
        "hide_camera": request.GET.get("hide_camera") == "1",
    }


def _inputs_shown(decision) -> list[tuple[str, str]]:
    """The decision's inputs (its trace) as (name, text) pairs for the page."""
    inputs = decision.get("inputs") if isinstance(decision, dict) else None
    if not isinstance(inputs, dict):
        return []
    def label(name) -> str:
        name = str(name)
        if name in INPUT_NAMES:
            return input_name(name)
        return (name[:-2] + " (s)" if name.endswith("_s") else name).replace("_", " ")

    def text(name, value) -> str:
        if name == "labels" and isinstance(value, list):
            return ", ".join(label_name(str(v)) for v in value)
        if name == "vlm_threat_level":
            return severity_name(str(value))
        if name == "zones" and isinstance(value, list):
            return ", ".join(zone_entry(v) for v in value)
        return ", ".join(map(str, value)) if isinstance(value, list) else str(value)

    return [(label(name), text(name, value)) for name, value in inputs.items()]


@login_required
def event_page(request, event_id):
    """The snapshot with the region outlined, the clip, description, decision, score curve and actions."""
    event = _event_or_403(request.user, event_id)
    context = _event_context(request, event)
    details = event.details if isinstance(event.details, dict) else {}
    context["chart_labels"] = chart_labels()
    context["curve"] = {"start": event.started_at.timestamp(), "points": details.get("score_curve") or [],
                        "threshold": details.get("threshold", event.camera.threshold)}
    # Its incident, as far as the user may see it: the events of cameras they may view, and only those.
    incident = incident_for_user(request.user, event.incident_id) if event.incident_id else None
    if incident is not None:
        incident["others"] = [e for e in incident["events"] if e.pk != event.pk]
    context["incident"] = incident
    context["notes"] = list(event_notes(event))
    context["note_max_length"] = EventNote.MAX_LENGTH
    return render(request, "events/detail.html", context)


@login_required
def event_fragment(request, event_id, kind):
    """One part of an event's display, re-rendered for pages that follow it live."""
    if kind not in FRAGMENTS:
        raise Http404()
    event = _event_or_403(request.user, event_id)
    context = _event_context(request, event)
    if kind == "notes":
        context["notes"] = list(event_notes(event))
    return render(request, FRAGMENTS[kind], context)


def _act(request, event_id, action, done=None, **kwargs):
    """Do ``action`` on the event for an operator of its camera, then back to the page (``done``: the message
    on success; a refusal, such as a case already closed or an empty note, is shown as an error)."""
    event = _event_or_403(request.user, event_id)
    if not user_has_camera_perm(request.user, OPERATE, event.camera):
        raise PermissionDenied(_("You may not handle events of this camera."))
    try:
        action(event=event, by=request.user, **kwargs)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if done:
            messages.success(request, done)
    return _back(request, event.get_absolute_url())


def _note(request) -> str:
    """The page's optional note given with an action (the note form's text)."""
    return request.POST.get("text", "")


@login_required
@require_POST
def event_page_acknowledge(request, event_id):
    return _act(request, event_id, event_acknowledge)


@login_required
@require_POST
def event_page_keep(request, event_id):
    """Keep the event as evidence (``keep=1``) or stop keeping it (``keep=0``)."""
    keep = request.POST.get("keep", "1") in ("1", "true", "on")
    return _act(request, event_id, event_keep, keep=keep,
                done=_("Kept as evidence: retention will not delete its clip or footage.") if keep
                else _("No longer kept: retention treats it as any other event."))


@login_required
@require_POST
def event_page_resolve(request, event_id):
    """Resolve, mark as a false alarm, or reclassify a closed case; the note form's text goes with it."""
    return _act(request, event_id, event_resolve, false_alarm=request.POST.get("false_alarm") in ("1", "true", "on"),
                note=_note(request))


@login_required
@require_POST
def event_page_reopen(request, event_id):
    """Reopen a resolved event or a false alarm (back to acknowledged); the note form's text goes with it."""
    return _act(request, event_id, event_reopen, done=_("The event is open again."), note=_note(request))


@login_required
@require_POST
def event_page_note(request, event_id):
    """Add the note form's text to the event."""
    return _act(request, event_id, event_note_add, done=_("Note added."), text=_note(request))


@login_required
def event_object(request, event_id, track):
    """One object's thumbnail (its best crop), for users who may view the event's camera."""
    event = event_get_for_user(request.user, event_id)
    thumbnail = event_thumbnails(event).get(track) if event is not None else None
    if thumbnail is None:
        raise Http404("No thumbnail for that object, or you may not view its camera.")
    return media_file_response(request, default_storage, thumbnail["thumbnail"], content_type="image/jpeg",
                               missing="The thumbnail file is missing.")


@login_required
def event_snapshot(request, event_id):
    """The event's key frame, for users who may view its camera (no public media URLs)."""
    event = event_get_for_user(request.user, event_id)
    if event is None or not event.snapshot:
        raise Http404("No snapshot for that event, or you may not view its camera.")
    return media_file_response(request, event.snapshot.storage, event.snapshot.name, content_type="image/jpeg",
                               missing="The snapshot file is missing.")


@login_required
def event_clip(request, event_id):
    """The event's clip (H.264 MP4; VP8 WebM for older events), for users who may view its camera, at clip.mp4 or
    clip.webm alike, sent as the file's real type; answers byte ranges so players can seek."""
    event = event_get_for_user(request.user, event_id)
    if event is None or not event.clip:
        raise Http404("No clip for that event, or you may not view its camera.")
    return media_file_response(request, event.clip.storage, event.clip.name, content_type=clip_content_type(event),
                               missing="The clip file is missing (removed by retention?).", ranges=True)


# -- media files, served to the pages (above) and to the API (events/apis.py) --------------------------------
#: One byte range, "bytes=first-last", "bytes=first-" or "bytes=-suffix" (RFC 9110 14.1.2). Several ranges
#: are not answered: the whole file is sent instead, which the RFC allows.
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d{0,30})\s*-\s*(\d{0,30})\s*$", re.IGNORECASE)
#: What ``byte_range`` answers for a range that asks nothing of the file: 416.
UNSATISFIABLE = "unsatisfiable"
#: Event files do not change once written (retention may remove them): clients may keep them an hour.
MEDIA_CACHE_CONTROL = "private, max-age=3600"
#: Ranges up to this many bytes (a player's probes of a clip's header and cues) are read and sent in one
#: piece; larger ones are streamed in blocks by FileResponse, never read whole.
SMALL_RANGE = 64 * 1024


def clip_content_type(event) -> str:
    """The clip file's real type: video/mp4 (ffmpeg's H.264 clips) or video/webm (OpenCV's VP8, older events)."""
    name = event.clip.name.lower()
    if name.endswith(".webm"):
        return "video/webm"
    return mimetypes.guess_type(name)[0] or "video/mp4"


def byte_range(header: str, size: int):
    """The byte range a ``Range`` header asks of a file of ``size`` bytes.

    ``(first, last)`` (inclusive, within the file); ``None`` to send the whole file (no header, another
    unit, several ranges, or a malformed one: a server may ignore those); ``UNSATISFIABLE`` when the range
    starts past the end, ends before it starts, or asks the last 0 bytes (or any byte of an empty file).
    """
    match = _RANGE.match(header or "")
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if first:
        start = int(first)
        end = int(last) if last else size - 1
        if (last and end < start) or start >= size:
            return UNSATISFIABLE
        return start, min(end, size - 1)
    suffix = int(last)  # the last N bytes
    if suffix == 0 or size == 0:
        return UNSATISFIABLE
    return max(0, size - suffix), size - 1


class _Slice:
    """``length`` bytes of an open file from where it stands: what a 206 answer streams (never read whole)."""

    def __init__(self, handle, length: int):
        self.handle, self.left = handle, length

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        data = self.handle.read(self.left if size is None or size < 0 else min(size, self.left))
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.handle.close()


def media_file_response(request, storage, name: str, *, content_type: str, missing: str, ranges: bool = False,
                        filename: str | None = None):
    """A stored file (``name`` in ``storage``) as a streamed FileResponse, or Http404(``missing``).

    Sends ``ETag`` and ``Last-Modified`` and answers ``If-None-Match`` / ``If-Modified-Since`` with 304.
    With ``ranges`` it answers one byte range (Django's FileResponse does not): ``Range: bytes=10-19`` gives
    206 with ``Content-Range: bytes 10-19/<size>`` and those bytes (streamed beyond ``SMALL_RANGE``); a range
    past the end gives 416 with ``Content-Range: bytes */<size>``; an ``If-Range`` that no longer matches, or
    several ranges, give the whole file (one range is all players ask for). The caller checked the permission.
    """
    try:
        handle = storage.open(name, "rb")
    except (OSError, SuspiciousFileOperation) as exc:
        if not isinstance(exc, FileNotFoundError):
            log.warning("Media file %s cannot be read: %s", name, exc)
        raise Http404(missing) from None
    try:
        stat = os.fstat(handle.fileno())
        size, mtime = stat.st_size, int(stat.st_mtime)
        etag = f'"{stat.st_mtime_ns:x}-{size:x}"'
    except (AttributeError, OSError, ValueError):  # a storage without a local file
        size, mtime, etag = handle.size, None, None
    validators = {"ETag": etag, "Last-Modified": http_date(mtime) if mtime is not None else None}
    validators = {header: value for header, value in validators.items() if value}
    if request.method in ("GET", "HEAD"):
        unchanged = get_conditional_response(request, etag=etag, last_modified=mtime)
        if unchanged is not None:
            handle.close()
            for header, value in validators.items():
                unchanged[header] = value
            return unchanged
    asked = None
    if ranges and request.method in ("GET", "HEAD") and "Range" in request.headers:
        if_range = request.headers.get("If-Range", "").strip()
        if not if_range or if_range in validators.values():
            asked = byte_range(request.headers["Range"], size)
    if asked == UNSATISFIABLE:
        handle.close()
        response = JsonResponse({"detail": f"Range not satisfiable: the file has {size} bytes."}, status=416)
        response["Content-Range"] = f"bytes */{size}"
    elif asked is not None:
        start, end = asked
        handle.seek(start)
        if end - start + 1 <= SMALL_RANGE:
            with handle:
                response = HttpResponse(handle.read(end - start + 1), status=206, content_type=content_type)
        else:
            response = FileResponse(_Slice(handle, end - start + 1), status=206, content_type=content_type)
        response["Content-Length"] = str(end - start + 1)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        if filename:
            response["Content-Disposition"] = f'inline; filename="{filename}"'
    else:
        response = FileResponse(handle, content_type=content_type, filename=filename or "")
    if ranges:
        response["Accept-Ranges"] = "bytes"
    for header, value in validators.items():
        response[header] = value
    response["Cache-Control"] = MEDIA_CACHE_CONTROL
    return response


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


# -- the dashboard and a camera's page: cameras with their events and scores -------------------------------
def _latest_event_id():
    return Subquery(AnomalyEvent.objects.filter(camera=OuterRef("pk")).order_by("-started_at", "-id").values("id")[:1])


@login_required
def dashboard(request):
    """Every camera the user may view, with its live picture, state and latest event."""
    cameras = list(camera_list_for_user(request.user).annotate(latest_event_id=_latest_event_id()))
    latest_ids = [c.latest_event_id for c in cameras if c.latest_event_id]
    latest = {e.pk: e for e in event_list_for_user(request.user).filter(pk__in=latest_ids)} if latest_ids else {}
    conditions = camera_conditions_for_user(request.user, [c.pk for c in cameras])
    for camera in cameras:
        camera.latest_event = latest.get(camera.latest_event_id)
        camera.conditions = [{**c, "label": _(HEALTH_CONDITIONS.get(c["condition"], c["condition"]))}
                             for c in conditions.get(camera.pk, [])]
    events = _with_pictures(event_list_for_user(request.user)[:DASHBOARD_EVENTS])
    return render(request, "cameras/dashboard.html", {
        "cameras": cameras, "events": events, "state_labels": state_labels(), "live_fps": 1,
        "condition_labels": {k: _(v) for k, v in HEALTH_CONDITIONS.items()},
    })


@login_required
def camera_page(request, camera_id):
    """Live view with a frame-rate choice, the anomaly-score timeline, the camera's events and controls."""
    camera = camera_or_403(request.user, camera_id)
    since = timezone.now() - timedelta(hours=24)
    events = _with_pictures(event_list_for_user(request.user, camera=camera.pk)[:CAMERA_EVENTS])
    timeline = [
        {"id": str(e["id"]), "t": e["started_at"].timestamp(), "peak": e["peak_score"], "severity": e["severity"],
         "curve": e["details"].get("score_curve", []) if isinstance(e["details"], dict) else []}
        for e in event_list_for_user(request.user, camera=camera.pk, since=since).select_related(None)
        .values("id", "started_at", "peak_score", "severity", "details")[:TIMELINE_EVENTS]
    ]
    fps = camera.stream_fps if camera.stream_fps in LIVE_FPS_CHOICES else 5
    perms = camera_perms_for_user(request.user, camera)
    return render(request, "cameras/camera.html", {
        "camera": camera,
        "events": events,
        "timeline": {"since": since.timestamp(), "threshold": camera.threshold, "events": timeline,
                     "history": _history(camera, since)},
        "can_operate": OPERATE in perms,
        "can_change": CHANGE in perms,  # the zone editor (the same rule as PATCH /api/v1/cameras/{id}/)
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
