"""What a camera loop reports, and where it goes: events to the log, state to the database, live pushes.

``WorkerCallbacks`` implements ``inference.e2e.Callbacks`` for every camera of the worker. Nothing
here blocks a camera loop on the database or the channel layer: writes and pushes go through the
worker's bounded db-writer executor, frames through the FramePublisher's bounded queue.
"""

from __future__ import annotations

import logging
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections

from cameras import live, live_state
from cameras.groups import camera_group
from inference.e2e import Callbacks
from inference.executors import BoundedExecutor

from .eventlog import EventLogger
from .frames import FramePublisher
from .recording import Recordings
from .scores import ScoreHistory
from .store import store_score_buckets

log = logging.getLogger(__name__)


class WorkerCallbacks(Callbacks):
    """Events to the log, state to the database, live updates to the channel layer."""

    SCORE_INTERVAL = 1.0
    #: runtime/recording.py: the cameras that record (None: none does)
    recordings: Recordings | None = None

    def __init__(self, worker: str, logger: EventLogger, db_writer: BoundedExecutor, *, clock=time.time,
                 recordings: Recordings | None = None):
        self.worker = worker
        self.recordings = recordings
        self.logger = logger
        self.db_writer = db_writer
        self.layer = get_channel_layer()
        self.frames = FramePublisher(self.layer, live.client(), width=settings.STREAM_WIDTH,
                                     quality=settings.STREAM_JPEG_QUALITY,
                                     picture_every=settings.CAMERA_PICTURE_SECONDS,
                                     picture_ttl=settings.CAMERA_PICTURE_MAX_AGE,
                                     picture_max_bytes=settings.CAMERA_PICTURE_MAX_BYTES)
        self._last_score: dict[int, float] = {}
        self.scores = ScoreHistory(store=store_score_buckets, submit=db_writer.submit, clock=clock,
                                   bucket_seconds=settings.SCORE_HISTORY_BUCKET_SECONDS,
                                   flush_seconds=settings.SCORE_HISTORY_FLUSH_SECONDS)

    def on_frame(self, camera_id, frame, captured_at):
        self.frames.on_frame(camera_id, frame, captured_at)
        if self.recordings is not None:  # a non-blocking put into the camera's encoder queue, when it encodes
            self.recordings.on_frame(camera_id, frame.image, captured_at)

    def _send(self, group: str, message: dict) -> None:
        if self.layer is None:
            return
        try:
            async_to_sync(self.layer.group_send)(group, message)
        except Exception as exc:  # live push is best effort; the loop goes on
            log.debug("Live push to %s failed: %s", group, exc)

    def on_event(self, camera_id, record):
        self.logger.append(record)

    def on_state(self, camera_id, state, error=""):
        if self.recordings is not None:  # running: its recorder starts; stopped: it finishes its last segment
            self.recordings.on_state(camera_id, state)
        if state in ("stopped", "error"):  # its picture (GET /api/v1/cameras/{id}/picture/) is no longer current
            self.frames.forget_picture(camera_id)

        def write():
            close_old_connections()
            if live_state.camera_set_state(camera_id=camera_id, worker=self.worker, state=state, error=error):
                self._send(camera_group(camera_id), {
                    "type": "camera.status", "camera": camera_id, "state": state, "error": error,
                    "at": time.time()})

        self.db_writer.try_submit(write)  # at the bound: counted and logged; the next heartbeat reports the state

    def on_score(self, camera_id, timestamp, result):
        self.scores.add(camera_id, result.score)  # the 24-hour timeline: memory only, stored in batches
        if self.recordings is not None:  # the segment "has motion" / "has objects"
            motion = bool(result.regions)
            objects = bool((result.details or {}).get("objects"))
            if motion or objects:
                self.recordings.on_activity(camera_id, time.time(), motion=motion, objects=objects)
        now = time.monotonic()
        if now - self._last_score.get(camera_id, 0) < self.SCORE_INTERVAL:
            return
        self._last_score[camera_id] = now
        self.db_writer.try_submit(self._send, camera_group(camera_id), {  # droppable at the bound
            "type": "camera.score", "camera": camera_id, "score": round(float(result.score), 4),
            "at": time.time()})
