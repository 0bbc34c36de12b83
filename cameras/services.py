"""Camera workflows: create, change, start, stop, and the live state the worker reports."""

from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from .models import Camera

CREATOR_PERMS = ("view_camera", "operate_camera", "change_camera", "delete_camera")


def camera_create(*, by, **fields) -> Camera:
    camera = Camera(**fields)
    camera.full_clean()
    with transaction.atomic():
        camera.save()
        if by is not None:
            for perm in CREATOR_PERMS:
                assign_perm(perm, by, camera)
        if camera.enabled:
            _dispatch_on_commit(camera)
    return camera


def camera_update(*, camera: Camera, by, **fields) -> Camera:
    for name, value in fields.items():
        setattr(camera, name, value)
    camera.full_clean()
    with transaction.atomic():
        camera.save()
    # A running camera's worker notices the changed settings on its next heartbeat and restarts it.
    return camera


def camera_delete(*, camera: Camera, by) -> None:
    camera.delete()


def camera_start(*, camera: Camera, by) -> Camera:
    with transaction.atomic():
        camera = Camera.objects.select_for_update().get(pk=camera.pk)
        camera.enabled = True
        if camera.state in (Camera.State.STOPPED, Camera.State.ERROR):
            camera.state = Camera.State.STARTING
            camera.state_changed_at = timezone.now()
            camera.last_error = ""
        camera.save(update_fields=["enabled", "state", "state_changed_at", "last_error", "updated_at"])
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
