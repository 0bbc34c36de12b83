"""Reading recordings: a camera's segments in a time range, a segment for a user, what protects footage."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from cameras.selectors import camera_ids_for_user
from events.models import AnomalyEvent

from .models import Export, Segment

#: Events whose footage retention never deletes: open (not ended) or not resolved.
UNRESOLVED = (AnomalyEvent.Status.NEW, AnomalyEvent.Status.ACKNOWLEDGED)


def segments_in_range(*, camera_id: int, since: datetime, until: datetime, limit: int | None = None) -> list[Segment]:
    """The camera's segments that overlap [since, until), earliest first (at most ``limit``)."""
    qs = Segment.objects.filter(camera_id=camera_id, start__lt=until, end__gt=since).order_by("start", "id")
    return list(qs[:limit] if limit else qs)


def segment_get_for_user(user, segment_id) -> Segment | None:
    """The segment when the user may view its camera, else None (an outsider cannot tell it exists)."""
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None or segment.camera_id not in camera_ids_for_user(user):
        return None
    return segment


def _overlapping_events(events: QuerySet) -> Exists:
    """Whether one of ``events`` of the segment's camera overlaps it, give or take RECORDING_EVENT_PADDING_SECONDS."""
    pad = timedelta(seconds=settings.RECORDING_EVENT_PADDING_SECONDS)
    return Exists(events.filter(camera_id=OuterRef("camera_id"), started_at__lte=OuterRef("end") + pad)
                  .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=OuterRef("start") - pad)))


def segments_with_rules(qs: QuerySet | None = None) -> QuerySet:
    """Segments annotated with ``protected`` (an open or unresolved event, or one kept as evidence, overlaps it: never deleted) and
    ``eventful`` (an event that is not a false alarm overlaps it: kept by the events and motion modes)."""
    qs = Segment.objects.all() if qs is None else qs
    protected = AnomalyEvent.objects.filter(Q(ended_at__isnull=True) | Q(status__in=UNRESOLVED) | Q(keep=True))
    eventful = AnomalyEvent.objects.exclude(status=AnomalyEvent.Status.FALSE_ALARM)
    return qs.annotate(protected=_overlapping_events(protected), eventful=_overlapping_events(eventful))


def event_overlaps(*, camera_id: int, start: datetime, end: datetime) -> bool:
    return AnomalyEvent.objects.filter(camera_id=camera_id, started_at__lte=end).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gte=start)).exists()


def export_get_for_user(user, export_id) -> Export | None:
    """The user's own export, else None (another user's export is answered 404, as if it did not exist)."""
    if not getattr(user, "is_authenticated", False):
        return None
    return Export.objects.filter(pk=export_id, user_id=user.pk).first()


def export_file_for_user(user, export_id, camera_id) -> tuple[Export, dict] | None:
    """(export, its file of the camera) when the export is done and not expired, has a file of that camera, and the
    user may view the camera (whoever made the export); else None."""
    export = Export.objects.filter(pk=export_id, status=Export.Status.DONE).first()
    if export is None or (export.expires_at and export.expires_at <= timezone.now()):
        return None
    entry = export.file_for(camera_id)
    if entry is None or int(camera_id) not in camera_ids_for_user(user):
        return None
    return export, entry


def exports_active_count(user) -> int:
    return Export.objects.filter(user=user, status__in=[Export.Status.QUEUED, Export.Status.RUNNING]).count()


#: The event page's recording plays from CLIP_PRE_SECONDS before the event until this long after it ended.
EVENT_AFTER_SECONDS = 5


def event_recording(event, *, now: datetime | None = None) -> dict | None:
    """What the event page needs to play the event's moment from the recording: the window (``since``: CLIP_PRE_SECONDS
    before it started, ``until``: EVENT_AFTER_SECONDS after it ended, or after now while it is open), or None when its
    camera recorded nothing in it. One query (an EXISTS)."""
    since = event.started_at - timedelta(seconds=settings.CLIP_PRE_SECONDS)
    until = (event.ended_at or now or timezone.now()) + timedelta(seconds=EVENT_AFTER_SECONDS)
    if not Segment.objects.filter(camera_id=event.camera_id, start__lt=until, end__gt=since).exists():
        return None
    return {"since": since, "until": until, "open": event.ended_at is None, "since_ms": int(since.timestamp() * 1000)}
