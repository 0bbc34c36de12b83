"""MultiCameraManager: runs one E2ESystem per camera in threads of one worker process.

Django-free: the worker module supplies a ``store`` (camera configs and live state in
the database), a ``lease`` (which worker runs which camera, in Redis) and a factory
for each camera's pieces. Models come from the shared ResourcePool, loaded once.
Every heartbeat hands each camera's figures (``E2ESystem.stats_snapshot``) to ``publish_stats``.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Protocol

from .e2e import E2ESystem

log = logging.getLogger(__name__)


class CameraStore(Protocol):
    def claim(self, camera_id: int) -> dict | None: ...

    def report(self, camera_id: int, **fields) -> bool: ...

    def release(self, camera_id: int, state: str, error: str) -> None: ...

    def configs(self, camera_ids: list[int]) -> dict[int, dict]: ...


class Lease(Protocol):
    def acquire(self, camera_id: int) -> bool: ...

    def renew(self, camera_id: int) -> bool: ...

    def release(self, camera_id: int) -> None: ...

    def alive(self, cameras: list[int]) -> None: ...


@dataclass
class Running:
    system: E2ESystem
    thread: threading.Thread
    stop: threading.Event
    config: dict


class MultiCameraManager:
    def __init__(
        self,
        *,
        store: CameraStore,
        lease: Lease,
        build: Callable[[dict, "MultiCameraManager"], E2ESystem],
        max_cameras: int = 16,
        heartbeat: float = 2.0,
        publish_stats: Callable[[dict[int, dict]], None] | None = None,
    ):
        self.store = store
        self.publish_stats = publish_stats
        self.lease = lease
        self.build = build
        self.max_cameras = max_cameras
        self.heartbeat_interval = heartbeat
        self.cameras: dict[int, Running] = {}
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="episode")
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._hb_thread: threading.Thread | None = None

    # -- control -------------------------------------------------------------------
    def start(self, camera_id: int) -> str:
        """'started', 'running' (already here), 'full', 'elsewhere' (leased by another) or 'gone'."""
        with self._lock:
            if camera_id in self.cameras:
                return "running"
            if len(self.cameras) >= self.max_cameras:
                return "full"
            if not self.lease.acquire(camera_id):
                return "elsewhere"
            config = self.store.claim(camera_id)
            if config is None:
                self.lease.release(camera_id)
                return "gone"
            try:
                self._launch(config)
            except Exception as exc:
                log.exception("Camera %s could not start", camera_id)
                self.store.release(camera_id, "error", f"Could not start: {exc}"[:300])
                self.lease.release(camera_id)
                return "gone"
            self._ensure_heartbeat()
            return "started"

    def _launch(self, config: dict) -> None:
        system = self.build(config, self)
        stop = threading.Event()
        thread = threading.Thread(target=system.run, args=(stop,), name=f"camera-{config['id']}", daemon=True)
        self.cameras[config["id"]] = Running(system, thread, stop, config)
        thread.start()

    def stop(self, camera_id: int, *, state: str = "stopped", error: str = "", timeout: float = 10.0) -> None:
        with self._lock:
            running = self.cameras.pop(camera_id, None)
        if running is None:
            return
        running.stop.set()
        running.thread.join(timeout)
        try:
            running.system.wait_pending(timeout)
        except Exception:
            log.exception("Finishing the events of camera %s failed", camera_id)
        self.store.release(camera_id, state, error)
        self.lease.release(camera_id)

    def close(self) -> None:
        """Worker shutdown: stop every camera; their leases go so another worker takes them."""
        self._closing.set()
        for camera_id in list(self.cameras):
            self.stop(camera_id, state="starting", error="Worker shutting down; moving to another worker.")
        self._publish_stats()  # no cameras here any more
        self.executor.shutdown(wait=True)

    # -- heartbeat ------------------------------------------------------------------
    def _ensure_heartbeat(self) -> None:
        if self._hb_thread is None or not self._hb_thread.is_alive():
            self._hb_thread = threading.Thread(target=self._heartbeat_loop, name="camera-heartbeat", daemon=True)
            self._hb_thread.start()

    def _heartbeat_loop(self) -> None:
        while not self._closing.wait(self.heartbeat_interval):
            try:
                self.heartbeat()
            except Exception:
                log.exception("Heartbeat failed")

    def heartbeat(self) -> None:
        """Renew leases, report live state, follow changes made in the database, publish the figures."""
        try:
            self._heartbeat()
        finally:
            self._publish_stats()

    def _publish_stats(self) -> None:
        if self.publish_stats is None:
            return
        try:
            self.publish_stats(self.stats())
        except Exception:  # figures are best effort: never the heartbeat's problem
            log.exception("Publishing the camera figures failed")

    def _heartbeat(self) -> None:
        with self._lock:
            ids = list(self.cameras)
        self.lease.alive(ids)
        if not ids:
            return
        # Leases first (Redis): a database outage must not let them expire under running cameras.
        for camera_id in ids:
            if camera_id in self.cameras and not self.lease.renew(camera_id):
                log.warning("Lost the lease of camera %s; stopping it here", camera_id)
                self._drop(camera_id)
        configs = self.store.configs(ids)
        for camera_id in ids:
            running = self.cameras.get(camera_id)
            if running is None:
                continue
            system = running.system
            fields = {"state": system.state, "last_error": system.error[:500], "measured_fps": round(system.measured_fps, 2)}
            if system.last_frame_wall:
                fields["last_frame_at"] = system.last_frame_wall
            still_ours = self.store.report(camera_id, **fields)
            config = configs.get(camera_id)
            if not still_ours or config is None:
                self.stop(camera_id)  # stopped, deleted or taken over: the database says so
            elif config != running.config:
                log.info("Camera %s settings changed; restarting it", camera_id)
                self._restart(camera_id, config)

    def _drop(self, camera_id: int) -> None:
        with self._lock:
            running = self.cameras.pop(camera_id, None)
        if running:
            running.stop.set()

    def _restart(self, camera_id: int, config: dict) -> None:
        with self._lock:
            running = self.cameras.pop(camera_id, None)
        if running:
            running.stop.set()
            running.thread.join(10)
        with self._lock:
            self._launch(config)

    def stats(self) -> dict[int, dict]:
        """Each running camera's figures (``E2ESystem.stats_snapshot``): what the heartbeat publishes."""
        return {cid: r.system.stats_snapshot() for cid, r in list(self.cameras.items())}

    def status(self) -> dict[int, dict]:
        """Each running camera's state, error and figures (fps, frames, lag, detector ms, events)."""
        return {cid: {**r.system.stats_snapshot(), "error": r.system.error} for cid, r in list(self.cameras.items())}
