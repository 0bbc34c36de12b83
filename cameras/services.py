"""Camera workflows: create, change, start, stop, the live state the worker reports, and learning normal."""

import logging
import math
import os
import shutil
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import get_valid_filename
from guardian.shortcuts import assign_perm

from audit.services import audit_record

from .models import Camera, DetectorVersion, LearningJob, detector_state_root

log = logging.getLogger(__name__)

CREATOR_PERMS = ("view_camera", "operate_camera", "change_camera", "delete_camera")


def camera_create(*, by, **fields) -> Camera:
    camera = Camera(**fields)
    camera.full_clean()
    with transaction.atomic():
        camera.save()
        if by is not None:
            for perm in CREATOR_PERMS:
                assign_perm(perm, by, camera)
        audit_record(actor=by, action="camera.create", target=camera,
                     changes=[name for name in fields if name != "id"])
        if camera.enabled:
            _dispatch_on_commit(camera)
    return camera


def camera_update(*, camera: Camera, by, **fields) -> Camera:
    changed = [name for name, value in fields.items() if getattr(camera, name, None) != value]
    for name, value in fields.items():
        setattr(camera, name, value)
    camera.full_clean()
    with transaction.atomic():
        camera.save()
        if changed:
            audit_record(actor=by, action="camera.update", target=camera, changes=changed)
    # A running camera's worker notices the changed settings on its next heartbeat and restarts it.
    return camera


def camera_delete(*, camera: Camera, by) -> None:
    folder = detector_state_dir(camera.pk)
    with transaction.atomic():
        audit_record(actor=by, action="camera.delete", target=camera)
        camera.delete()
        transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))  # its learned states


def camera_start(*, camera: Camera, by) -> Camera:
    with transaction.atomic():
        camera = Camera.objects.select_for_update().get(pk=camera.pk)
        camera.enabled = True
        if camera.state in (Camera.State.STOPPED, Camera.State.ERROR):
            camera.state = Camera.State.STARTING
            camera.state_changed_at = timezone.now()
            camera.last_error = ""
        camera.save(update_fields=["enabled", "state", "state_changed_at", "last_error", "updated_at"])
        audit_record(actor=by, action="camera.start", target=camera)
        _dispatch_on_commit(camera)
    return camera


def camera_stop(*, camera: Camera, by) -> Camera:
    with transaction.atomic():
        camera = Camera.objects.select_for_update().get(pk=camera.pk)
        camera.enabled = False
        camera.state = Camera.State.STOPPED
        camera.state_changed_at = timezone.now()
        camera.measured_fps = 0
        camera.save(update_fields=["enabled", "state", "state_changed_at", "measured_fps", "updated_at"])
        audit_record(actor=by, action="camera.stop", target=camera)
    # The worker running it sees enabled=False on its next heartbeat and stops the loop.
    return camera


def camera_report_live_state(*, camera_id: int, worker: str, **fields) -> bool:
    """Written by the worker running the camera. Never resurrects a stopped camera.

    Returns False when the camera was stopped, deleted or taken by another worker:
    the caller must then stop running it.
    """
    fields.setdefault("heartbeat_at", timezone.now())
    return bool(Camera.objects.filter(pk=camera_id, enabled=True, worker=worker).update(**fields))


def camera_set_state(*, camera_id: int, worker: str, state: str, error: str = "") -> bool:
    """The worker's loop changed state (running, reconnecting, error, stopped)."""
    now = timezone.now()
    return bool(
        Camera.objects.filter(pk=camera_id, enabled=True, worker=worker).exclude(state=state, last_error=error[:500])
        .update(state=state, last_error=error[:500], state_changed_at=now, heartbeat_at=now)
    )


def camera_claim(*, camera_id: int, worker: str) -> dict | None:
    """A worker holding the camera's lease takes it over; returns its runtime config.

    None when the camera is gone or no longer enabled.
    """
    now = timezone.now()
    with transaction.atomic():
        camera = Camera.objects.select_for_update().filter(pk=camera_id, enabled=True).first()
        if camera is None:
            return None
        camera.worker = worker
        camera.heartbeat_at = now
        if camera.state != Camera.State.RUNNING:
            camera.state = Camera.State.STARTING
            camera.state_changed_at = now
        camera.save(update_fields=["worker", "heartbeat_at", "state", "state_changed_at"])
    return camera.runtime_config()


def camera_release(*, camera_id: int, worker: str, state: str = Camera.State.STOPPED, error: str = "") -> None:
    """The worker no longer runs the camera (stopped, or shutting down)."""
    Camera.objects.filter(pk=camera_id, worker=worker).update(
        worker="", state=state, state_changed_at=timezone.now(), measured_fps=0, last_error=error[:500]
    )


def _dispatch_on_commit(camera: Camera) -> None:
    from inference.tasks import camera_run

    camera_id = camera.pk
    transaction.on_commit(lambda: camera_run.delay(camera_id))


def camera_note_unplaced(*, camera_id: int, error: str) -> None:
    """No worker could take the camera; the redispatch task tries again later."""
    Camera.objects.filter(pk=camera_id, enabled=True, worker="").update(last_error=error[:500])


def cameras_redispatch(*, stale_after: float) -> list[int]:
    """Queue a run for every enabled camera whose worker stopped sending heartbeats."""
    from datetime import timedelta

    from .selectors import cameras_needing_dispatch

    stale_before = timezone.now() - timedelta(seconds=stale_after)
    ids = list(cameras_needing_dispatch(stale_before=stale_before).values_list("id", flat=True))
    if ids:
        from inference.tasks import camera_run

        for camera_id in ids:
            transaction.on_commit(lambda camera_id=camera_id: camera_run.delay(camera_id))
    return ids


# -- learning what is normal (docs/detection.md, "Learning normal per camera") ------------------------------
class LearningBusy(Exception):
    """Another learning job of the camera is queued or running (the API answers 409)."""


def uploads_root() -> Path:
    return settings.DATA_DIR / "learning-uploads"


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
        _check_upload_sizes(clips)
    _abandon_stale_jobs(camera_id=camera.pk)
    _check_not_busy(camera.pk)
    stored = _store_uploads(camera.pk, clips) if clips else []
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
        _delete_uploads(stored)
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

    ``state_file`` (written by the task) is moved to ``DATA_DIR/detectors/<camera>/v<number>.json``.
    None when the job or its camera is gone meanwhile (the file is removed).
    """
    state_file = Path(state_file)
    with transaction.atomic():
        job = LearningJob.objects.select_for_update().filter(pk=job_id, status=LearningJob.Status.RUNNING).first()
        camera = Camera.objects.select_for_update().filter(pk=job.camera_id).first() if job else None
        if job is None or camera is None:
            state_file.unlink(missing_ok=True)
            return None
        number = (DetectorVersion.objects.filter(camera=camera).aggregate(n=Max("number"))["n"] or 0) + 1
        relative = Path("detectors") / str(camera.pk) / f"v{number}.json"
        target = settings.DATA_DIR / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(state_file, target)
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
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from .groups import camera_group

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
    transaction.on_commit(lambda: _delete_uploads(clips))
    following = LearningJob.objects.filter(camera_id=camera_id, status=LearningJob.Status.QUEUED) \
        .exclude(pk=job_id).order_by("created_at", "id").values_list("id", flat=True).first()
    if following:
        _queue_learning(following)


def _queue_learning(job_id: int) -> None:
    from inference.tasks import detector_learn

    transaction.on_commit(lambda: learning_broadcast(job_id=job_id))
    transaction.on_commit(lambda: detector_learn.delay(job_id))


def _detector_has(name: str, method: str) -> bool:
    from inference.registry import resolve

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


def _check_upload_sizes(clips) -> None:
    most, cap_mb = settings.LEARN_UPLOAD_MAX_CLIPS, settings.LEARN_UPLOAD_MAX_MB
    if len(clips) > most:
        raise ValidationError({"clips": f"At most {most} clips at a time ({len(clips)} given)."})
    for clip in clips:
        if clip.size > cap_mb * 1024 * 1024:
            raise ValidationError({"clips": f"{clip.name}: {clip.size / 1024 / 1024:.0f} MB is over the "
                                            f"{cap_mb:g} MB limit per clip."})
        if not clip.size:
            raise ValidationError({"clips": f"{clip.name}: the file is empty."})


def _store_uploads(camera_id: int, clips) -> list[str]:
    """Write the uploads under DATA_DIR/learning-uploads/<camera>/<batch>/ and check that each is a readable
    video; relative paths. ValidationError naming the file and the problem (nothing is kept then)."""
    from inference.base import SourceError
    from inference.sources import open_source

    batch = uploads_root() / str(camera_id) / uuid.uuid4().hex
    batch.mkdir(parents=True, exist_ok=True)
    stored = []
    try:
        for i, clip in enumerate(clips):
            original = os.path.basename(clip.name or "") or f"clip {i + 1}"
            path = batch / f"{i + 1:02d}-{get_valid_filename(original) or 'clip'}"
            with open(path, "wb") as out:
                for chunk in clip.chunks():
                    out.write(chunk)
            try:
                with open_source(str(path)) as source:
                    if source.read() is None:
                        raise SourceError("no frame could be decoded")
            except (SourceError, ValueError) as exc:
                problem = str(exc).replace(str(path), original).replace(path.name, original)
                raise ValidationError({"clips": f"{original}: OpenCV cannot read it as a video ({problem})."}) \
                    from None
            stored.append(path.relative_to(settings.DATA_DIR).as_posix())
    except BaseException:
        shutil.rmtree(batch, ignore_errors=True)
        raise
    return stored


def _delete_uploads(clips) -> None:
    root = uploads_root().resolve()
    for folder in {(settings.DATA_DIR / c).parent.resolve() for c in clips}:
        if root in folder.parents:
            shutil.rmtree(folder, ignore_errors=True)


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
