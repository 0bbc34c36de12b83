"""Camera workflows: create, change, delete, start, stop, and re-queue cameras whose worker went quiet.

The worker's live state is cameras/live_state.py; learning what is normal, cameras/learning.py.
"""

import copy
import logging
import shutil
import time
from datetime import timedelta

import redis

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from audit.services import audit_record
from inference.base import EpisodeSummary, VLMAnswer
from inference.openai_chat import keep_secrets
from siteconfig.selectors import WHERE, model_server_networks

from . import dispatch
from .learning import detector_state_dir
from .backends import resolve
from .models import Area, Camera
from .selectors import camera_current_picture, cameras_needing_dispatch

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
    "event_close_seconds", "vlm_backend", "vlm_model_path", "vlm_params", "vlm_prompt", "agent_policy",
    "agent_params", "health_params", "record_mode", "area",
)
#: Parameters that may hold a model server's API key: shown as ***, and *** sent back keeps the stored key.
SECRET_PARAM_FIELDS = ("vlm_params", "agent_params")


def camera_update(*, camera: Camera, by, **fields) -> Camera:
    """Change the camera's settings: only the fields given that differ from ``camera`` (what the editor saw).

    Only those columns are written, on the row as it is now: a claim, a state report or a learned
    detector version written since ``camera`` was read is kept. Returns the camera as stored.
    """
    unknown = sorted(set(fields) - set(EDITABLE_FIELDS))
    if unknown:
        raise TypeError(f"camera_update changes settings only, not {unknown}")
    for name in SECRET_PARAM_FIELDS:
        if name in fields:
            fields[name] = keep_secrets(fields[name], getattr(camera, name))
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


# -- areas: cameras a site groups together (their events make incidents: events.services.incidents_attach) -----
AREA_FIELDS = ("name", "description", "incident_window_seconds")


def area_create(*, by, **fields) -> Area:
    unknown = sorted(set(fields) - set(AREA_FIELDS))
    if unknown:
        raise TypeError(f"area_create takes {AREA_FIELDS}, not {unknown}")
    area = Area(**fields)
    area.full_clean()
    with transaction.atomic():
        area.save()
        audit_record(actor=by, action="area.create", target=area, changes=list(fields))
    return area


def area_update(*, area: Area, by, **fields) -> Area:
    """Change the given fields of the area (a shorter window applies to the events stored from now on)."""
    unknown = sorted(set(fields) - set(AREA_FIELDS))
    if unknown:
        raise TypeError(f"area_update takes {AREA_FIELDS}, not {unknown}")
    changed = [name for name, value in fields.items() if getattr(area, name) != value]
    for name in changed:
        setattr(area, name, fields[name])
    area.full_clean()
    if changed:
        with transaction.atomic():
            area.save(update_fields=[*changed, "updated_at"])
            audit_record(actor=by, action="area.update", target=area, changes=changed)
    return area


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




#: The episode the agent test decides about (a person down, described by the VLM).
TEST_EPISODE = {"peak_score": 0.92, "mean_score": 0.71, "duration": 8.0,
                "summary": "A person is lying on the ground near the entrance and does not move.",
                "threat_level": "high", "objects": ["person"]}


def camera_model_test(*, camera: Camera, which: str, by) -> dict:
    """Send one real request to the camera's model server and say what came back and how long it took.

    ``which``: "vlm" (the camera's current picture with its prompt) or "agent" (a sample episode, a
    person down). ValidationError when the camera does not use a model server for it, its parameters
    are incomplete, or (VLM) it has no current picture. The server's failure is an answer, not an error.
    """
    if which not in ("vlm", "agent"):
        raise ValidationError({"which": 'Either "vlm" or "agent".'})
    field, backend = ("vlm_params", camera.vlm_backend) if which == "vlm" else ("agent_params", camera.agent_policy)
    if backend != "openai":
        raise ValidationError({"which": f'The camera\'s {"VLM backend" if which == "vlm" else "agent policy"} is '
                                        f'"{backend}", not "openai": only a model server can be tested from here.'})
    config = {**camera.model_server_params(field), "allowed_networks": model_server_networks,
              "networks_where": WHERE["model server"]}
    try:
        model = resolve("vlm" if which == "vlm" else "agent", "openai")(**config)
    except ValueError as exc:
        raise ValidationError({field: f"{exc}; or set the site's default server in Site settings"}) from None
    started = time.monotonic()
    result = {"which": which, "base_url": model.client.base_url, "model": model.client.model}
    if which == "vlm":
        try:
            picture = camera_current_picture(camera)
        except redis.RedisError:
            picture = None
        if picture is None:
            raise ValidationError({"which": f"Camera '{camera.name}' has no current picture ({camera.state}): start it, "
                                            "the test sends the picture it sees now."})
        answer = model.describe_frames([picture["jpeg"]], camera.vlm_prompt)
        result.update(ok=answer is not None, error=model.last_error if answer is None else "",
                      summary=answer.summary if answer else "", threat_level=answer.threat_level if answer else None,
                      objects=answer.objects if answer else [])
    else:
        episode = EpisodeSummary(
            peak_score=TEST_EPISODE["peak_score"], mean_score=TEST_EPISODE["mean_score"],
            duration=TEST_EPISODE["duration"], threshold=camera.threshold,
            answer=VLMAnswer(summary=TEST_EPISODE["summary"], threat_level=TEST_EPISODE["threat_level"],
                             objects=TEST_EPISODE["objects"]))
        decision = model.decide(episode)
        answered = decision.policy == "openai"
        result.update(ok=answered, error="" if answered else decision.reasons[0],
                      severity=decision.severity, actions=decision.actions, reasons=decision.reasons)
    result["seconds"] = round(time.monotonic() - started, 3)
    audit_record(actor=by, action="camera.model_test", target=camera, details={"which": which, "ok": result["ok"]})
    return result
