"""The inference worker's process-wide pieces, wired to Django, Redis and the channel layer.

One MultiCameraManager, one ResourcePool and one EventLogger per worker process.
"""

from __future__ import annotations

import json
import logging
import math
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
from events.services import event_records_store, score_buckets_store

from .e2e import Callbacks, E2ESystem
from .manager import MultiCameraManager
from .pool import ResourcePool
from .registry import make_detector, resolve
from .sources import open_source

log = logging.getLogger(__name__)

LEASE_KEY = "camera-lease:{}"
ALIVE_KEY = "worker-alive:{}"
STATS_KEY = "worker-stats:{}"  # each worker's per-camera figures (JSON), read by /metrics and /api/v1/stats/

_lock = threading.Lock()
_manager: MultiCameraManager | None = None
_logger: EventLogger | None = None
_pool: ResourcePool | None = None


class RedisLease:
    """Each camera runs on exactly one worker: a key in Redis with a time-to-live."""

    # Renew our lease; a lease that vanished (it expired while the database or Redis was away, or
    # Redis restarted empty) is taken again when nobody else holds it: the camera still runs here.
    _RENEW = ("local v = redis.call('get', KEYS[1]) "
              "if v == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end "
              "if not v then return redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2]) and 1 or 0 end "
              "return 0")
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


class StatsPublisher:
    """Each heartbeat, this worker's per-camera figures as one JSON value in Redis.

    Key ``worker-stats:<worker>``, expiring after ``ttl`` seconds (a few heartbeats), so a worker
    that stops or dies drops out of /metrics by itself. ``extra`` adds worker-wide figures.
    """

    def __init__(self, worker: str, ttl: float, client: redis.Redis | None = None, extra=None):
        self.worker = worker
        self.ttl_ms = max(1000, int(ttl * 1000))
        self.r = client or live.client()
        self.extra = extra

    def document(self, cameras: dict[int, dict]) -> dict:
        doc = {"worker": self.worker, "at": round(time.time(), 3), "pid": os.getpid(),
               "cameras": {str(cid): figures for cid, figures in cameras.items()}}
        if self.extra is not None:
            doc.update(self.extra())
        return doc

    def publish(self, cameras: dict[int, dict]) -> None:
        value = json.dumps(self.document(cameras), separators=(",", ":"), allow_nan=False)
        self.r.set(STATS_KEY.format(self.worker), value, px=self.ttl_ms)


def worker_stats(client: redis.Redis | None = None) -> dict[str, dict]:
    """The figures every live worker published (StatsPublisher), by worker name: a scan and one MGET."""
    r = client or live.client()
    keys = sorted(r.scan_iter(match=STATS_KEY.format("*"), count=1000))
    out = {}
    for key, value in zip(keys, r.mget(keys) if keys else []):
        if value is None:
            continue  # expired between the scan and the read
        try:
            doc = json.loads(value)
        except ValueError:
            log.warning("Unreadable worker figures under %s", key)
            continue
        out[key.decode().split(":", 1)[1]] = doc
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
        cameras = Camera.objects.filter(pk__in=camera_ids, enabled=True).select_related("active_detector_version")
        return {c.pk: c.runtime_config() for c in cameras}


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


class ScoreHistory:
    """Each camera's scores as buckets (max, mean, count per ``bucket_seconds`` of wall time), stored in batches.

    ``add`` runs on the camera threads and only touches memory under a lock. Every
    ``flush_seconds`` the buckets finished by then, of all cameras, go to ``store`` in one call
    submitted to ``submit`` (the worker's db-writer thread): the camera loops never wait for the
    database. A failed write is logged and that batch is dropped: at most one batch is lost and
    the loops go on. ``close`` stores everything still held, open buckets included (shutdown).
    """

    def __init__(self, *, store, submit, bucket_seconds: float = 10, flush_seconds: float = 5.0, clock=time.time):
        self.store = store
        self.submit = submit
        self.bucket = max(1.0, float(bucket_seconds))
        self.flush_seconds = float(flush_seconds)
        self.clock = clock
        self._lock = threading.Lock()
        self._open: dict[int, list] = {}   # camera -> [start, max, sum, count]
        self._done: list[tuple] = []         # (camera, start, seconds, max, mean, count)
        self._next_flush = clock() + self.flush_seconds
        self.stored = 0
        self.dropped = 0

    def add(self, camera_id: int, score: float) -> None:
        score = float(score)
        if not math.isfinite(score):
            return
        now = self.clock()
        start = now - now % self.bucket
        with self._lock:
            b = self._open.get(camera_id)
            if b is not None and b[0] == start:
                if score > b[1]:
                    b[1] = score
                b[2] += score
                b[3] += 1
            else:
                if b is not None:
                    self._done.append(self._finish(camera_id, b))
                self._open[camera_id] = [start, score, score, 1]
            batch = self._take(now) if now >= self._next_flush else None
        if batch:
            try:
                self.submit(self._write, batch)
            except Exception:  # the writer is gone (shutting down): never the camera loop's problem
                self.dropped += len(batch)
                log.exception("Could not queue %d score-history buckets; they are dropped", len(batch))

    def _finish(self, camera_id: int, b: list) -> tuple:
        return (camera_id, b[0], self.bucket, b[1], b[2] / b[3], b[3])

    def _take(self, now: float, *, everything: bool = False) -> list[tuple]:
        """Under the lock: the finished buckets, and open ones that ended (a camera that went quiet)."""
        self._next_flush = now + self.flush_seconds
        for camera_id, b in list(self._open.items()):
            if everything or b[0] + self.bucket <= now:
                self._done.append(self._finish(camera_id, b))
                del self._open[camera_id]
        batch, self._done = self._done, []
        return batch

    def _write(self, batch: list[tuple]) -> None:
        try:
            close_old_connections()
            self.store(batch)
            self.stored += len(batch)
        except Exception:
            self.dropped += len(batch)
            log.exception("Storing %d score-history buckets failed; they are dropped", len(batch))

    def close(self) -> None:
        with self._lock:
            batch = self._take(self.clock(), everything=True)
        if batch:
            self._write(batch)


def _store_score_buckets(batch: list[tuple]) -> None:
    score_buckets_store(buckets=batch)


class WorkerCallbacks(Callbacks):
    """Events to the log, state to the database, live updates to the channel layer."""

    SCORE_INTERVAL = 1.0

    def __init__(self, worker: str, logger: EventLogger, db_writer: ThreadPoolExecutor, *, clock=time.time):
        self.worker = worker
        self.logger = logger
        self.db_writer = db_writer
        self.layer = get_channel_layer()
        self.frames = FramePublisher(self.layer, live.client(), width=settings.STREAM_WIDTH,
                                     quality=settings.STREAM_JPEG_QUALITY)
        self._last_score: dict[int, float] = {}
        self.scores = ScoreHistory(store=_store_score_buckets, submit=db_writer.submit, clock=clock,
                                   bucket_seconds=settings.SCORE_HISTORY_BUCKET_SECONDS,
                                   flush_seconds=settings.SCORE_HISTORY_FLUSH_SECONDS)

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
        self.scores.add(camera_id, result.score)  # the 24-hour timeline: memory only, stored in batches
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
            offline_after=settings.CAMERA_OFFLINE_SECONDS,
            live_rate=lambda: callbacks.frames.rate(config["id"]),
        )

    def live_frames() -> dict:
        frames = callbacks.frames
        return {"live_frames": {"encoded": frames.encoded, "sent": frames.sent, "dropped": frames.dropped}}

    stats = StatsPublisher(worker, settings.WORKER_HEARTBEAT_SECONDS * settings.METRICS_SNAPSHOT_HEARTBEATS,
                           extra=live_frames)
    manager = MultiCameraManager(
        store=DjangoCameraStore(worker),
        lease=RedisLease(worker, settings.CAMERA_LEASE_SECONDS),
        build=build,
        max_cameras=settings.MAX_CAMERAS_PER_WORKER,
        heartbeat=settings.WORKER_HEARTBEAT_SECONDS,
        publish_stats=stats.publish,
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


def current_pool() -> ResourcePool | None:
    """This process's model pool when it runs cameras (learning jobs reuse its models), else None."""
    return _pool


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
        scores = getattr(getattr(manager, "callbacks", None), "scores", None)
        if scores is not None:
            scores.close()  # the score history still held in memory
    if logger is not None:
        logger.close()
