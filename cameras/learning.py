"""Learning what is normal per camera (docs/detection.md): jobs, their state machine, detector versions.

The web side starts jobs (the camera page, the API, a false alarm) and restores versions; the
runtime's ``detector_learn`` task claims a job, reports progress and finishes or fails it here.
"""

import logging
import math
import os
import shutil
from datetime import timedelta
from pathlib import Path

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit.services import audit_record

from . import dispatch, uploads
from .backends import resolve
from .groups import camera_group
from .models import Camera, DetectorVersion, LearningJob, detector_state_root, health_state_file

log = logging.getLogger(__name__)


class LearningBusy(Exception):
    """Another learning job of the camera is queued or running (the API answers 409)."""


def learning_start(*, camera: Camera, by, minutes=None, clips=None, mode: str = LearningJob.Mode.FRESH) -> LearningJob:
    """Queue "learn what is normal now": ``minutes`` of the camera's own footage, or uploaded ``clips``.

    ``clips`` are uploaded files (``name``, ``size``, ``chunks()``); each is stored and must be a
    video OpenCV can read. ``mode`` "refit" refines the active learned state instead of starting
    afresh. ValidationError names the problem; LearningBusy when a job is already queued or running.
    """
    clips = list(clips or [])
    if mode not in LearningJob.Mode.values:
        raise ValidationError({"mode": f"Unknown mode '{mode}'. Use 'fresh' or 'refit'."})
    if (minutes is None) == (not clips):
        raise ValidationError({"minutes": "Give either 'minutes' (learn from the camera's own footage) "
                                          "or 'clips' (upload normal footage), not both or neither."})
    _check_detector_learns(camera.detector, "fit", "footage", "minutes" if clips == [] else "clips")
    if mode == LearningJob.Mode.REFIT and not camera.active_detector_state_path():
        raise ValidationError({"mode": f"The camera has no learned state for detector '{camera.detector}' to "
                                       "refine: use mode 'fresh'."})
    if minutes is not None:
        minutes = _check_minutes(minutes)
    else:
        uploads.check_upload_sizes(clips)
    _abandon_stale_jobs(camera_id=camera.pk)
    _check_not_busy(camera.pk)
    stored = uploads.store_uploads(camera.pk, clips) if clips else []
    try:
        with transaction.atomic():
            Camera.objects.select_for_update().filter(pk=camera.pk).first()  # one start at a time per camera
            _check_not_busy(camera.pk)
            job = LearningJob.objects.create(
                camera=camera, kind=LearningJob.Kind.UPLOAD if clips else LearningJob.Kind.LIVE, mode=mode,
                minutes=minutes, clips=stored, created_by=by,
                message="Waiting for the inference worker",
            )
            audit_record(actor=by, action="detector.learn", target=camera,
                         details={"job": job.pk, "kind": job.kind, "mode": mode, "clips": len(stored),
                                  **({"minutes": minutes} if minutes is not None else {})})
            _queue_learning(job.pk)
    except BaseException:
        uploads.delete_uploads(stored)
        raise
    return job


def learning_feedback_start(*, event, by=None) -> LearningJob:
    """An operator marked ``event`` a false alarm: its clip teaches the camera's detector that it is normal.

    Skipped (a finished job whose message says why) when the event has no clip or the camera's
    detector does not learn from feedback.
    """
    camera = Camera.objects.get(pk=event.camera_id)
    skip = ""
    if not event.clip:
        skip = "Skipped: the event has no clip to learn from."
    elif not _detector_has(camera.detector, "feedback"):
        skip = f"Skipped: the detector '{camera.detector}' does not learn from operator feedback."
    with transaction.atomic():
        job = LearningJob.objects.create(
            camera=camera, kind=LearningJob.Kind.FEEDBACK, mode=LearningJob.Mode.REFIT, event=event, created_by=by,
            message=skip or "Waiting for the inference worker",
        )
        if skip:
            job.status, job.progress, job.finished_at = LearningJob.Status.DONE, 1.0, timezone.now()
            job.save(update_fields=["status", "progress", "finished_at", "updated_at"])
            transaction.on_commit(lambda: learning_broadcast(job_id=job.pk))
        else:
            _queue_learning(job.pk)
    return job


def learning_job_claim(*, job_id: int, redelivered: bool = False) -> LearningJob | None:
    """The task takes the job: it becomes running. None when it must not run now.

    Not run: the job is gone or finished (a task delivered twice does nothing), it is already
    running (unless the broker redelivered it: its worker died), or another job of the camera is
    running (this one stays queued; the running one queues it when it ends).
    """
    with transaction.atomic():
        job = LearningJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status in (LearningJob.Status.DONE, LearningJob.Status.FAILED):
            return None
        if job.status == LearningJob.Status.RUNNING and not redelivered:
            return None
        Camera.objects.select_for_update().filter(pk=job.camera_id).first()
        if LearningJob.objects.filter(camera_id=job.camera_id, status=LearningJob.Status.RUNNING) \
                .exclude(pk=job.pk).exists():
            return None
        now = timezone.now()
        job.status, job.progress, job.started_at, job.message = LearningJob.Status.RUNNING, 0.0, now, "Starting"
        job.save(update_fields=["status", "progress", "started_at", "message", "updated_at"])
        transaction.on_commit(lambda: learning_broadcast(job_id=job.pk))
    return job


def learning_job_progress(*, job_id: int, progress: float, message: str = "") -> None:
    """Progress of a running job (the task throttles these), pushed live to the camera's viewers."""
    updated = LearningJob.objects.filter(pk=job_id, status=LearningJob.Status.RUNNING).update(
        progress=min(1.0, max(0.0, float(progress))), message=message[:500], updated_at=timezone.now())
    if updated:
        transaction.on_commit(lambda: learning_broadcast(job_id=job_id))


def learning_job_finish(*, job_id: int, state_file, frames: int, note: str = "") -> DetectorVersion | None:
    """Store the learned state as the camera's next version and make it active (the camera restarts with it).

    ``state_file`` (written by the task) is moved to ``DATA_DIR/detectors/<camera>/v<number>.json``,
    and the camera health reference learned with it (``health_state_file``, when the task wrote one) to
    ``v<number>.health.json``; a version learned without one (a false alarm's feedback) keeps the
    reference of the version it refines. None when the job or its camera is gone meanwhile (the files
    are removed).
    """
    state_file = Path(state_file)
    health_file = health_state_file(state_file)
    with transaction.atomic():
        job = LearningJob.objects.select_for_update().filter(pk=job_id, status=LearningJob.Status.RUNNING).first()
        camera = Camera.objects.select_for_update().filter(pk=job.camera_id).first() if job else None
        if job is None or camera is None:
            state_file.unlink(missing_ok=True)
            health_file.unlink(missing_ok=True)
            return None
        number = (DetectorVersion.objects.filter(camera=camera).aggregate(n=Max("number"))["n"] or 0) + 1
        relative = Path("detectors") / str(camera.pk) / f"v{number}.json"
        target = settings.DATA_DIR / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(state_file, target)
        previous = camera.active_detector_version if camera.active_detector_version_id else None
        if health_file.is_file():
            os.replace(health_file, health_state_file(target))
        elif previous is not None and previous.health_file.is_file():
            shutil.copyfile(previous.health_file, health_state_file(target))
        base = camera.active_detector_version if job.mode == LearningJob.Mode.REFIT else None
        source = {LearningJob.Kind.LIVE: DetectorVersion.Source.LEARN_LIVE, LearningJob.Kind.UPLOAD:
                  DetectorVersion.Source.UPLOAD, LearningJob.Kind.FEEDBACK: DetectorVersion.Source.FEEDBACK}[job.kind]
        if job.kind == LearningJob.Kind.FEEDBACK and job.event_id:
            note = f"False alarm {job.event_id}: {note}"
        version = DetectorVersion.objects.create(
            camera=camera, number=number, detector=camera.detector, params=camera.detector_params,
            state_path=relative.as_posix(), source=source, based_on=base, frames=frames, note=note[:500],
            created_by=job.created_by,
        )
        camera.active_detector_version = version
        camera.save(update_fields=["active_detector_version", "updated_at"])
        job.status, job.progress, job.version, job.finished_at = LearningJob.Status.DONE, 1.0, version, timezone.now()
        job.message = f"Learned version {number}; the camera now uses it"[:500]
        job.save(update_fields=["status", "progress", "version", "finished_at", "message", "updated_at"])
        _after_job(job)
    # A running camera's worker sees the new state path in its config on the next heartbeat and restarts it.
    return version


def learning_job_fail(*, job_id: int, message: str) -> None:
    """The job failed: nothing stored changes; the message says why."""
    with transaction.atomic():
        job = LearningJob.objects.select_for_update().filter(pk=job_id, status__in=LearningJob.ACTIVE).first()
        if job is None:
            return
        job.status, job.finished_at, job.message = LearningJob.Status.FAILED, timezone.now(), message[:500]
        job.save(update_fields=["status", "finished_at", "message", "updated_at"])
        _after_job(job)


def learning_job_skip(*, job_id: int, message: str) -> None:
    """Nothing to learn (e.g. the false alarm's clip is gone): the job ends without a new version."""
    with transaction.atomic():
        job = LearningJob.objects.select_for_update().filter(pk=job_id, status__in=LearningJob.ACTIVE).first()
        if job is None:
            return
        job.status, job.progress, job.finished_at = LearningJob.Status.DONE, 1.0, timezone.now()
        job.message = message[:500]
        job.save(update_fields=["status", "progress", "finished_at", "message", "updated_at"])
        _after_job(job)


def detector_version_restore(*, camera: Camera, version: DetectorVersion, by) -> DetectorVersion:
    """Make an earlier learned state active again, recorded as a new version ("restore")."""
    if version.camera_id != camera.pk:
        raise ValidationError({"version": f"Version {version.number} belongs to another camera."})
    if version.detector != camera.detector:
        raise ValidationError({"version": f"Version {version.number} was learned for detector '{version.detector}'; "
                                          f"the camera uses '{camera.detector}'."})
    if not version.state_file.is_file():
        raise ValidationError({"version": f"The learned state of version {version.number} is missing "
                                          f"({version.state_path})."})
    with transaction.atomic():
        camera = Camera.objects.select_for_update().get(pk=camera.pk)
        number = (DetectorVersion.objects.filter(camera=camera).aggregate(n=Max("number"))["n"] or 0) + 1
        restored = DetectorVersion.objects.create(
            camera=camera, number=number, detector=version.detector, params=version.params,
            state_path=version.state_path, source=DetectorVersion.Source.RESTORE, based_on=version,
            frames=version.frames, note=f"Restored version {version.number}", created_by=by,
        )
        camera.active_detector_version = restored
        camera.save(update_fields=["active_detector_version", "updated_at"])
        audit_record(actor=by, action="detector.restore", target=camera,
                     changes=["active_detector_version"],
                     details={"restored_version": version.number, "new_version": restored.number})
    return restored


def learning_message(job: LearningJob) -> dict:
    """The live "learning" message of a job (docs/websocket.md)."""
    return {
        "type": "learning", "camera": job.camera_id, "job": job.pk, "kind": job.kind, "status": job.status,
        "progress": round(job.progress, 4), "message": job.message,
        "version": job.version.number if job.version_id else None,
    }


def learning_broadcast(*, job_id: int) -> None:
    """Push a job's state to its camera's live group. Never raises: the database has the truth."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        job = LearningJob.objects.select_related("version").filter(pk=job_id).first()
        if job is not None:
            async_to_sync(layer.group_send)(camera_group(job.camera_id),
                                            {"type": "camera.learning", "learning": learning_message(job)})
    except Exception:
        log.exception("Live push of learning job %s failed", job_id)


def _after_job(job: LearningJob) -> None:
    """A job ended: push it, drop its uploads, and start the camera's next queued job."""
    camera_id, job_id, clips = job.camera_id, job.pk, list(job.clips or [])
    transaction.on_commit(lambda: learning_broadcast(job_id=job_id))
    transaction.on_commit(lambda: uploads.delete_uploads(clips))
    following = LearningJob.objects.filter(camera_id=camera_id, status=LearningJob.Status.QUEUED) \
        .exclude(pk=job_id).order_by("created_at", "id").values_list("id", flat=True).first()
    if following:
        _queue_learning(following)


def _queue_learning(job_id: int) -> None:
    transaction.on_commit(lambda: learning_broadcast(job_id=job_id))
    transaction.on_commit(lambda: dispatch.detector_learn(job_id))


def _detector_has(name: str, method: str) -> bool:
    try:
        return callable(getattr(resolve("detector", name), method, None))
    except (ValueError, ImportError):
        return False


def _check_detector_learns(name: str, method: str, what: str, field: str) -> None:
    if not _detector_has(name, method):
        raise ValidationError({field: f"The camera's detector '{name}' does not learn from {what}."})


def _check_minutes(minutes) -> float:
    low, high = settings.LEARN_MINUTES_MIN, settings.LEARN_MINUTES_MAX
    try:
        value = float(minutes)
    except (TypeError, ValueError):
        raise ValidationError({"minutes": f"'minutes' must be a number, not {str(minutes)[:40]!r}."}) from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ValidationError({"minutes": f"'minutes' must be between {low:g} and {high:g}."})
    return value


def _check_not_busy(camera_id: int) -> None:
    busy = LearningJob.objects.filter(camera_id=camera_id, status__in=LearningJob.ACTIVE,
                                      kind__in=(LearningJob.Kind.LIVE, LearningJob.Kind.UPLOAD)).first()
    if busy is not None:
        raise LearningBusy(f"Learning job {busy.pk} of this camera is already {busy.status}; "
                           "wait for it to finish.")


def _abandon_stale_jobs(*, camera_id: int) -> None:
    """Jobs with no progress for LEARN_STALE_MINUTES (their worker died unnoticed) are marked failed."""
    minutes = settings.LEARN_STALE_MINUTES
    now = timezone.now()
    LearningJob.objects.filter(camera_id=camera_id, status__in=LearningJob.ACTIVE,
                               updated_at__lt=now - timedelta(minutes=minutes)).update(
        status=LearningJob.Status.FAILED, finished_at=now, updated_at=now,
        message=f"Abandoned: no progress for {minutes:g} minutes (the inference worker stopped?)")


def detector_state_dir(camera_id: int) -> Path:
    """Where a camera's learned states and the task's work files go."""
    return detector_state_root() / str(int(camera_id))
