"""Writing recordings: indexing finished segments (the inference worker), retention (beat), exports (a task)."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from audit.services import audit_record
from cameras.models import Camera
from events.models import AnomalyEvent
from siteconfig.selectors import RecordingRetention, recording_retention

from . import concat
from .models import DeletionCount, Export, Segment
from .selectors import event_overlaps, segments_in_range, segments_with_rules
from .storage import ARCHIVE, FAST, export_folder, segment_file, tier_roots

log = logging.getLogger(__name__)

GB = 1024 ** 3
RETENTION_LOCK = "recordings:retention"


def segment_index(*, camera_id: int, start: datetime, end: datetime, path: str, size: int, tier: str = FAST,
                  mode: str = "continuous", codec: str = "", encoded: bool = False,
                  has_motion: bool = False, has_objects: bool = False) -> Segment | None:
    """Index a finished segment file (safe to run twice: the same file is indexed once).

    Returns None when the camera no longer exists (the caller deletes the file).
    """
    if not Camera.objects.filter(pk=camera_id).exists():
        return None
    try:
        segment, _created = Segment.objects.get_or_create(tier=tier, path=path, defaults=dict(
            camera_id=camera_id, start=start, end=end, size=int(size), mode=mode, codec=codec[:20],
            encoded=encoded, has_motion=has_motion, has_objects=has_objects,
            has_event=event_overlaps(camera_id=camera_id, start=start, end=end)))
    except IntegrityError:  # the camera was deleted meanwhile
        return None
    return segment


def _count(reason: str, segments: int, nbytes: int) -> None:
    if not segments:
        return
    DeletionCount.objects.get_or_create(reason=reason)
    DeletionCount.objects.filter(reason=reason).update(segments=F("segments") + segments, bytes=F("bytes") + nbytes)


def _delete(qs, reason: str, tally: Counter, sizes: Counter, *, need_bytes: int | None = None) -> int:
    """Delete the segments of ``qs``, oldest first, in batches (all, or until ``need_bytes`` are freed): the file,
    then the row. Returns the bytes freed. A row another run deleted meanwhile is not counted."""
    freed = 0
    batch = max(1, settings.RECORDING_RETENTION_BATCH)
    while need_bytes is None or freed < need_bytes:
        rows = list(qs.order_by("start", "id").values_list("id", "tier", "path", "size")[:batch])
        if not rows:
            break
        chosen = []
        for pk, tier, path, size in rows:
            if need_bytes is not None and freed >= need_bytes:
                break
            file = segment_file(tier, path)
            if file is not None:
                try:
                    file.unlink(missing_ok=True)
                except OSError as exc:  # the row goes anyway: the file is unreachable for playback too
                    log.warning("Recording %s cannot be deleted: %s", file, exc)
            chosen.append(pk)
            freed += size
        if not chosen:
            break
        done = Segment.objects.filter(pk__in=chosen).delete()[1].get(Segment._meta.label, 0)
        tally[reason] += done
        if done:
            sizes[reason] += sum(size for pk, _t, _p, size in rows if pk in set(chosen))
        if len(rows) < batch and need_bytes is None:
            break
    return freed


def recordings_retention(*, now: datetime | None = None, disk_usage=shutil.disk_usage) -> dict[str, int]:
    """Delete the footage no rule keeps: by age per mode, then the oldest while a folder is over its size cap or its
    disk under its free-space floor (the site settings' "Recordings", read once per run: a change applies at the next
    run). Footage of an open, unresolved or kept event is never deleted. First, with an archive folder, old footage moves there
    (``recordings_archive``). Safe to run twice (one run at a time; a second waits for none and returns {}).
    Returns {reason: segments deleted} (and "archived": segments moved)."""
    if not cache.add(RETENTION_LOCK, 1, timeout=max(60, settings.RECORDING_RETENTION_CHECK_SECONDS)):
        log.info("Recording retention already runs elsewhere")
        return {}
    try:
        return _retention(now or timezone.now(), disk_usage, recording_retention())
    finally:
        cache.delete(RETENTION_LOCK)


def recordings_archive(*, now: datetime) -> int:
    """Move footage older than RECORDING_ARCHIVE_AFTER_HOURS from the fast folder to the archive folder
    (RECORDING_ARCHIVE_DIR, when set): copied, the row switched to the archive tier, then the fast file
    removed; it stays playable throughout. Safe to run twice. Returns the segments moved."""
    roots = tier_roots()
    if ARCHIVE not in roots:
        return 0
    cutoff = now - timedelta(hours=settings.RECORDING_ARCHIVE_AFTER_HOURS)
    moved = 0
    batch = max(1, settings.RECORDING_RETENTION_BATCH)
    while True:
        rows = list(Segment.objects.filter(tier=FAST, end__lt=cutoff).order_by("start", "id")
                    .values_list("id", "path")[:batch])
        for pk, path in rows:
            source, dest = segment_file(FAST, path), segment_file(ARCHIVE, path)
            if source is None or dest is None:
                continue
            try:
                if source.exists():
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    part = dest.with_name(dest.name + ".part")
                    shutil.copyfile(source, part)
                    os.replace(part, dest)
                elif not dest.exists():  # gone from both: the row has nothing to point at
                    Segment.objects.filter(pk=pk, tier=FAST).delete()
                    continue
            except OSError as exc:
                log.warning("Recording %s cannot be archived: %s", source, exc)
                return moved
            if Segment.objects.filter(pk=pk, tier=FAST).update(tier=ARCHIVE):
                moved += 1
            source.unlink(missing_ok=True)
        if len(rows) < batch:
            return moved


def _retention(now: datetime, disk_usage, rules: RecordingRetention) -> dict[str, int]:
    tally, sizes = Counter(), Counter()
    archived = recordings_archive(now=now)
    if archived:
        tally["archived"] = archived
    free = segments_with_rules().filter(protected=False)
    for mode, days in ((Camera.RecordMode.CONTINUOUS, rules.days_continuous),
                       (Camera.RecordMode.MOTION, rules.days_motion),
                       (Camera.RecordMode.EVENTS, rules.days_events)):
        if days > 0:
            _delete(free.filter(mode=mode, end__lt=now - timedelta(days=days)), DeletionCount.Reason.AGE, tally, sizes)
    grace = now - timedelta(minutes=settings.RECORDING_UNMARKED_KEEP_MINUTES)
    _delete(free.filter(mode=Camera.RecordMode.MOTION, has_motion=False, has_objects=False, eventful=False,
                        end__lt=grace),
            DeletionCount.Reason.NO_MOTION, tally, sizes)
    _delete(free.filter(mode=Camera.RecordMode.EVENTS, eventful=False, end__lt=grace),
            DeletionCount.Reason.NO_EVENT, tally, sizes)
    for tier, root in tier_roots().items():
        in_tier = free.filter(tier=tier)
        if rules.max_gb > 0:
            total = Segment.objects.filter(tier=tier).aggregate(total=Sum("size"))["total"] or 0
            over = total - int(rules.max_gb * GB)
            if over > 0:
                freed = _delete(in_tier, DeletionCount.Reason.SIZE, tally, sizes, need_bytes=over)
                if freed < over:
                    log.warning("Recordings in %s stay %d bytes over their size cap: the rest is protected "
                                "(footage of open, unresolved or kept events)", root, over - freed)
        if rules.min_free_gb > 0:
            root.mkdir(parents=True, exist_ok=True)
            short = int(rules.min_free_gb * GB) - disk_usage(root).free
            if short > 0:
                freed = _delete(in_tier, DeletionCount.Reason.FREE_SPACE, tally, sizes, need_bytes=short)
                if freed < short:
                    log.warning("The disk of %s stays under its free-space floor: nothing more may be deleted", root)
    for reason, segments in tally.items():
        if reason != "archived":
            _count(reason, segments, sizes[reason])
    if tally:
        log.info("Recording retention deleted %s", dict(tally))
    return dict(tally)


# -- exports (POST /api/v1/exports/; docs/recordings.md "Export") ------------------------------------------------
EXPORT_LOCK = "recordings:export:{}"
#: The live message of an export, sent to its owner's user group (cameras/consumers.py ``recording_export``).
EXPORT_MESSAGE_TYPE = "recording.export"


def export_create(*, user, camera_ids: list[int], since: datetime, until: datetime) -> Export:
    """Store an export of ``camera_ids`` between ``since`` and ``until`` and queue its task after commit. The caller
    checked the permission and the limits (the API's serializer). Audited (``recordings.export``)."""
    with transaction.atomic():
        export = Export.objects.create(
            user=user, since=since, until=until,
            expires_at=timezone.now() + timedelta(hours=settings.RECORDING_EXPORT_EXPIRY_HOURS))
        export.cameras.set(camera_ids)
        audit_record(actor=user, action="recordings.export", target=export, camera_id=camera_ids[0],
                     details={"cameras": len(camera_ids), "seconds": int((until - since).total_seconds())})
        export_id = str(export.pk)
        transaction.on_commit(lambda: _queue_export(export_id))
    return export


def _queue_export(export_id: str) -> None:
    from .tasks import recordings_export

    recordings_export.delay(export_id)


def export_message(export: Export) -> dict:
    """What the WebSocket says about an export (docs/websocket.md "export"): its state, not its files' URLs."""
    return {"type": "export", "export": str(export.pk), "status": export.status,
            "progress": round(export.progress, 4), "message": export.message, "size": export.size,
            "cameras": [f["camera"] for f in export.files or []] if export.status == Export.Status.DONE else []}


def export_broadcast(*, user_id: int, message: dict) -> None:
    """Push an export's state (``export_message``) to its owner's open WebSockets. Never raises: the database has
    the truth."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from cameras.groups import user_group

    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(user_group(user_id), {"type": EXPORT_MESSAGE_TYPE, "export": message})
    except Exception:
        log.exception("Live push of export %s failed", message.get("export"))


def _export_save(export: Export, **fields) -> None:
    """Store some fields of a running export and push its state as it is now, after commit (in the task: at once)."""
    for name, value in fields.items():
        setattr(export, name, value)
    Export.objects.filter(pk=export.pk).update(updated_at=timezone.now(), **fields)
    user_id, message = export.user_id, export_message(export)
    transaction.on_commit(lambda: export_broadcast(user_id=user_id, message=message))


def _pieces(segments: list[Segment], since: datetime, until: datetime) -> tuple[list, float, float, int]:
    """(files, offset into the first, seconds kept, files missing) of a camera's segments in the range."""
    files, kept, missing, offset = [], 0.0, 0, 0.0
    for segment in segments:
        file = segment_file(segment.tier, segment.path)
        if file is None or not file.is_file():
            missing += 1
            continue
        if not files:
            offset = max(0.0, (since - segment.start).total_seconds())
        files.append(file)
        kept += max(0.0, (min(segment.end, until) - max(segment.start, since)).total_seconds())
    return files, offset, kept, missing


def export_run(export_id) -> str:
    """Make the export's files: per camera, its segments in the range joined into one MP4, copied when they share
    one codec of RECORDING_COPY_CODECS (ffmpeg's concat demuxer, ``-c copy``; gaps between segments are left out),
    else encoded to H.264 (or when the copy fails); trimmed to the range. Progress stored and pushed as it goes. Safe to run twice: a finished
    export is left alone, and one run at a time works on an export. Returns the final status."""
    if not cache.add(EXPORT_LOCK.format(export_id), 1, timeout=int(settings.RECORDING_EXPORT_TIMEOUT_SECONDS) + 60):
        log.info("Export %s already runs elsewhere", export_id)
        return "busy"
    try:
        export = Export.objects.filter(pk=export_id).first()
        if export is None or export.status in (Export.Status.DONE, Export.Status.FAILED):
            return export.status if export else "gone"
        try:
            return _export_run(export)
        except Exception as exc:  # never leave it "running" for ever
            log.exception("Export %s failed", export_id)
            _export_save(export, status=Export.Status.FAILED, message=f"{type(exc).__name__}: {exc}"[:1000],
                         expires_at=timezone.now() + timedelta(hours=settings.RECORDING_EXPORT_EXPIRY_HOURS))
            return Export.Status.FAILED
    finally:
        cache.delete(EXPORT_LOCK.format(export_id))


def _export_run(export: Export) -> str:
    from django.utils.translation import gettext as _

    _export_save(export, status=Export.Status.RUNNING, progress=0.0, message="")
    folder = export_folder(export.pk)
    folder.mkdir(parents=True, exist_ok=True)
    camera_ids = sorted(export.cameras.values_list("id", flat=True))
    files, notes, last_push = [], [], [0.0]
    for n, camera_id in enumerate(camera_ids):
        segments = segments_in_range(camera_id=camera_id, since=export.since, until=export.until)
        sources, offset, kept, missing = _pieces(segments, export.since, export.until)
        if missing:
            notes.append(_("camera %(camera)s: %(n)d segment files are missing") % {"camera": camera_id, "n": missing})
        if not sources or kept <= 0:
            notes.append(_("camera %(camera)s: no recorded footage in the range") % {"camera": camera_id})
            continue
        name = f"camera-{camera_id}-{export.since:%Y%m%dT%H%M%SZ}-{export.until:%Y%m%dT%H%M%SZ}.mp4"
        listing, part = folder / f"{camera_id}.txt", folder / f"{name}.part"
        listing.write_text(concat.concat_list(sources))

        def progress(fraction, n=n):
            now = time.monotonic()
            if now - last_push[0] >= settings.RECORDING_EXPORT_PROGRESS_SECONDS:
                last_push[0] = now
                _export_save(export, progress=round((n + fraction) / len(camera_ids), 4))

        codecs = {s.codec for s in segments}  # copied when one codec that recording copies (H.264), else encoded
        copy = len(codecs) == 1 and codecs <= set(settings.RECORDING_COPY_CODECS)
        whole = sum((s.end - s.start).total_seconds() for s in segments)  # what the copy's join run goes through
        ok, copy, error = concat.join(
            ffmpeg=settings.FFMPEG_BINARY, listing=listing, output=part, offset=offset, duration=kept, copy=copy,
            whole=whole, preset=settings.RECORDING_ENCODE_PRESET, crf=settings.RECORDING_ENCODE_CRF,
            timeout=settings.RECORDING_EXPORT_TIMEOUT_SECONDS, on_progress=progress,
            on_failure=lambda copied, error: log.warning("Export %s, camera %s: ffmpeg (%s) failed: %s", export.pk,
                                                         camera_id, "copy" if copied else "encode", error))
        listing.unlink(missing_ok=True)
        if not ok:
            part.unlink(missing_ok=True)
            notes.append(_("camera %(camera)s: ffmpeg failed: %(error)s") % {"camera": camera_id, "error": error[-200:]})
            continue
        os.replace(part, folder / name)
        probed = concat.probe(folder / name, ffprobe=settings.FFPROBE_BINARY)
        files.append({"camera": camera_id, "name": name, "size": (folder / name).stat().st_size,
                      "duration": round(probed.get("duration") or kept, 3), "copied": copy})
    expires = timezone.now() + timedelta(hours=settings.RECORDING_EXPORT_EXPIRY_HOURS)
    if not files:
        shutil.rmtree(folder, ignore_errors=True)
        _export_save(export, status=Export.Status.FAILED, progress=1.0, expires_at=expires, files=[], size=0,
                     message="; ".join(notes) or _("No recorded footage of these cameras in that range."))
        return Export.Status.FAILED
    _export_save(export, status=Export.Status.DONE, progress=1.0, files=files, size=sum(f["size"] for f in files),
                 expires_at=expires, message="; ".join(notes))
    return Export.Status.DONE


def exports_expire(*, now: datetime | None = None) -> int:
    """Beat: delete the exports past their ``expires_at`` (the folder first, then the row), and those stuck
    queued or running for longer than RECORDING_EXPORT_TIMEOUT_SECONDS past it. Safe to run twice (a missing folder
    is not an error). Returns the exports deleted."""
    now = now or timezone.now()
    stuck = now - timedelta(seconds=settings.RECORDING_EXPORT_TIMEOUT_SECONDS)
    due = Export.objects.filter(expires_at__lt=now).filter(
        Q(status__in=[Export.Status.DONE, Export.Status.FAILED]) | Q(updated_at__lt=stuck))
    deleted = 0
    for pk in list(due.values_list("pk", flat=True)[:1000]):
        shutil.rmtree(export_folder(pk), ignore_errors=True)
        deleted += Export.objects.filter(pk=pk).delete()[1].get(Export._meta.label, 0)
    if deleted:
        log.info("Deleted %d expired recording exports", deleted)
    return deleted


# -- event clips cut from the recording (docs/recordings.md "Event clips") ----------------------------------------
EVENT_CLIP_LOCK = "recordings:event-clip:{}"
#: Set when an event's cut is queued, so that the later batches that store the same event do not queue it again.
EVENT_CLIP_QUEUED = "recordings:event-clip-queued:{}"


def event_clip_window(event) -> tuple[datetime, datetime]:
    """[CLIP_PRE_SECONDS before the event opened, CLIP_POST_SECONDS after it closed], at most CLIP_MAX_SECONDS."""
    since = event.started_at - timedelta(seconds=settings.CLIP_PRE_SECONDS)
    until = (event.ended_at or event.started_at) + timedelta(seconds=settings.CLIP_POST_SECONDS)
    return since, min(until, since + timedelta(seconds=settings.CLIP_MAX_SECONDS))


def event_clip_from_recording(event_id, *, now: datetime | None = None) -> str:
    """Cut a closed event's clip again from its camera's recording and put it in place of the encoded one.

    The clip runs over ``event_clip_window``; it is copied without re-encoding where the segments share one codec
    of RECORDING_COPY_CODECS (H.264: the camera's own resolution and frame rate), else encoded (H.264). The file
    keeps the event's clip name (``event.clip``), replaced at once when the cut is complete, so nothing stored
    changes and a kept event's clip stays kept. Returns what happened: ``done``; ``wait`` while the recording does
    not yet reach the window's end (until CLIP_RECORDING_WAIT_SECONDS past it; the caller asks again later);
    ``no_footage``; ``skip`` (no event, still open, no MP4 clip to replace, or the camera does not record);
    ``busy`` (another run works on it); ``failed`` (ffmpeg failed: the encoded clip stays). Safe to run twice."""
    now = now or timezone.now()
    event = AnomalyEvent.objects.filter(pk=event_id).only("id", "camera_id", "started_at", "ended_at", "clip").first()
    if event is None or event.ended_at is None or not event.clip.name.lower().endswith(".mp4"):
        return "skip"
    since, until = event_clip_window(event)
    segments = segments_in_range(camera_id=event.camera_id, since=since, until=until)
    covered = bool(segments) and max(s.end for s in segments) >= until - timedelta(seconds=0.5)
    if not covered and now < until + timedelta(seconds=settings.CLIP_RECORDING_WAIT_SECONDS):
        return "wait"
    files, offset, kept, _missing = _pieces(segments, since, until)
    if not files or kept < 1.0:
        return "no_footage"
    if not cache.add(EVENT_CLIP_LOCK.format(event.pk), 1, timeout=int(settings.CLIP_ENCODE_TIMEOUT_SECONDS) + 60):
        return "busy"
    try:
        target = Path(event.clip.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        part, listing = target.with_name(f"{event.pk}.rec.part.mp4"), target.with_name(f"{event.pk}.rec.txt")
        listing.write_text(concat.concat_list(files))
        codecs = {s.codec for s in segments}
        copy = len(codecs) == 1 and codecs <= set(settings.RECORDING_COPY_CODECS)
        try:
            ok, copied, error = concat.join(
                ffmpeg=settings.FFMPEG_BINARY, listing=listing, output=part, offset=offset, duration=kept, copy=copy,
                whole=kept, preset=settings.CLIP_ENCODE_PRESET, crf=settings.CLIP_ENCODE_CRF,
                timeout=settings.CLIP_ENCODE_TIMEOUT_SECONDS)
        finally:
            listing.unlink(missing_ok=True)
        if not ok:
            part.unlink(missing_ok=True)
            log.warning("Event %s: its clip could not be cut from the recording (the encoded clip stays): %s",
                        event.pk, error)
            return "failed"
        os.replace(part, target)
        log.info("Event %s: clip cut from the recording (%.1f s%s)", event.pk, kept, ", copied" if copied else "")
        return "done"
    finally:
        cache.delete(EVENT_CLIP_LOCK.format(event.pk))


def event_clips_to_cut(event_ids) -> list[tuple[str, float]]:
    """Of the events just stored, those whose clip should now be cut from the recording: closed, with an MP4 clip,
    of a camera that records, not queued before (``EVENT_CLIP_QUEUED``, a day). Returns (event id, seconds to wait
    until the recording may reach the window's end: CLIP_POST_SECONDS and a segment past the close)."""
    if not settings.CLIP_FROM_RECORDING or not event_ids:
        return []
    rows = (AnomalyEvent.objects.filter(pk__in=list(event_ids), ended_at__isnull=False, clip__iendswith=".mp4")
            .exclude(camera__record_mode=Camera.RecordMode.OFF).values_list("pk", "ended_at"))
    now, due = timezone.now(), []
    for pk, ended_at in rows:
        if cache.add(EVENT_CLIP_QUEUED.format(pk), 1, timeout=86400):
            wait = (ended_at - now).total_seconds() + settings.CLIP_POST_SECONDS + settings.RECORDING_SEGMENT_SECONDS + 2
            due.append((str(pk), max(1.0, wait)))
    return due
