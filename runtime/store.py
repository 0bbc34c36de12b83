"""The worker's side of the camera protocol in the database: claim, report, release, read configs.

``DjangoCameraStore`` is the ``inference.manager.CameraStore`` the manager calls from its heartbeat
thread; ``store_records`` and ``store_score_buckets`` hand the event log's and the score history's
batches to the events app. Each call starts with fresh database connections (worker threads are
long-lived).
"""

from __future__ import annotations

from datetime import datetime, timezone

from django.db import close_old_connections

from cameras import live_state
from cameras.models import Camera
from events.services import event_records_store, score_buckets_store


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=timezone.utc)


class DjangoCameraStore:
    def __init__(self, worker: str):
        self.worker = worker

    def claim(self, camera_id):
        close_old_connections()
        return live_state.camera_claim(camera_id=camera_id, worker=self.worker)

    def report(self, camera_id, **fields):
        close_old_connections()
        if "last_frame_at" in fields:
            fields["last_frame_at"] = _ts(fields["last_frame_at"])
        return live_state.camera_report_live_state(camera_id=camera_id, worker=self.worker, **fields)

    def release(self, camera_id, state, error):
        close_old_connections()
        live_state.camera_release(camera_id=camera_id, worker=self.worker, state=state, error=error)

    def configs(self, camera_ids):
        close_old_connections()
        cameras = Camera.objects.filter(pk__in=camera_ids, enabled=True).select_related("active_detector_version")
        return {c.pk: c.runtime_config() for c in cameras}


def store_records(records: list[dict]) -> None:
    """The event log's flush: one batch of event records into the database."""
    close_old_connections()
    event_records_store(records)


def store_score_buckets(batch: list[tuple]) -> None:
    """The score history's flush: finished buckets of every camera."""
    close_old_connections()
    score_buckets_store(buckets=batch)
