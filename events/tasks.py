"""Event tasks (``default`` queue). They take ids, call services and are safe to run twice."""

import logging

from celery import shared_task

from .services import event_clips_enforce_retention, event_false_alarm_learn, events_close_stale, score_history_prune

log = logging.getLogger(__name__)


@shared_task
def events_clips_retention() -> dict:
    """Beat (every CLIP_RETENTION_CHECK_SECONDS): delete expired clips and keep their disk use under the cap."""
    return event_clips_enforce_retention()


@shared_task
def events_score_history_prune() -> int:
    """Beat (every SCORE_HISTORY_PRUNE_SECONDS): delete score history older than SCORE_HISTORY_DAYS."""
    return score_history_prune()


@shared_task(name="events.tasks.events_close_stale")
def close_stale_events() -> int:
    """Beat (every EVENT_STALE_CHECK_SECONDS): close events whose worker died before closing them."""
    return events_close_stale()


@shared_task
def events_false_alarm_learn(event_id: str, user_id: int | None = None) -> str:
    """An operator marked the event a false alarm: its camera's detector learns it was normal (a feedback job).

    Queued after the commit of the resolve (events/receivers.py). Safe to run twice: the event keeps
    its one feedback job.
    """
    job = event_false_alarm_learn(event_id=event_id, user_id=user_id)
    if job is None:
        return "gone"
    log.info("False alarm %s: feedback job %s (%s)", event_id, job.pk, job.message)
    return "queued"
