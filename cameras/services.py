"""Camera workflows: create, change, delete, start, stop, and re-queue cameras whose worker went quiet.

The worker's live state is cameras/live_state.py; learning what is normal, cameras/learning.py.
"""

import copy
import logging
import shutil
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from audit.services import audit_record

from . import dispatch
from .learning import detector_state_dir
from .models import Camera
from .selectors import cameras_needing_dispatch

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


#: What an edit may change: the camera's settings. ``enabled`` (start, stop), the live state and the
#: worker's claim (cameras/live_state.py) and the active detector version (cameras/learning.py) have
#: their own services, which write them under the row's lock.
EDITABLE_FIELDS = (
    "name", "source_url", "analysis_fps", "stream_fps", "detector", "detector_params", "zones", "threshold",
    "event_close_seconds", "vlm_backend", "vlm_model_path", "vlm_prompt", "agent_policy", "agent_params",
)


def camera_update(*, camera: Camera, by, **fields) -> Camera:
    """Change the camera's settings: only the fields given that differ from ``camera`` (what the editor saw).

    Only those columns are written, on the row as it is now: a claim, a state report or a learned
    detector version written since ``camera`` was read is kept. Returns the camera as stored.
    """
    unknown = sorted(set(fields) - set(EDITABLE_FIELDS))
    if unknown:
        raise TypeError(f"camera_update changes settings only, not {unknown}")
    changed = [name for name, value in fields.items() if getattr(camera, name) != value]
    candidate = copy.copy(camera)  # the caller's instance stays as it was read
    for name in changed:
        setattr(candidate, name, fields[name])
    candidate.full_clean()  # outside the lock: a source URL's check may resolve its host name
    with transaction.atomic():
        current = Camera.objects.select_for_update().filter(pk=camera.pk).first()
        if current is None:
            raise ValidationError(f"Camera {camera.pk} was deleted meanwhile.")
        changed = [name for name in changed if getattr(current, name) != fields[name]]
        for name in changed:
            setattr(current, name, fields[name])
        if changed:
            current.clean()  # the settings together, as they now are (another edit may have come first)
            current.save(update_fields=[*changed, "updated_at"])
            audit_record(actor=by, action="camera.update", target=current, changes=changed)
    # A running camera's worker notices the changed settings on its next heartbeat and restarts it.
    return current


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


def _dispatch_on_commit(camera: Camera) -> None:
    camera_id = camera.pk
    transaction.on_commit(lambda: dispatch.camera_run(camera_id))


def cameras_redispatch(*, stale_after: float) -> list[int]:
    """Queue a run for every enabled camera whose worker stopped sending heartbeats."""
    stale_before = timezone.now() - timedelta(seconds=stale_after)
    ids = list(cameras_needing_dispatch(stale_before=stale_before).values_list("id", flat=True))
    for camera_id in ids:
        transaction.on_commit(lambda camera_id=camera_id: dispatch.camera_run(camera_id))
    return ids


