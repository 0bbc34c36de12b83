from django.db.models import QuerySet

from cameras.selectors import camera_list_for_user

from .models import AnomalyEvent


def _base() -> QuerySet:
    return AnomalyEvent.objects.select_related("camera", "acknowledged_by", "resolved_by")


def event_list_for_user(user, *, camera=None, severity=None, status=None, since=None, until=None) -> QuerySet:
    """Events of the cameras the user may view, newest first, optionally filtered."""
    qs = _base().filter(camera__in=camera_list_for_user(user).values("id"))
    if camera is not None:
        qs = qs.filter(camera_id=camera)
    if severity:
        qs = qs.filter(severity__in=severity if isinstance(severity, (list, tuple)) else [severity])
    if status:
        qs = qs.filter(status__in=status if isinstance(status, (list, tuple)) else [status])
    if since is not None:
        qs = qs.filter(started_at__gte=since)
    if until is not None:
        qs = qs.filter(started_at__lt=until)
    return qs.order_by("-started_at", "-id")


def event_get_for_user(user, event_id) -> AnomalyEvent | None:
    return event_list_for_user(user).filter(pk=event_id).first()


def events_by_ids(event_ids) -> QuerySet:
    return _base().filter(pk__in=list(event_ids)).order_by("started_at")
