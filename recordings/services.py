"""Writing recordings: indexing finished segments (the inference worker), retention (beat)."""

from __future__ import annotations

import logging
import os
import shutil
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError
from django.db.models import F, Sum
from django.utils import timezone

from cameras.models import Camera

from .models import DeletionCount, Segment
from .selectors import event_overlaps, segments_with_rules
from .storage import ARCHIVE, FAST, segment_file, tier_roots

log = logging.getLogger(__name__)

GB = 1024 ** 3
RETENTION_LOCK = "recordings:retention"


def segment_index(*, camera_id: int, start: datetime, end: datetime, path: str, size: int, tier: str = FAST,
                  mode: str = "continuous", codec: str = "", encoded: bool = False,
                  has_motion: bool = False) -> Segment | None:
    """Index a finished segment file (safe to run twice: the same file is indexed once).

    Returns None when the camera no longer exists (the caller deletes the file).
    """
    if not Camera.objects.filter(pk=camera_id).exists():
        return None
    try:
        segment, _created = Segment.objects.get_or_create(tier=tier, path=path, defaults=dict(
            camera_id=camera_id, start=start, end=end, size=int(size), mode=mode, codec=codec[:20],
            encoded=encoded, has_motion=has_motion,
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
    """Delete the footage no rule keeps: by age per mode, then the oldest while a folder is over its size cap
    (RECORDING_MAX_GB) or its disk under its free-space floor (RECORDING_MIN_FREE_GB). Footage of an open or
    unresolved event is never deleted. First, with an archive folder, old footage moves there
    (``recordings_archive``). Safe to run twice (one run at a time; a second waits for none and returns {}).
    Returns {reason: segments deleted} (and "archived": segments moved)."""
    if not cache.add(RETENTION_LOCK, 1, timeout=max(60, settings.RECORDING_RETENTION_CHECK_SECONDS)):
        log.info("Recording retention already runs elsewhere")
        return {}
    try:
        return _retention(now or timezone.now(), disk_usage)
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


def _retention(now: datetime, disk_usage) -> dict[str, int]:
    tally, sizes = Counter(), Counter()
    archived = recordings_archive(now=now)
    if archived:
        tally["archived"] = archived
    free = segments_with_rules().filter(protected=False)
    for mode, days in ((Camera.RecordMode.CONTINUOUS, settings.RECORDING_RETENTION_DAYS_CONTINUOUS),
                       (Camera.RecordMode.MOTION, settings.RECORDING_RETENTION_DAYS_MOTION),
                       (Camera.RecordMode.EVENTS, settings.RECORDING_RETENTION_DAYS_EVENTS)):
        if days > 0:
            _delete(free.filter(mode=mode, end__lt=now - timedelta(days=days)), DeletionCount.Reason.AGE, tally, sizes)
    grace = now - timedelta(minutes=settings.RECORDING_UNMARKED_KEEP_MINUTES)
    _delete(free.filter(mode=Camera.RecordMode.MOTION, has_motion=False, eventful=False, end__lt=grace),
            DeletionCount.Reason.NO_MOTION, tally, sizes)
    _delete(free.filter(mode=Camera.RecordMode.EVENTS, eventful=False, end__lt=grace),
            DeletionCount.Reason.NO_EVENT, tally, sizes)
    for tier, root in tier_roots().items():
        in_tier = free.filter(tier=tier)
        if settings.RECORDING_MAX_GB > 0:
            total = Segment.objects.filter(tier=tier).aggregate(total=Sum("size"))["total"] or 0
            over = total - int(settings.RECORDING_MAX_GB * GB)
            if over > 0:
                freed = _delete(in_tier, DeletionCount.Reason.SIZE, tally, sizes, need_bytes=over)
                if freed < over:
                    log.warning("Recordings in %s stay %d bytes over RECORDING_MAX_GB: the rest is protected "
                                "(footage of open or unresolved events)", root, over - freed)
        if settings.RECORDING_MIN_FREE_GB > 0:
            root.mkdir(parents=True, exist_ok=True)
            short = int(settings.RECORDING_MIN_FREE_GB * GB) - disk_usage(root).free
            if short > 0:
                freed = _delete(in_tier, DeletionCount.Reason.FREE_SPACE, tally, sizes, need_bytes=short)
                if freed < short:
                    log.warning("The disk of %s stays under RECORDING_MIN_FREE_GB: nothing more may be deleted", root)
    for reason, segments in tally.items():
        if reason != "archived":
            _count(reason, segments, sizes[reason])
    if tally:
        log.info("Recording retention deleted %s", dict(tally))
    return dict(tally)
