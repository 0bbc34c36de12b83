"""The worker's side of the camera protocol in the database: claim, report, set state, release.

Only the runtime calls these (runtime/store.py, runtime/callbacks.py, runtime/tasks.py). A worker's
write never resurrects a stopped camera, and only the worker the row names may write its live state.
"""

from django.db import transaction
from django.utils import timezone

from .models import Camera


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


def camera_note_unplaced(*, camera_id: int, error: str) -> None:
    """No worker could take the camera; the redispatch task tries again later."""
    Camera.objects.filter(pk=camera_id, enabled=True, worker="").update(last_error=error[:500])
