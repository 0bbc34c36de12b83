"""The inference worker process: one MultiCameraManager, one ResourcePool and one EventLogger.

Created on first use in a Celery worker that consumes the ``inference`` queue (runtime/signals.py,
runtime/tasks.py) and torn down at its shutdown. ``create_manager`` wires the library's per-camera
loop (inference.e2e) to this worker's store, lease, callbacks and media writers.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
from pathlib import Path

from django.conf import settings

from cameras.backends import make_detector, resolve
from inference.describe_queue import DescribeQueue
from inference.e2e import E2ESystem
from inference.executors import BoundedExecutor
from inference.manager import MultiCameraManager
from inference.pool import ResourcePool
from inference.source_urls import validate_source_url
from inference.sources import open_source
from siteconfig.selectors import WHERE, camera_networks, model_server_networks

from .callbacks import WorkerCallbacks
from .eventlog import EventLogger
from .lease import RedisLease
from .media import store_clip, store_crops, store_snapshot
from .recording import Recordings, segment_index
from .stats import StatsPublisher
from .store import DjangoCameraStore, store_records

log = logging.getLogger(__name__)

_lock = threading.Lock()
_manager: MultiCameraManager | None = None
_logger: EventLogger | None = None
_pool: ResourcePool | None = None


def _worker_name(hostname: str | None) -> str:
    return os.getenv("WORKER_NAME") or hostname or f"{socket.gethostname()}-{os.getpid()}"


def _model_server(params) -> dict:
    """A model-server backend's config: its parameters, and the site's model-server networks, asked at
    each connection (a changed policy applies to the next request)."""
    return {**(params or {}), "allowed_networks": model_server_networks, "networks_where": WHERE["model server"]}


def create_describe_queue() -> DescribeQueue:
    """The worker's one queue of VLM descriptions, shared by all its cameras (docs/detection.md)."""
    return DescribeQueue(settings.DESCRIBE_CONCURRENCY, settings.DESCRIBE_QUEUE_MAX,
                         settings.DESCRIBE_PER_CAMERA_PER_MINUTE, settings.DESCRIBE_DEADLINE_SECONDS)


def create_manager(worker: str, logger: EventLogger, pool: ResourcePool,
                   describe_queue: DescribeQueue | None = None) -> MultiCameraManager:
    """A manager whose cameras log events to ``logger``, share the models in ``pool`` and have their
    episodes described through ``describe_queue`` (one is made when not given; ``shutdown`` closes it)."""
    if describe_queue is None:
        describe_queue = create_describe_queue()
    db_writer = BoundedExecutor(1, settings.WORKER_DB_WRITER_QUEUE, "db-writer")
    # The recorder's ffmpeg opens its own connection to a stream: the same camera-network check first, every time.
    check_stream = functools.partial(validate_source_url, allowed_networks=camera_networks,
                                     networks_where=WHERE["camera"])
    callbacks = WorkerCallbacks(worker, logger, db_writer, recordings=Recordings(segment_index, check_url=check_stream))

    def build(config: dict, manager: MultiCameraManager) -> E2ESystem:
        # Every model the camera gets from the pool is held until its E2ESystem is gone (stopped, or
        # restarted with new settings), so the pool's bound never evicts a model a camera uses.
        with pool.hold() as hold:
            system = _build(config, manager)
            hold.bind(system)
        return system

    def _build(config: dict, manager: MultiCameraManager) -> E2ESystem:
        callbacks.recordings.configure(config)  # its record_mode: the recorder starts when the loop runs
        vlm = None
        backend = config.get("vlm_backend", "none")
        if backend == "openai":
            vlm = pool.vlm(backend, _model_server(config.get("vlm_params")))
        elif backend != "none":
            vlm = pool.vlm(backend, {"model_path": config["vlm_model_path"], "device": settings.INFERENCE_DEVICE})
        agent_params = config.get("agent_params") or {}
        if config.get("agent_policy") == "openai":
            agent_params = _model_server(agent_params)
        return E2ESystem(
            config,
            source=open_source(config["source_url"], loop=True, allowed_networks=camera_networks,
                               networks_where=WHERE["camera"], file_roots=settings.CAMERA_FILE_ROOTS),
            detector=make_detector(config, pool),
            agent=pool.agent(config.get("agent_policy", "rules"), agent_params),
            vlm=vlm,
            callbacks=callbacks,
            snapshot_store=store_snapshot,
            clip_store=store_clip if settings.CLIP_ENABLED else None,
            crop_store=store_crops,
            clip_pre_seconds=settings.CLIP_PRE_SECONDS,
            clip_max_seconds=settings.CLIP_MAX_SECONDS,
            executor=manager.executor,
            reconnect_max=settings.SOURCE_RECONNECT_MAX_SECONDS,
            offline_after=settings.CAMERA_OFFLINE_SECONDS,
            live_rate=lambda: callbacks.frames.rate(config["id"]),
            describe_queue=describe_queue,
            describe_repeat_seconds=settings.DESCRIBE_REPEAT_SECONDS,
        )

    def live_frames() -> dict:
        frames = callbacks.frames
        return {"live_frames": {"encoded": frames.encoded, "sent": frames.sent, "dropped": frames.dropped},
                "recordings": {str(k): v for k, v in callbacks.recordings.stats().items()}}

    stats = StatsPublisher(worker, settings.WORKER_HEARTBEAT_SECONDS * settings.METRICS_SNAPSHOT_HEARTBEATS,
                           extra=live_frames, describe_queue=describe_queue)
    manager = MultiCameraManager(
        store=DjangoCameraStore(worker),
        lease=RedisLease(worker, settings.CAMERA_LEASE_SECONDS),
        build=build,
        max_cameras=settings.MAX_CAMERAS_PER_WORKER,
        heartbeat=settings.WORKER_HEARTBEAT_SECONDS,
        publish_stats=stats.publish,
    )
    manager.callbacks = callbacks
    manager.describe_queue = describe_queue
    return manager


def create_pool() -> ResourcePool:
    """The worker's models, loaded once; object detection of every camera goes through one scheduler.

    Model folders must lie in ``MODEL_ROOTS`` (checked again here, before each load); at most
    ``WORKER_MAX_MODELS`` models stay loaded, those no camera holds evicted first (inference/pool.py).
    """
    objects = {"live": True, "budget_fps": settings.OBJECT_BUDGET_FPS, "max_batch": settings.OBJECT_MAX_BATCH,
               "model_dir": str(settings.OBJECT_MODEL_DIR), "device": settings.INFERENCE_DEVICE,
               "threads": settings.OBJECT_THREADS}
    return ResourcePool(loaders={"vlm": _load_backend("vlm"), "agent": _load_backend("agent")},
                        options={"objects": objects}, model_roots=settings.MODEL_ROOTS,
                        max_models=settings.WORKER_MAX_MODELS or None)


def create_logger(worker: str) -> EventLogger:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in worker)
    return EventLogger(
        Path(settings.EVENT_LOG_DIR) / f"{safe}.jsonl",
        store=store_records,
        flush_interval=settings.EVENT_FLUSH_INTERVAL,
        batch_size=settings.EVENT_BATCH_SIZE,
        open_flush_gap=settings.EVENT_OPEN_FLUSH_GAP,
        backlog_max=settings.EVENT_BACKLOG_MAX,
        log_max_bytes=int(settings.EVENT_LOG_MAX_MB * 1024 * 1024),
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


def started() -> bool:
    """Whether this process runs cameras (its manager was created)."""
    return _manager is not None


def current_pool() -> ResourcePool | None:
    """This process's model pool when it runs cameras (learning jobs reuse its models), else None."""
    return _pool


def _load_backend(kind: str):
    def load(name: str, config: dict):
        return resolve(kind, name)(**config)

    # What decides a backend's weights (ResourcePool.agent keys its models on them).
    load.weight_params = lambda name: getattr(resolve(kind, name), "weight_params", None)
    return load


def shutdown() -> None:
    """Stop cameras (their leases go to other workers) and store every logged event."""
    global _manager, _logger
    with _lock:
        manager, logger = _manager, _logger
        _manager = _logger = None
    if manager is not None:
        manager.close()
        describe_queue = getattr(manager, "describe_queue", None)
        if describe_queue is not None:  # after the cameras' last episodes: what still waits is dropped
            describe_queue.close()
        scores = getattr(getattr(manager, "callbacks", None), "scores", None)
        if scores is not None:
            scores.close()  # the score history still held in memory
        recordings = getattr(getattr(manager, "callbacks", None), "recordings", None)
        if recordings is not None:
            recordings.close()  # each recorder finishes and indexes its last segment
    if logger is not None:
        logger.close()
