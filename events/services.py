"""Event workflows: store what the worker logged, operator actions, and the live broadcast."""

from __future__ import annotations

import functools
import json
import logging
import math
import uuid
import os
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Case, Count, F, IntegerField, Max, Min, Value, When
from django.utils import timezone

from audit.services import audit_record
from cameras.groups import camera_group
from cameras.models import Area, Camera
from cameras.selectors import OPERATE, camera_ids_for_user, feedback_job_for_event
from cameras.learning import learning_feedback_start

from . import signals
from .models import AnomalyEvent, EventNote, Incident, ScoreBucket
from .selectors import event_list_for_user, events_by_ids
from .serializers import EventOutputSerializer
from .severity import SEVERITIES

log = logging.getLogger(__name__)

_UPDATE_FIELDS = [f for f in AnomalyEvent.WORKER_FIELDS if f not in ("camera_id", "started_at")] + ["updated_at"]
_SEVERITIES = frozenset(AnomalyEvent.Severity.values)
#: ``details.kind`` of the event a worker records when a camera stops being watched (inference/e2e.py OFFLINE_KIND).
OFFLINE_KIND = "camera_offline"


def _parse_time(value):
    """A record's timestamp (ISO text or datetime) as an aware datetime; ValueError when malformed."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(value)
    return timezone.make_aware(value) if timezone.is_naive(value) else value


def _score(value) -> float:
    value = float(value or 0)
    return value if math.isfinite(value) else 0.0


def _label_list(value) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise ValueError("labels must be a list of strings")
    return value


def _event_rows(records: list[dict]) -> list[dict]:
    """Validate and normalise worker records into column values, one per event id (the last wins).

    Raises ValueError, TypeError or KeyError for a malformed record: the event log then sets that
    record aside and stores the others (events/eventlog.py). Nothing malformed reaches the database,
    where it would fail like an outage and be retried forever.
    """
    rows: dict[uuid.UUID, dict] = {}
    for r in records:
        severity = r.get("severity") or AnomalyEvent.Severity.LOW
        if severity not in _SEVERITIES:
            raise ValueError(f"unknown severity {severity!r}")
        started_at = _parse_time(r["started_at"])
        if started_at is None:
            raise ValueError("started_at is missing")
        row = {
            "id": uuid.UUID(str(r["id"])),
            "camera_id": int(r["camera_id"]),
            "started_at": started_at,
            "ended_at": _parse_time(r.get("ended_at")),
            "peak_score": _score(r.get("peak_score")),
            "mean_score": _score(r.get("mean_score")),
            "severity": severity,
            "description": str(r.get("description") or "").replace("\x00", ""),  # a model's text may hold NUL
            "decision": r.get("decision") or {},
            "snapshot": str(r.get("snapshot") or ""),
            "clip": str(r.get("clip") or ""),
            "details": r.get("details") or {},
            "labels": AnomalyEvent.labels_field(_label_list(r.get("labels"))),
        }
        rows.pop(row["id"], None)  # keep the order of the latest version
        rows[row["id"]] = row
    return list(rows.values())


@functools.cache
def _upsert_sql() -> str:
    """One statement that inserts a batch given as a JSON array, or updates the worker's fields.

    Rows of cameras that no longer exist are left out; RETURNING names the stored ids.
    """
    meta, q = AnomalyEvent._meta, connection.ops.quote_name
    table, camera_table = q(meta.db_table), q(Camera._meta.db_table)
    columns = [q(meta.get_field(f).column) for f in
               ("id", *AnomalyEvent.WORKER_FIELDS, "status", "keep", "created_at", "updated_at")]
    updates = ", ".join(f"{q(meta.get_field(f).column)} = EXCLUDED.{q(meta.get_field(f).column)}"
                        for f in _UPDATE_FIELDS)
    incident, camera = q(meta.get_field("incident").column), q(meta.get_field("camera").column)
    area = q(Camera._meta.get_field("area").column)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"SELECT {', '.join('r.' + c for c in columns)} FROM json_populate_recordset(NULL::{table}, %s::json) AS r "
        f"WHERE EXISTS (SELECT 1 FROM {camera_table} c WHERE c.id = r.camera_id) "
        f"ON CONFLICT (id) DO UPDATE SET {updates} RETURNING {table}.id, {table}.{incident}, "
        f"(SELECT c.{area} FROM {camera_table} c WHERE c.id = {table}.{camera})"
    )


def _upsert_postgresql(rows: list[dict]) -> dict[uuid.UUID, tuple]:
    """PostgreSQL: the whole batch as one JSON parameter of one statement.

    The ORM's bulk upsert costs tens of microseconds of Python per event and a query to find the
    live cameras first; this is one round trip, one commit, and almost no Python per event
    (docs/BENCHMARKS.md, event storage). It answers, per stored id, the event's incident and its
    camera's area (incidents need nothing more where no camera has an area).
    """
    now = timezone.now().isoformat()
    payload = json.dumps([
        {**row, "id": str(row["id"]), "started_at": row["started_at"].isoformat(),
         "ended_at": row["ended_at"].isoformat() if row["ended_at"] else None,
         "status": AnomalyEvent.Status.NEW, "keep": False, "created_at": now, "updated_at": now}
        for row in rows
    ], allow_nan=False)
    with connection.cursor() as cursor:
        cursor.execute(_upsert_sql(), [payload])
        return {uuid.UUID(str(pk)): (incident_id, area_id) for pk, incident_id, area_id in cursor.fetchall()}


def _upsert_orm(rows: list[dict]) -> dict[uuid.UUID, tuple]:
    """Other databases (SQLite for `make run`): the ORM's bulk upsert, in one transaction."""
    for row in rows:  # what the JSON columns reject (NaN, objects) fails here as malformed, not in the database
        json.dumps([row["decision"], row["details"]], allow_nan=False)
    live = dict(Camera.objects.filter(id__in={row["camera_id"] for row in rows}).values_list("id", "area_id"))
    objs = [AnomalyEvent(**row) for row in rows if row["camera_id"] in live]
    if not objs:
        return {}
    with transaction.atomic():
        AnomalyEvent.objects.bulk_create(objs, update_conflicts=True, unique_fields=["id"],
                                         update_fields=_UPDATE_FIELDS)
    incidents = dict(AnomalyEvent.objects.filter(id__in=[obj.id for obj in objs], incident__isnull=False)
                     .values_list("id", "incident_id"))
    return {obj.id: (incidents.get(obj.id), live[obj.camera_id]) for obj in objs}


def event_records_store(records: list[dict]) -> list[uuid.UUID]:
    """Insert or update events from worker records, the whole batch at once (an upsert by UUID).

    Storing the same record twice leaves one row: this is what makes a replay of the JSON-lines
    log after a crash safe. The worker's update never touches the operator's fields (status and
    who acknowledged or resolved). Records of cameras deleted meanwhile are skipped. Events of
    cameras in an area join the area's incident (``incidents_attach``) before they are announced.
    After commit, the stored events are pushed live and routed to alerts.
    """
    rows = _event_rows(records)
    if not rows:
        return []
    upsert = _upsert_postgresql if connection.vendor == "postgresql" else _upsert_orm
    stored = upsert(rows)
    ids = [row["id"] for row in rows if row["id"] in stored]
    for row in rows:
        if row["id"] not in stored:
            log.info("Skipping event %s of deleted camera %s", row["id"], row["camera_id"])
    grouped = [{**row, "incident_id": stored[row["id"]][0], "area_id": stored[row["id"]][1]}
               for row in rows if row["id"] in stored and any(stored[row["id"]])]
    if grouped:
        incidents_attach(rows=grouped)
    if ids:
        # Outside a transaction the statement has committed and these run now; inside one, at its commit.
        transaction.on_commit(lambda: events_broadcast(event_ids=ids))
        transaction.on_commit(lambda: _announce(signals.events_stored, event_ids=ids))
    return ids


# -- incidents --------------------------------------------------------------------------------------------
def _joins_incidents(row: dict) -> bool:
    """Camera-offline events stay out of incidents: they report the equipment, not the scene, and an
    intruder's events on the area's other cameras must not become mere follow-ups of "camera offline"."""
    details = row.get("details")
    return not (isinstance(details, dict) and details.get("kind") == OFFLINE_KIND)


def incidents_attach(*, rows: list[dict]) -> list[int]:
    """Group stored events of cameras in an area into incidents; returns the ids of the incidents touched.

    ``rows``: the stored events (``id``, ``started_at``, ``severity``, ``details``) with their
    ``incident_id`` and their camera's ``area_id`` as stored. An event without an incident, of a
    camera in an area, joins the area's incident whose events started within the area's
    ``incident_window_seconds`` of it (started at or after its ``opened_at - window``, at or before
    its ``last_event_at + window``; the one with the latest event when several would), else opens a
    new one. Then every incident touched (joined, or holding an event
    of the batch, whose severity may have changed) gets its times, severity and count recomputed
    from its events, so storing the same records again changes nothing.

    The areas' rows are locked first (in id order): two batches of one area, in two workers, attach
    one after the other, and the second sees the incident the first opened. The event rows are
    read again under the lock (a concurrent store of the same record may have attached them).
    """
    area_ids = {row["area_id"] for row in rows if row["area_id"]}
    known = {row["incident_id"] for row in rows if row["incident_id"]}
    touched: set[int] = set()
    with transaction.atomic():
        area_ids |= set(Incident.objects.filter(pk__in=known).values_list("area_id", flat=True))
        areas = {area.pk: area for area in Area.objects.select_for_update().filter(pk__in=area_ids).order_by("pk")}
        current = dict(AnomalyEvent.objects.filter(pk__in=[row["id"] for row in rows])
                       .values_list("id", "incident_id"))
        joining: dict[int, list] = {}
        for row in sorted(rows, key=lambda r: (r["started_at"], str(r["id"]))):
            incident_id = current.get(row["id"])
            if incident_id:
                touched.add(incident_id)
                continue
            area = areas.get(row["area_id"])
            if area is None or row["id"] not in current or not _joins_incidents(row):
                continue
            incident = _incident_for(area, row["started_at"])
            joining.setdefault(incident.pk, []).append(row["id"])
            touched.add(incident.pk)
        for incident_id, event_ids in joining.items():
            AnomalyEvent.objects.filter(pk__in=event_ids, incident__isnull=True).update(incident_id=incident_id)
        for incident_id in sorted(touched):
            _incident_recount(incident_id)
    return sorted(touched)


def _incident_for(area: Area, started_at) -> Incident:
    """The area's incident an event that started at ``started_at`` joins (its times widened), or a new one."""
    window = timedelta(seconds=area.incident_window_seconds)
    incident = (Incident.objects.filter(area=area, last_event_at__gte=started_at - window,
                                        opened_at__lte=started_at + window)
                .order_by("-last_event_at", "-id").first())
    if incident is None:
        return Incident.objects.create(area=area, opened_at=started_at, last_event_at=started_at, event_count=0)
    # Widened now, so that the batch's later events of the area see it; recounted from the events below.
    incident.opened_at = min(incident.opened_at, started_at)
    incident.last_event_at = max(incident.last_event_at, started_at)
    incident.save(update_fields=["opened_at", "last_event_at", "updated_at"])
    return incident


_SEVERITY_RANK = Case(*[When(severity=s, then=Value(rank)) for rank, s in enumerate(SEVERITIES)],
                      default=Value(-1), output_field=IntegerField())


def _incident_recount(incident_id: int) -> None:
    """The incident's times, severity and count, from its events as they are now (one query, one update)."""
    found = AnomalyEvent.objects.filter(incident_id=incident_id).aggregate(
        first=Min("started_at"), last=Max("started_at"), count=Count("id"), rank=Max(_SEVERITY_RANK))
    if not found["count"]:
        return
    Incident.objects.filter(pk=incident_id).update(
        opened_at=found["first"], last_event_at=found["last"], event_count=found["count"],
        severity=SEVERITIES[max(0, found["rank"])], updated_at=timezone.now())


def _announce(signal, **kwargs) -> None:
    """Tell the apps that listen (after commit; their receivers queue tasks). Never raises: the change is stored."""
    for receiver, result in signal.send_robust(sender=AnomalyEvent, **kwargs):
        if isinstance(result, Exception):
            log.error("%s failed on %s: %s", receiver, signal, result, exc_info=result)


def event_acknowledge(*, event: AnomalyEvent, by, bulk: bool = False) -> AnomalyEvent:
    with transaction.atomic():
        event = AnomalyEvent.objects.select_for_update().get(pk=event.pk)
        if event.status == AnomalyEvent.Status.ACKNOWLEDGED:
            return event  # acknowledging twice changes nothing
        if not event.can_transition_to(AnomalyEvent.Status.ACKNOWLEDGED):
            raise ValidationError({"status": f"The event is already {event.get_status_display().lower()}."})
        event.status = AnomalyEvent.Status.ACKNOWLEDGED
        event.acknowledged_by = by
        event.acknowledged_at = timezone.now()
        event.save(update_fields=["status", "acknowledged_by", "acknowledged_at", "updated_at"])
        audit_record(actor=by, action="event.acknowledge", target=event, changes=["status"],
                     details={"bulk": True} if bulk else None)
        transaction.on_commit(lambda: events_broadcast(event_ids=[event.pk]))
    return event


def events_acknowledge_many(*, event_ids, by) -> tuple[int, int]:
    """Acknowledge the given new events of cameras ``by`` may operate. (acknowledged, left alone)."""
    operable = camera_ids_for_user(by, OPERATE)
    done = 0
    for event in event_list_for_user(by).filter(pk__in=list(event_ids), camera_id__in=operable,
                                                status=AnomalyEvent.Status.NEW):
        event_acknowledge(event=event, by=by, bulk=True)
        done += 1
    return done, len(event_ids) - done


def _note_text(text) -> str:
    """A note's text as stored: trimmed; ValidationError naming ``text`` when empty, too long or not text."""
    if not isinstance(text, str):
        raise ValidationError({"text": "The note must be text."})
    text = text.strip()
    if not text:
        raise ValidationError({"text": "The note is empty."})
    if len(text) > EventNote.MAX_LENGTH:
        raise ValidationError({"text": f"The note is {len(text)} characters long; at most {EventNote.MAX_LENGTH}."})
    if "\x00" in text:
        raise ValidationError({"text": "The note holds a NUL character."})
    return text


def _note_create(*, event: AnomalyEvent, by, text: str) -> EventNote:
    """Store a checked note (``_note_text``) and audit it; the caller holds the transaction."""
    name = by.get_username() if getattr(by, "is_authenticated", False) else ""
    note = EventNote.objects.create(event=event, author=by if name else None, author_name=name[:150], text=text)
    audit_record(actor=by, action="event.note", target=event, changes=["notes"],
                 details={"note": note.pk, "length": len(text)})
    return note


def event_note_add(*, event: AnomalyEvent, by, text) -> EventNote:
    """An operator's note on an event (who and when are kept); audited, and the event pushed again after
    commit so that pages showing it bring their notes up to date."""
    text = _note_text(text)
    with transaction.atomic():
        note = _note_create(event=event, by=by, text=text)
        transaction.on_commit(lambda: events_broadcast(event_ids=[event.pk]))
    return note


def _status_error(event: AnomalyEvent) -> ValidationError:
    return ValidationError({"status": f"The event is already {event.get_status_display().lower()}."})


def event_resolve(*, event: AnomalyEvent, by, false_alarm: bool = False, note: str = "",
                  bulk: bool = False) -> AnomalyEvent:
    """Close the case as resolved or as a false alarm, or reclassify a closed one (resolved <-> false alarm).

    A false alarm (first marked, or reclassified from resolved) is announced once after commit: the camera's
    detector learns it was normal (events/receivers.py; a second announcement of one event starts no second
    job). Reclassifying a false alarm as resolved announces nothing and does not undo what was learned (an
    operator may restore the previous detector version). ``note`` (optional) is stored with the change.
    Resolving as it already is changes nothing (the note, if any, is still kept).
    """
    target = AnomalyEvent.Status.FALSE_ALARM if false_alarm else AnomalyEvent.Status.RESOLVED
    text = _note_text(note) if note and note.strip() else ""
    with transaction.atomic():
        event = AnomalyEvent.objects.select_for_update().get(pk=event.pk)
        if event.status == target:
            if text:
                _note_create(event=event, by=by, text=text)
                transaction.on_commit(lambda: events_broadcast(event_ids=[event.pk]))
            return event
        if not event.can_transition_to(target):
            raise _status_error(event)
        previous = event.status
        now = timezone.now()
        changed = ["status", "resolved_by", "resolved_at"]
        if event.acknowledged_at is None:
            event.acknowledged_by, event.acknowledged_at = by, now
            changed += ["acknowledged_by", "acknowledged_at"]
        event.status = target
        event.resolved_by = by
        event.resolved_at = now
        event.save(update_fields=[*changed, "updated_at"])
        details = {"reclassified_from": previous} if previous in AnomalyEvent.CLOSED_STATUSES else {}
        if bulk:
            details["bulk"] = True
        audit_record(actor=by, action="event.false_alarm" if false_alarm else "event.resolve", target=event,
                     changes=["status"], details=details or None)
        if text:
            _note_create(event=event, by=by, text=text)
        transaction.on_commit(lambda: events_broadcast(event_ids=[event.pk]))
        if false_alarm:  # the camera's detector learns that it was normal (events/receivers.py)
            transaction.on_commit(lambda: _announce(signals.event_false_alarm, event_id=event.pk,
                                                    user_id=getattr(by, "pk", None)))
    return event


def event_reopen(*, event: AnomalyEvent, by, note: str = "") -> AnomalyEvent:
    """Reopen a closed case (resolved or false alarm): back to acknowledged, who resolved it forgotten (the
    audit log keeps it). Acknowledged, not new: someone has looked at it already, and it is not announced
    again. A false alarm's learning is not undone. ``note`` (optional) says why. An open event is refused
    (ValidationError naming ``status``)."""
    text = _note_text(note) if note and note.strip() else ""
    with transaction.atomic():
        event = AnomalyEvent.objects.select_for_update().get(pk=event.pk)
        if not event.can_transition_to(AnomalyEvent.Status.ACKNOWLEDGED, reopen=True):
            raise ValidationError({"status": f"Only a resolved event or a false alarm can be reopened; this one "
                                             f"is {event.get_status_display().lower()}."})
        previous = event.status
        changed = ["status", "resolved_by", "resolved_at"]
        event.status = AnomalyEvent.Status.ACKNOWLEDGED
        event.resolved_by, event.resolved_at = None, None
        if event.acknowledged_at is None:
            event.acknowledged_by, event.acknowledged_at = by, timezone.now()
            changed += ["acknowledged_by", "acknowledged_at"]
        event.save(update_fields=[*changed, "updated_at"])
        audit_record(actor=by, action="event.reopen", target=event, changes=changed,
                     details={"reopened_from": previous})
        if text:
            _note_create(event=event, by=by, text=text)
        transaction.on_commit(lambda: events_broadcast(event_ids=[event.pk]))
    return event


def event_keep(*, event: AnomalyEvent, by, keep: bool = True) -> AnomalyEvent:
    """Keep the event as evidence (or stop keeping it): while kept, retention never deletes its clip, its
    snapshot or the recorded footage around it (recordings). Audited, pushed; the same value twice changes
    nothing."""
    keep = bool(keep)
    with transaction.atomic():
        event = AnomalyEvent.objects.select_for_update().get(pk=event.pk)
        if event.keep == keep:
            return event
        event.keep = keep
        event.save(update_fields=["keep", "updated_at"])
        audit_record(actor=by, action="event.keep" if keep else "event.unkeep", target=event, changes=["keep"])
        transaction.on_commit(lambda: events_broadcast(event_ids=[event.pk]))
    return event


def events_resolve_many(*, event_ids, by, false_alarm: bool = False) -> tuple[int, int]:
    """Resolve (or mark as false alarms) the given open events of cameras ``by`` may operate, each as
    ``event_resolve`` does (audited, pushed, a false alarm learned). (done, left alone): closed events and
    those of cameras ``by`` may only view are left as they are."""
    operable = camera_ids_for_user(by, OPERATE)
    done = 0
    for event in event_list_for_user(by).filter(pk__in=list(event_ids), camera_id__in=operable,
                                                status__in=AnomalyEvent.OPEN_STATUSES):
        event_resolve(event=event, by=by, false_alarm=false_alarm, bulk=True)
        done += 1
    return done, len(event_ids) - done


def event_false_alarm_learn(*, event_id, user_id=None):
    """Start the feedback job of a false alarm (the events task calls it); None when the event is gone.

    Safe to run twice: an event that already has its feedback job gets that job back.
    """
    event = AnomalyEvent.objects.filter(pk=event_id).first()
    if event is None:
        return None
    existing = feedback_job_for_event(event_id=event.pk)
    if existing is not None:
        return existing
    by = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    return learning_feedback_start(event=event, by=by)


def events_broadcast(*, event_ids) -> None:
    """Push the stored events to their cameras' live groups. Never raises: storage already happened."""
    layer = get_channel_layer()
    if layer is None:
        return
    events = list(events_by_ids(event_ids))
    data = EventOutputSerializer(events, many=True).data  # the serializer's fields are built once
    messages = [(camera_group(event.camera_id), {"type": "event.message", "event": item})
                for event, item in zip(events, data)]

    async def send_all():
        for group, message in messages:
            await layer.group_send(group, message)

    try:
        if messages:
            async_to_sync(send_all)()  # one hop to the event loop per batch, not one per event
    except Exception:
        log.exception("Live broadcast of events failed; they are stored and visible in the API")


def event_clips_enforce_retention(*, now=None) -> dict:
    """Delete event clips older than ``CLIP_RETENTION_DAYS``, then the oldest ones over ``CLIP_MAX_TOTAL_MB``.

    Run by beat (``events-clips-retention``). The events stay; their ``clip`` is emptied. Files under
    the clips folder that no event names any more (a crash between writing and storing) count
    towards the cap and go first when they are old. Safe to run twice or concurrently.
    """
    now = now or timezone.now()
    root = Path(settings.MEDIA_ROOT)
    folder = root / "events" / "clips"
    removed_old = removed_cap = 0
    if settings.CLIP_RETENTION_DAYS > 0:
        cutoff = now - timedelta(days=settings.CLIP_RETENTION_DAYS)
        expired = AnomalyEvent.objects.filter(started_at__lt=cutoff, keep=False).exclude(clip="")
        for pk, name in expired.values_list("id", "clip"):
            _delete_file(root / name)
            AnomalyEvent.objects.filter(pk=pk, clip=name).update(clip="")
            removed_old += 1
    files = []
    if folder.is_dir():
        for dirpath, _dirs, names in os.walk(folder):
            for n in names:
                path = Path(dirpath) / n
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                files.append((st.st_mtime, st.st_size, path))
    total = sum(size for _, size, _ in files)
    cap = int(settings.CLIP_MAX_TOTAL_MB * 1024 * 1024)
    if cap > 0 and total > cap:
        kept = set(AnomalyEvent.objects.filter(keep=True).exclude(clip="").values_list("clip", flat=True))
        for _mtime, size, path in sorted(files):
            if total <= cap:
                break
            name = path.relative_to(root).as_posix()
            if name in kept:
                continue  # evidence an operator keeps: counted, never deleted
            _delete_file(path)
            AnomalyEvent.objects.filter(clip=name).update(clip="")
            total -= size
            removed_cap += 1
    if removed_old or removed_cap:
        log.info("Clip retention: %d expired, %d over the disk cap removed", removed_old, removed_cap)
    return {"expired": removed_old, "over_cap": removed_cap, "bytes": max(total, 0)}


def _delete_file(path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


# -- score history (ScoreBucket) -------------------------------------------------------------------
def score_buckets_store(*, buckets) -> int:
    """Insert finished score buckets of any cameras in one statement; returns how many were stored.

    ``buckets``: ``(camera_id, start epoch seconds, length in seconds, max, mean, count)`` tuples
    from the worker. Buckets of cameras deleted meanwhile are skipped (a foreign-key error would
    lose the whole batch).
    """
    buckets = list(buckets)
    if not buckets:
        return 0
    live_cameras = set(Camera.objects.filter(id__in={b[0] for b in buckets}).values_list("id", flat=True))
    objs = [
        ScoreBucket(camera_id=camera_id, start=datetime.fromtimestamp(start, tz=dt_timezone.utc), seconds=int(seconds),
                    max_score=float(peak), mean_score=float(mean), count=int(count))
        for camera_id, start, seconds, peak, mean, count in buckets
        if camera_id in live_cameras and count > 0
    ]
    ScoreBucket.objects.bulk_create(objs, batch_size=1000)
    return len(objs)


def score_history_prune(*, now=None) -> int:
    """Delete score buckets older than ``SCORE_HISTORY_DAYS`` (beat: ``events-score-history-prune``).

    One delete per camera, so each uses the (camera, start) index. Safe to run twice or
    concurrently. Returns the number of rows deleted.
    """
    if settings.SCORE_HISTORY_DAYS <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=settings.SCORE_HISTORY_DAYS)
    deleted = 0
    for camera_id in Camera.objects.values_list("id", flat=True):
        deleted += ScoreBucket.objects.filter(camera_id=camera_id, start__lt=cutoff).delete()[0]
    if deleted:
        log.info("Score history: %d buckets older than %d days deleted", deleted, settings.SCORE_HISTORY_DAYS)
    return deleted


def events_close_stale(*, now=None) -> int:
    """Close events left open by a worker that died (SIGKILL, power loss) before it closed them.

    A worker closes every episode within MAX_EVENT_SECONDS (300 s), so an anomaly event still open
    EVENT_STALE_SECONDS after it started has lost its worker: it is closed at its last update, and
    pushed live. A camera-offline event stays open while its camera is still not running (that is
    what it reports). Run by beat (``events-close-stale``); safe to run twice.
    """
    now = now or timezone.now()
    stale = AnomalyEvent.objects.filter(ended_at__isnull=True,
                                        started_at__lt=now - timedelta(seconds=settings.EVENT_STALE_SECONDS))
    with transaction.atomic():
        rows = stale.select_for_update(of=("self",)).values_list("id", "details", "camera__state")
        ids = [pk for pk, details, state in rows
               if not (isinstance(details, dict) and details.get("kind") == OFFLINE_KIND
                       and state != Camera.State.RUNNING)]
        if not ids:
            return 0
        AnomalyEvent.objects.filter(id__in=ids).update(ended_at=F("updated_at"), updated_at=now)
        log.warning("Closed %d event(s) left open by a worker that stopped", len(ids))
        transaction.on_commit(lambda: events_broadcast(event_ids=ids))
    return len(ids)
