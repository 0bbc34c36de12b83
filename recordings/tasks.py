"""Beat tasks of recordings (surveillance/schedules.py), on the default queue."""

from celery import shared_task

from .services import recordings_retention as run_retention


@shared_task(name="recordings.tasks.recordings_retention")
def recordings_retention() -> dict:
    """Beat (every RECORDING_RETENTION_CHECK_SECONDS): delete the footage no rule keeps. Safe to run twice."""
    return run_retention()
