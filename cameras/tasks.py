from celery import shared_task
from django.conf import settings

from .services import cameras_redispatch as redispatch


@shared_task
def cameras_redispatch() -> list[int]:
    """Beat: re-queue enabled cameras whose heartbeat is missing (worker died or never started)."""
    return redispatch(stale_after=settings.CAMERA_REDISPATCH_SECONDS)
