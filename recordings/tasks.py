"""Tasks of recordings, on the default queue: retention and export expiry (beat, surveillance/schedules.py), exports,
and event clips cut from the recording."""

from celery import shared_task
from django.conf import settings

from .services import event_clip_from_recording, export_run, exports_expire
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


@shared_task(name="recordings.tasks.recordings_event_clip", bind=True, max_retries=None)
def recordings_event_clip(self, event_id: str) -> str:
    """Cut a closed event's clip from its camera's recording (queued by ``receivers.event_clips_queue``). While the
    recording does not reach the clip's end yet, asks again every half segment; the service gives up waiting
    CLIP_RECORDING_WAIT_SECONDS past it, so this ends. Safe to run twice."""
    outcome = event_clip_from_recording(event_id)
    if outcome in ("wait", "busy"):
        raise self.retry(countdown=max(1.0, settings.RECORDING_SEGMENT_SECONDS / 2))
    return outcome
