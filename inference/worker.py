"""The inference worker's process-wide pieces, wired to Django, Redis and the channel layer.

One MultiCameraManager, one ResourcePool and one EventLogger per worker process.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections

from cameras import live
from cameras import services as camera_services
from cameras.groups import camera_frames_group, camera_group
from cameras.models import Camera
from events.eventlog import EventLogger
from events.services import event_records_store

from .e2e import Callbacks, E2ESystem
from .manager import MultiCameraManager
from .pool import ResourcePool
from .registry import make_detector, resolve
from .sources import open_source

log = logging.getLogger(__name__)

LEASE_KEY = "camera-lease:{}"
ALIVE_KEY = "worker-alive:{}"

_lock = threading.Lock()
_manager: MultiCameraManager | None = None
_logger: EventLogger | None = None
_pool: ResourcePool | None = None


class RedisLease:
    """Each camera runs on exactly one worker: a key in Redis with a time-to-live."""

    _RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end return 0"
    _RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

    def __init__(self, worker: str, ttl: int, client: redis.Redis | None = None):
        self.worker = worker
        self.ttl = ttl
        self.r = client or live.client()

    def acquire(self, camera_id: int) -> bool:
        key = LEASE_KEY.format(camera_id)
        if self.r.set(key, self.worker, nx=True, ex=self.ttl):
            return True
        return self.renew(camera_id)

    def renew(self, camera_id: int) -> bool:
        return bool(self.r.eval(self._RENEW, 1, LEASE_KEY.format(camera_id), self.worker, self.ttl))

    def release(self, camera_id: int) -> None:
        self.r.eval(self._RELEASE, 1, LEASE_KEY.format(camera_id), self.worker)

    def alive(self, cameras: list[int]) -> None:
        self.r.set(ALIVE_KEY.format(self.worker), ",".join(map(str, cameras)), ex=self.ttl)


def live_workers(client: redis.Redis | None = None) -> dict[str, list[int]]:
    r = client or live.client()
    out = {}
    for key in r.scan_iter(match=ALIVE_KEY.format("*")):
        value = r.get(key)
        if value is not None:
            name = key.decode().split(":", 1)[1]
            out[name] = [int(v) for v in value.decode().split(",") if v]
    return out


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=timezone.utc)


class DjangoCameraStore:
    def __init__(self, worker: str):
        self.worker = worker

    def claim(self, camera_id):
        close_old_connections()
        return camera_services.camera_claim(camera_id=camera_id, worker=self.worker)

    def report(self, camera_id, **fields):
        close_old_connections()
        if "last_frame_at" in fields:
            fields["last_frame_at"] = _ts(fields["last_frame_at"])
        return camera_services.camera_report_live_state(camera_id=camera_id, worker=self.worker, **fields)

    def release(self, camera_id, state, error):
        close_old_connections()
        camera_services.camera_release(camera_id=camera_id, worker=self.worker, state=state, error=error)

    def configs(self, camera_ids):
        close_old_connections()
        return {c.pk: c.runtime_config() for c in Camera.objects.filter(pk__in=camera_ids, enabled=True)}


def store_snapshot(event_id: uuid.UUID, image: np.ndarray) -> str:
    """Encode the key frame once and write it under MEDIA_ROOT; return its relative name."""
    day = datetime.now(timezone.utc)
    name = f"events/snapshots/{day:%Y/%m/%d}/{event_id}.jpg"
    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError("JPEG encoding failed")
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(jpeg.tobytes())
    os.replace(tmp, path)
    return name


CLIP_FOURCC = "VP80"  # VP8 in WebM: OpenCV's FFmpeg writes it offline, and every current browser plays it


def store_clip(event_id: uuid.UUID, frames: list[tuple[float, np.ndarray]], fps: float) -> str:
    """Encode an event's frames as a VP8 WebM under MEDIA_ROOT (in the episode executor); its relative name.

    Frames are BGR (or grayscale) at the analysis resolution; a frame of another size (the
    source changed resolution) is scaled to the first one's.
    """
    if not frames:
        return ""
    day = datetime.now(timezone.utc)
    name = f"events/clips/{day:%Y/%m/%d}/{event_id}.webm"
    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    first = frames[0][1]
    h, w = first.shape[:2]
    w, h = w - w % 2, h - h % 2  # VP8 wants even dimensions
    tmp = path.with_name(f"{event_id}.part.webm")  # FFmpeg picks the container by the extension
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*CLIP_FOURCC), max(1.0, float(fps)), (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {CLIP_FOURCC} WebM here")
    try:
        for _, image in frames:
            if image.ndim == 2:
                image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
            if image.shape[0] != h or image.shape[1] != w:
                image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
            writer.write(image)
    finally:
        writer.release()
    if not tmp.exists() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError("The clip writer produced no file")
    os.replace(tmp, path)
    return name


class FramePublisher:
    """Live frames to the fps tiers that have watchers, encoded once, sent off the camera loop.

    Nothing is downscaled or encoded for a camera nobody watches. The camera thread only
    puts a message on a bounded queue; when Redis or the clients lag, frames are dropped
    there (frames are droppable; events never go this way).
    """

    TIER_REFRESH = 1.0

    def __init__(self, layer, client: redis.Redis, *, width: int, quality: int, queue_size: int = 64):
        import queue

        self.layer = layer
        self.r = client
        self.width = width
        self.quality = quality
        self.queue: "queue.Queue" = queue.Queue(maxsize=queue_size)
        self._full = queue.Full
        self._tiers: dict[int, tuple[float, set[int]]] = {}
        self._last: dict[tuple[int, int], float] = {}
        self.encoded = 0
        self.dropped = 0
        self.sent = 0
        threading.Thread(target=self._send_loop, name="frame-publisher", daemon=True).start()

    def tiers(self, camera_id: int) -> set[int]:
        now = time.monotonic()
        checked = self._tiers.get(camera_id)
        if checked is None or now - checked[0] >= self.TIER_REFRESH:
            try:
                tiers = live.watched_tiers(self.r, camera_id)
            except redis.RedisError:
                tiers = set()
            checked = self._tiers[camera_id] = (now, tiers)
        return checked[1]

    def rate(self, camera_id: int) -> float:
        return float(max(self.tiers(camera_id), default=0))

    def on_frame(self, camera_id: int, frame, captured_at: float) -> None:
        tiers = self.tiers(camera_id)
        if not tiers:
            return
        now = time.monotonic()
        due = [fps for fps in tiers if now - self._last.get((camera_id, fps), 0.0) >= 0.9 / fps]
        if not due:
            return
        image = frame.image
        h, w = image.shape[:2]
        if w > self.width:
            image = cv2.resize(image, (self.width, round(h * self.width / w)), interpolation=cv2.INTER_AREA)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            return
        self.encoded += 1
        data = jpeg.tobytes()
        for fps in due:
            self._last[(camera_id, fps)] = now
            message = {"type": "camera.frame", "camera": camera_id, "fps": fps, "ts": captured_at,
                       "jpeg": data, "width": image.shape[1], "height": image.shape[0]}
            try:
                self.queue.put_nowait((camera_frames_group(camera_id, fps), message))
            except self._full:
                self.dropped += 1

    def _send_loop(self) -> None:
        while True:
            group, message = self.queue.get()
            try:
                async_to_sync(self.layer.group_send)(group, message)
                self.sent += 1
            except Exception as exc:
                self.dropped += 1
                log.debug("Frame push to %s failed: %s", group, exc)


class WorkerCallbacks(Callbacks):
    """Events to the log, state to the database, live updates to the channel layer."""

    SCORE_INTERVAL = 1.0

    def __init__(self, worker: str, logger: EventLogger, db_writer: ThreadPoolExecutor):
        self.worker = worker
        self.logger = logger
        self.db_writer = db_writer
        self.layer = get_channel_layer()
        self.frames = FramePublisher(self.layer, live.client(), width=settings.STREAM_WIDTH,
                                     quality=settings.STREAM_JPEG_QUALITY)
        self._last_score: dict[int, float] = {}

    def on_frame(self, camera_id, frame, captured_at):
        self.frames.on_frame(camera_id, frame, captured_at)

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
        def write():
            close_old_connections()
            if camera_services.camera_set_state(camera_id=camera_id, worker=self.worker, state=state, error=error):
                self._send(camera_group(camera_id), {
                    "type": "camera.status", "camera": camera_id, "state": state, "error": error,
                    "at": time.time()})

        self.db_writer.submit(write)

    def on_score(self, camera_id, timestamp, result):
        now = time.monotonic()
        if now - self._last_score.get(camera_id, 0) < self.SCORE_INTERVAL:
            return
        self._last_score[camera_id] = now
        self.db_writer.submit(self._send, camera_group(camera_id), {
            "type": "camera.score", "camera": camera_id, "score": round(float(result.score), 4),
            "at": time.time()})


def _worker_name(hostname: str | None) -> str:
    return os.getenv("WORKER_NAME") or hostname or f"{socket.gethostname()}-{os.getpid()}"


def create_manager(worker: str, logger: EventLogger, pool: ResourcePool) -> MultiCameraManager:
    """A manager whose cameras log events to ``logger`` and share the models in ``pool``."""
    callbacks = WorkerCallbacks(worker, logger, ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writer"))

    def build(config: dict, manager: MultiCameraManager) -> E2ESystem:
        vlm = None
        if config.get("vlm_backend", "none") != "none":
            vlm = pool.vlm(config["vlm_backend"], {"model_path": config["vlm_model_path"],
                                                    "device": settings.INFERENCE_DEVICE})
        return E2ESystem(
            config,
            source=open_source(config["source_url"], loop=True, allowed_networks=settings.CAMERA_ALLOWED_NETWORKS),
            detector=make_detector(config, pool),
            agent=pool.get("agent", config.get("agent_policy", "rules"), config.get("agent_params") or {}),
            vlm=vlm,
            callbacks=callbacks,
            snapshot_store=store_snapshot,
            clip_store=store_clip if settings.CLIP_ENABLED else None,
            clip_pre_seconds=settings.CLIP_PRE_SECONDS,
            clip_max_seconds=settings.CLIP_MAX_SECONDS,
            executor=manager.executor,
            reconnect_max=settings.SOURCE_RECONNECT_MAX_SECONDS,
            live_rate=lambda: callbacks.frames.rate(config["id"]),
        )

    manager = MultiCameraManager(
        store=DjangoCameraStore(worker),
        lease=RedisLease(worker, settings.CAMERA_LEASE_SECONDS),
        build=build,
        max_cameras=settings.MAX_CAMERAS_PER_WORKER,
        heartbeat=settings.WORKER_HEARTBEAT_SECONDS,
    )
    manager.callbacks = callbacks
    return manager


def create_pool() -> ResourcePool:
    return ResourcePool(loaders={"vlm": _load_backend("vlm"), "agent": _load_backend("agent")})


def create_logger(worker: str) -> EventLogger:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in worker)
    return EventLogger(
        Path(settings.EVENT_LOG_DIR) / f"{safe}.jsonl",
        store=_store_records,
        flush_interval=settings.EVENT_FLUSH_INTERVAL,
        batch_size=settings.EVENT_BATCH_SIZE,
    )


def get_manager(hostname: str | None = None) -> MultiCameraManager:
    """The process's manager, created on first use (replays this worker's event log first)."""
    global _manager, _logger, _pool
    with _lock:
        if _manager is None:
            worker = _worker_name(hostname)
            _logger = create_logger(worker).start()
            _pool = create_pool()
            _manager = create_manager(worker, _logger, _pool)
            log.info("Inference worker %s ready (up to %d cameras)", worker, settings.MAX_CAMERAS_PER_WORKER)
        return _manager


def _load_backend(kind: str):
    def load(name: str, config: dict):
        return resolve(kind, name)(**config)

    return load


def _store_records(records: list[dict]) -> None:
    close_old_connections()
    event_records_store(records)


def shutdown() -> None:
    """Stop cameras (their leases go to other workers) and store every logged event."""
    global _manager, _logger
    with _lock:
        manager, logger = _manager, _logger
        _manager = _logger = None
    if manager is not None:
        manager.close()
    if logger is not None:
        logger.close()
