"""Event tasks (``default`` queue). They call services and are safe to run twice."""

from celery import shared_task

from .services import event_clips_enforce_retention


@shared_task
def events_clips_retention() -> dict:
    """Beat (every CLIP_RETENTION_CHECK_SECONDS): delete expired clips and keep their disk use under the cap."""
    return event_clips_enforce_retention()


@shared_task
def events_score_history_prune() -> int:
    """Beat (every SCORE_HISTORY_PRUNE_SECONDS): delete score history older than SCORE_HISTORY_DAYS."""
    from .services import score_history_prune

    return score_history_prune()


@shared_task
def events_close_stale() -> int:
    """Beat (every EVENT_STALE_CHECK_SECONDS): close events whose worker died before closing them."""
    from .services import events_close_stale as close

    return close()
