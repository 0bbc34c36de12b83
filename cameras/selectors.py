"""Reads of cameras, with the permission filtering shared by API, pages, consumers and tasks."""

import time
from pathlib import Path

from django.conf import settings
from django.db.models import Q, QuerySet
from guardian.core import ObjectPermissionChecker
from guardian.shortcuts import get_objects_for_user

from . import live
from .models import Area, Camera, DetectorVersion, LearningJob

PICTURE_POLL_SECONDS = 0.2

VIEW = "cameras.view_camera"
OPERATE = "cameras.operate_camera"
CHANGE = "cameras.change_camera"


def camera_list_for_user(user, perm: str = VIEW) -> QuerySet:
    """Cameras on which the user holds ``perm`` (directly, through a group, or as staff)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Camera.objects.none()
    if user.is_staff:
        return Camera.objects.all()
    return get_objects_for_user(user, perm, klass=Camera, accept_global_perms=True)


def camera_ids_for_user(user, perm: str = VIEW) -> set[int]:
    return set(camera_list_for_user(user, perm).values_list("id", flat=True))


def user_has_camera_perm(user, perm: str, camera: Camera) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return user.is_staff or user.has_perm(perm, camera) or user.has_perm(perm)


def camera_perms_for_user(user, camera: Camera) -> set[str]:
    """Every camera permission (``VIEW``, ``OPERATE``, ``CHANGE``) the user holds on ``camera``, read at once
    (one object-permission lookup for a page that needs several answers)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    if user.is_staff:
        return {VIEW, OPERATE, CHANGE}
    held = {f"cameras.{codename}" for codename in ObjectPermissionChecker(user).get_perms(camera)}
    return {perm for perm in (VIEW, OPERATE, CHANGE) if perm in held or user.has_perm(perm)}


def camera_get_for_user(user, camera_id) -> Camera | None:
    """The camera if the user may view it, else None (callers answer 404: no existence leak)."""
    try:
        camera_id = int(camera_id)
    except (TypeError, ValueError):
        return None
    return camera_list_for_user(user, VIEW).filter(pk=camera_id).first()


# -- areas -------------------------------------------------------------------------------------------------
def area_list_for_user(user) -> QuerySet:
    """Areas holding a camera the user may view; staff see every area."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Area.objects.none()
    if user.is_staff:
        return Area.objects.all()
    return Area.objects.filter(pk__in=camera_list_for_user(user).filter(area__isnull=False).values("area_id"))


def area_get_for_user(user, area_id) -> Area | None:
    """The area if the user may see it, else None (callers answer 404 or "no such area": no existence leak)."""
    try:
        area_id = int(area_id)
    except (TypeError, ValueError):
        return None
    return area_list_for_user(user).filter(pk=area_id).first()


def area_camera_ids_for_user(user) -> dict[int, list[int]]:
    """{area id: the ids of its cameras the user may view}, for every area holding one."""
    found: dict[int, list[int]] = {}
    for area_id, camera_id in (camera_list_for_user(user).filter(area__isnull=False)
                               .order_by("id").values_list("area_id", "id")):
        found.setdefault(area_id, []).append(camera_id)
    return found


def cameras_needing_dispatch(*, stale_before) -> QuerySet:
    """Enabled cameras whose worker heartbeat is missing or older than ``stale_before``."""
    return Camera.objects.filter(enabled=True).filter(Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale_before))


# -- learning what is normal ------------------------------------------------------------------------------
def detector_versions_for_camera(camera: Camera) -> QuerySet:
    """The camera's learned versions, newest first (callers check the permission on ``camera``)."""
    return DetectorVersion.objects.filter(camera=camera).select_related("created_by", "based_on") \
        .order_by("-number")


def learning_jobs_for_camera(camera: Camera) -> QuerySet:
    """The camera's learning jobs, newest first (callers check the permission on ``camera``)."""
    return LearningJob.objects.filter(camera=camera).select_related("created_by", "version") \
        .order_by("-created_at", "-id")


def feedback_job_for_event(*, event_id) -> LearningJob | None:
    """The feedback job started by marking this event a false alarm, if any."""
    return LearningJob.objects.filter(event_id=event_id, kind=LearningJob.Kind.FEEDBACK).order_by("id").first()


def learning_panel(camera: Camera, *, versions: int = 10) -> dict:
    """What the camera page's learning controls show: the latest job and the newest versions."""
    return {
        "job": learning_jobs_for_camera(camera).first(),
        "versions": list(detector_versions_for_camera(camera)[:versions]),
        "active_id": camera.active_detector_version_id,
    }


def learning_job_plan(*, job: LearningJob) -> dict:
    """What the learning task needs, as plain values (the runner never sees a model instance).

    ``config``: the camera's runtime config, with ``detector_state_path`` only when the job starts
    from the active learned state (refit, feedback); ``skip``: why there is nothing to learn.
    """
    camera = Camera.objects.select_related("active_detector_version").get(pk=job.camera_id)
    config = camera.runtime_config()
    if job.mode == LearningJob.Mode.FRESH and job.kind != LearningJob.Kind.FEEDBACK:
        config.pop("detector_state_path", None)
    plan = {"config": config, "kind": job.kind, "minutes": job.minutes, "skip": "",
            "clips": [str(settings.DATA_DIR / clip) for clip in job.clips or []]}
    if job.kind == LearningJob.Kind.FEEDBACK:
        event = job.event
        path = Path(settings.MEDIA_ROOT) / event.clip.name if event is not None and event.clip else None
        if path is None or not path.is_file():
            plan["skip"] = "Skipped: the false alarm's clip is gone (deleted by retention?)."
        else:
            plan["clips"] = [str(path)]
    return plan


def camera_current_picture(camera: Camera, *, wait: bool = True) -> dict | None:
    """The camera's current picture (``cameras.live.picture_read``: jpeg, at, width, height), marking it
    wanted; for a camera that runs, the first one within CAMERA_PICTURE_WAIT_SECONDS when ``wait``.
    None when there is none. Raises redis.RedisError when the live store cannot be read."""
    r = live.client()
    picture = live.picture_read(r, camera.pk, want_seconds=settings.CAMERA_PICTURE_WANTED_SECONDS)
    running = camera.enabled and camera.state in (Camera.State.STARTING, Camera.State.RUNNING)
    if picture is not None or not running or not wait:
        return picture
    deadline = time.monotonic() + settings.CAMERA_PICTURE_WAIT_SECONDS
    while picture is None and time.monotonic() < deadline:  # the worker sees the wish within a second
        time.sleep(max(0.0, min(PICTURE_POLL_SECONDS, deadline - time.monotonic())))
        picture = live.picture_read(r, camera.pk)
    return picture
