import math

from django.conf import settings
from django.db.models import BigIntegerField, ExpressionWrapper, F, FloatField, Func, Max, Q, QuerySet, Sum, Value

from cameras.selectors import camera_list_for_user

from .kinds import CAMERA_KINDS
from .models import AnomalyEvent, EventNote, Incident, ScoreBucket
from .severity import severity_rank


# What event lists show of the related rows: the camera's name and who acknowledged or resolved. Loading the
# whole camera row (its JSON settings) and user rows for every event cost a tenth of an events API page.
_RELATED_SHOWN = ("camera__name", "acknowledged_by__username", "resolved_by__username")


def _base() -> QuerySet:
    own = [f.name for f in AnomalyEvent._meta.concrete_fields]
    return (AnomalyEvent.objects.select_related("camera", "acknowledged_by", "resolved_by")
            .only(*own, *_RELATED_SHOWN))


def _of_kind(qs: QuerySet, kind: str) -> QuerySet:
    if kind == "scene":  # no details.kind, or one that is not about the camera itself (events/kinds.py)
        return qs.filter(Q(details__kind__isnull=True) | ~Q(details__kind__in=CAMERA_KINDS))
    return qs.filter(details__kind=kind)


def camera_conditions_for_user(user, camera_ids) -> dict[int, list[dict]]:
    """What is wrong with each camera itself now: its open camera-health events (covered, blurred, moved...),
    oldest first, for the cameras of ``camera_ids`` the user may view: ``{camera_id: [{"condition", "event",
    "since"}]}``. One query."""
    rows = (_of_kind(event_list_for_user(user), "camera_health")
            .filter(camera_id__in=list(camera_ids), ended_at__isnull=True)
            .order_by("started_at").values("id", "camera_id", "started_at", "details"))
    out: dict[int, list[dict]] = {}
    for row in rows:
        details = row["details"] if isinstance(row["details"], dict) else {}
        out.setdefault(row["camera_id"], []).append(
            {"condition": str(details.get("condition") or ""), "event": row["id"], "since": row["started_at"]})
    return out


def event_list_for_user(user, *, camera=None, severity=None, status=None, since=None, until=None,
                        label=None, kind=None) -> QuerySet:
    """Events of the cameras the user may view, newest first, optionally filtered (``label``: an object seen;
    ``kind``: one of EVENT_KINDS)."""
    qs = _base().filter(camera__in=camera_list_for_user(user).values("id"))
    if kind:
        qs = _of_kind(qs, kind)
    if label:
        qs = qs.filter(labels__contains=f",{label.strip().lower()},")
    if camera is not None:
        qs = qs.filter(camera_id=camera)
    if severity:
        qs = qs.filter(severity__in=severity if isinstance(severity, (list, tuple)) else [severity])
    if status:
        qs = qs.filter(status__in=status if isinstance(status, (list, tuple)) else [status])
    if since is not None:
        qs = qs.filter(started_at__gte=since)
    if until is not None:
        qs = qs.filter(started_at__lt=until)
    return qs.order_by("-started_at", "-id")


def event_get_for_user(user, event_id) -> AnomalyEvent | None:
    return event_list_for_user(user).filter(pk=event_id).first()


def event_thumbnails(event: AnomalyEvent) -> dict[int, dict]:
    """The event's objects that have a thumbnail, by track: {"track", "label", "thumbnail"} (a file name under
    MEDIA_ROOT/events/objects/, as the worker wrote it; anything else in ``details`` is left out)."""
    details = event.details if isinstance(event.details, dict) else {}
    out = {}
    for obj in details.get("objects") or []:
        if not isinstance(obj, dict):
            continue
        track, name = obj.get("track"), obj.get("thumbnail")
        if (isinstance(track, int) and not isinstance(track, bool) and track not in out and isinstance(name, str)
                and name.startswith("events/objects/") and ".." not in name and "\\" not in name):
            out[track] = {"track": track, "label": str(obj.get("label") or ""), "thumbnail": name}
    return out


def event_list_picture(event: AnomalyEvent) -> dict | None:
    """What an events list shows of an event as a picture, read from the row alone (no query):
    ``{"kind": "object", "track", "label"}`` for its best object crop (the highest score among the objects
    with a thumbnail; events/<id>/objects/<track>.jpg), else ``{"kind": "snapshot"}``
    (events/<id>/snapshot.jpg), else None."""
    thumbnails = event_thumbnails(event)
    if thumbnails:
        details = event.details if isinstance(event.details, dict) else {}
        scores = {}
        for obj in details.get("objects") or []:
            track = obj.get("track") if isinstance(obj, dict) else None
            if isinstance(track, int) and track in thumbnails and track not in scores:
                score = obj.get("score")
                scores[track] = float(score) if isinstance(score, (int, float)) and math.isfinite(score) else 0.0
        best = max(thumbnails.values(), key=lambda t: scores.get(t["track"], 0.0))  # the first among equals
        return {"kind": "object", "track": best["track"], "label": best["label"]}
    if event.snapshot:
        return {"kind": "snapshot"}
    return None


def event_notes(event: AnomalyEvent):
    """The event's notes, oldest first (the caller has checked that the user may view the event)."""
    return EventNote.objects.filter(event_id=event.pk).order_by("created_at", "id")


def incident_for_user(user, incident_id) -> dict | None:
    """An incident as the user may see it: None when it does not exist or holds no event the user may view.

    ``{"incident", "area", "events", "event_count", "severity", "cameras"}``: ``events`` are its events
    of cameras the user may view (oldest first), and the count, the highest severity and the camera
    names are those of these events only: nothing is said of events of cameras the user may not view.
    """
    try:
        incident_id = int(incident_id)
    except (TypeError, ValueError):
        return None
    incident = Incident.objects.select_related("area").filter(pk=incident_id).first()
    if incident is None:
        return None
    events = list(event_list_for_user(user).filter(incident=incident).order_by("started_at", "id"))
    if not events:
        return None
    cameras = list(dict.fromkeys(event.camera.name for event in events))
    return {"incident": incident, "area": incident.area, "events": events, "event_count": len(events),
            "severity": max((event.severity for event in events), key=severity_rank), "cameras": cameras}


def events_by_ids(event_ids) -> QuerySet:
    return _base().filter(pk__in=list(event_ids)).order_by("started_at")


class _EpochSeconds(Func):
    """A datetime column as whole seconds since 1970-01-01 UTC, computed by the database (SQLite, PostgreSQL)."""

    output_field = BigIntegerField()

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, **extra,
                           template="CAST(ROUND((julianday(%(expressions)s) - 2440587.5) * 86400) AS INTEGER)")

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, **extra,
                           template="CAST(ROUND(EXTRACT(EPOCH FROM %(expressions)s)) AS BIGINT)")

    def as_mysql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, **extra, template="CAST(UNIX_TIMESTAMP(%(expressions)s) AS SIGNED)")


def score_history(*, camera_id: int, since, until, max_points: int | None = None) -> dict:
    """One camera's anomaly scores in [since, until), merged into at most ``max_points`` points.

    The caller has checked that the user may view the camera (``cameras.selectors.camera_get_for_user``).
    Stored buckets (``SCORE_HISTORY_BUCKET_SECONDS`` long) are merged, in the database, into steps
    of a whole number of buckets so the answer stays small whatever the span: per step the
    highest score, the mean weighted by frame counts, and the number of scored frames. One query
    over the (camera, start) index. Columns, for charts: ``t`` holds each step's start in epoch
    seconds (UTC); steps without data are left out.
    """
    bucket = max(1, int(settings.SCORE_HISTORY_BUCKET_SECONDS))
    max_points = max(2, int(max_points or settings.SCORE_HISTORY_MAX_POINTS))
    span = max(0.0, (until - since).total_seconds())
    # ceil(span / step) + 1 steps can be touched (the first one starts before ``since``).
    step = bucket * max(1, math.ceil(span / ((max_points - 1) * bucket)))
    slot = ExpressionWrapper(_EpochSeconds("start") / Value(step) * Value(step), output_field=BigIntegerField())
    rows = (ScoreBucket.objects.filter(camera_id=camera_id, start__gte=since, start__lt=until)
            .annotate(slot=slot).values("slot")
            .annotate(peak=Max("max_score"), frames=Sum("count"),
                      total=Sum(ExpressionWrapper(F("mean_score") * F("count"), output_field=FloatField())))
            .order_by("slot").values_list("slot", "peak", "frames", "total"))
    t, peaks, means, counts = [], [], [], []
    for start, peak, frames, total in rows:
        t.append(int(start))
        peaks.append(round(peak, 4))
        counts.append(int(frames))
        means.append(round(total / frames, 4) if frames else 0.0)
    return {
        "since": since, "until": until, "bucket_seconds": bucket, "step_seconds": step,
        "t": t, "max": peaks, "mean": means, "count": counts,
    }
