"""Tasks of recordings, on the default queue: retention and export expiry (beat, surveillance/schedules.py), exports."""

from celery import shared_task

from .services import export_run, exports_expire
from .services import recordings_retention as run_retention


@shared_task(name="recordings.tasks.recordings_retention")
def recordings_retention() -> dict:
    """Beat (every RECORDING_RETENTION_CHECK_SECONDS): delete the footage no rule keeps. Safe to run twice."""
    return run_retention()


@shared_task(name="recordings.tasks.recordings_export")
def recordings_export(export_id: str) -> str:
    """Make an export's files (queued by ``services.export_create`` after commit). Safe to run twice."""
    return export_run(export_id)


@shared_task(name="recordings.tasks.recordings_exports_expire")
def recordings_exports_expire() -> int:
    """Beat (every RECORDING_EXPORT_CLEANUP_SECONDS): delete expired exports, files and rows. Safe to run twice."""
    return exports_expire()
