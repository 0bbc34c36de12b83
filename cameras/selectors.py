"""Reads of cameras, with the permission filtering shared by API, pages, consumers and tasks."""

from django.db.models import Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from .models import Camera

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


def camera_get_for_user(user, camera_id) -> Camera | None:
    """The camera if the user may view it, else None (callers answer 404: no existence leak)."""
    try:
        camera_id = int(camera_id)
    except (TypeError, ValueError):
        return None
    return camera_list_for_user(user, VIEW).filter(pk=camera_id).first()


def cameras_needing_dispatch(*, stale_before) -> QuerySet:
    """Enabled cameras whose worker heartbeat is missing or older than ``stale_before``."""
    return Camera.objects.filter(enabled=True).filter(Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale_before))
