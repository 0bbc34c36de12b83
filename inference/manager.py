"""MultiCameraManager: runs one E2ESystem per camera in threads of one worker process.

Django-free: the worker module supplies a ``store`` (camera configs and live state in
the database), a ``lease`` (which worker runs which camera, in Redis) and a factory
for each camera's pieces. Models come from the shared ResourcePool, loaded once.
Every heartbeat hands each camera's figures (``E2ESystem.stats_snapshot``) to ``publish_stats``.

The heartbeat never waits for one camera: it renews every lease first, and a camera to stop
(or to restart with new settings) only leaves ``cameras`` there; joining its thread, waiting for
its last episodes and releasing it run on the small bounded ``control`` executor. Episode
finalisations run on the bounded ``executor`` (``inference.executors.BoundedExecutor``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable, Protocol

from .e2e import E2ESystem
from .executors import BoundedExecutor, QueueFull

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
    SHUTDOWN_ERROR = "Worker shutting down; moving to another worker."

    def __init__(
        self,
        *,
        store: CameraStore,
        lease: Lease,
        build: Callable[[dict, "MultiCameraManager"], E2ESystem],
        max_cameras: int = 16,
        heartbeat: float = 2.0,
        publish_stats: Callable[[dict[int, dict]], None] | None = None,
        episode_workers: int = 4,
        episode_queue: int = 64,
        control_workers: int = 2,
        control_queue: int = 64,
        stop_timeout: float = 10.0,
    ):
        self.store = store
        self.publish_stats = publish_stats
        self.lease = lease
        self.build = build
        self.max_cameras = max_cameras
        self.heartbeat_interval = heartbeat
        self.stop_timeout = stop_timeout
        self.cameras: dict[int, Running] = {}
        # Episode finalisations (VLM, clip, event): E2ESystem runs one inline when this is full.
        self.executor = BoundedExecutor(episode_workers, episode_queue, "episode")
        # Stops and restarts (thread joins, last episodes, release): never on the heartbeat thread.
        self.control = BoundedExecutor(control_workers, control_queue, "camera-control")
        # Cameras whose stop ("stop") or restart ("restart") runs on ``control``; "lost": a
        # restarting camera whose lease went meanwhile (it is not started again here).
        self._stopping: dict[int, str] = {}
        self._start_after_stop: set[int] = set()  # start() asked while the camera was stopping
        self._starting: set[int] = set()  # start() building the camera's pieces (outside the lock)
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._hb_thread: threading.Thread | None = None

    # -- control -------------------------------------------------------------------
    def start(self, camera_id: int) -> str:
        """'started', 'running' (already here), 'stopping', 'full', 'elsewhere' (leased by another) or 'gone'.

        'stopping': the camera is still being stopped here (its thread joined, its last events
        finished, its lease released, off the heartbeat). It is not started twice meanwhile: the
        request is remembered and ``start`` runs again once the stop is done (then it claims the
        lease and the database row afresh, so a camera disabled meanwhile stays stopped). A camera
        being started or restarted with new settings answers 'running'; a worker shutting down, 'full'.
        The camera's pieces are built outside the manager's lock: a slow model load delays no heartbeat.
        """
        with self._lock:
            if camera_id in self.cameras or camera_id in self._starting:
                return "running"
            mode = self._stopping.get(camera_id)
            if mode == "restart":
                return "running"
            if mode is not None:
                if not self._closing.is_set():
                    self._start_after_stop.add(camera_id)
                return "stopping"
            restarting = sum(1 for m in self._stopping.values() if m == "restart")
            if self._closing.is_set() or len(self.cameras) + len(self._starting) + restarting >= self.max_cameras:
                return "full"  # a worker shutting down takes nothing new: another one will
            self._starting.add(camera_id)
        try:
            return self._start(camera_id)
        finally:
            with self._lock:
                self._starting.discard(camera_id)

    def _start(self, camera_id: int) -> str:
        if not self.lease.acquire(camera_id):
            return "elsewhere"
        config = self.store.claim(camera_id)
        if config is None:
            self.lease.release(camera_id)
            return "gone"
        try:
            system = self.build(config, self)
            with self._lock:
                if not self._closing.is_set():
                    self._run(config, system)
                    self._ensure_heartbeat()
                    return "started"
        except Exception as exc:
            log.exception("Camera %s could not start", camera_id)
            self.store.release(camera_id, "error", f"Could not start: {exc}"[:300])
            self.lease.release(camera_id)
            return "gone"
        self.store.release(camera_id, "starting", self.SHUTDOWN_ERROR)  # closed while it was built
        self.lease.release(camera_id)
        return "full"

    def _run(self, config: dict, system: E2ESystem) -> None:
        """Start the camera's thread and list it in ``cameras`` (under the lock)."""
        stop = threading.Event()
        thread = threading.Thread(target=system.run, args=(stop,), name=f"camera-{config['id']}", daemon=True)
        thread.start()
        self.cameras[config["id"]] = Running(system, thread, stop, config)

    def stop(self, camera_id: int, *, state: str = "stopped", error: str = "", timeout: float | None = None) -> None:
        """Stop the camera and wait for it here (its thread, its last episodes, its release).

        Blocks the caller up to about twice ``timeout`` (default ``stop_timeout``); the heartbeat
        uses ``stop_later`` instead.
        """
        running = self._take(camera_id, "stop")
        if running is not None:
            self._finish_stop(camera_id, running, state, error, timeout)

    def stop_later(self, camera_id: int, *, state: str = "stopped", error: str = "", timeout: float | None = None,
                   expected: Running | None = None, inline: bool = False) -> bool:
        """Take the camera out of ``cameras`` and finish its stop on the control executor; never blocks.

        False when nothing was scheduled: the camera is not here (or is not ``expected``), or the
        control queue is full, in which case the camera stays as it was (the next heartbeat tries
        again; the executor counts and logs the rejection). ``inline``: stop it in the caller
        instead when the queue is full. Once the control executor is shut down (``close``), the
        stop runs in the caller.
        """
        running = self._take(camera_id, "stop", expected)
        if running is None:
            return False
        return self._schedule(camera_id, running, inline, self._finish_stop, camera_id, running, state, error, timeout)

    def restart_later(self, camera_id: int, config: dict, *, expected: Running | None = None,
                      timeout: float | None = None) -> bool:
        """Stop the camera and start it again with ``config``, on the control executor; never blocks.

        The camera keeps its lease meanwhile (the heartbeat renews it). False as for ``stop_later``.
        """
        running = self._take(camera_id, "restart", expected)
        if running is None:
            return False
        return self._schedule(camera_id, running, False, self._finish_restart, camera_id, running, config, timeout)

    def _take(self, camera_id: int, mode: str, expected: Running | None = None) -> Running | None:
        with self._lock:
            running = self.cameras.get(camera_id)
            if running is None or (expected is not None and running is not expected):
                return None
            del self.cameras[camera_id]
            self._stopping[camera_id] = mode
            return running

    def _schedule(self, camera_id: int, running: Running, inline: bool, fn, *args) -> bool:
        try:
            self.control.submit(fn, *args)
        except RuntimeError as exc:  # QueueFull (counted and logged there), or shut down (closing)
            if inline or not isinstance(exc, QueueFull):
                fn(*args)
                return True
            with self._lock:  # as it was: the next heartbeat tries again
                self._stopping.pop(camera_id, None)
                self._start_after_stop.discard(camera_id)
                self.cameras[camera_id] = running
            return False
        running.stop.set()  # the loop winds down now, whenever a control worker gets to it
        return True

    def _finish_stop(self, camera_id: int, running: Running, state: str, error: str, timeout: float | None) -> None:
        """The slow half of a stop: join the thread, finish the last episodes, release."""
        timeout = self.stop_timeout if timeout is None else timeout
        try:
            self._wind_down(camera_id, running, timeout, "releasing it anyway")
            self._release(camera_id, running, state, error, timeout)
        finally:
            self._stopped(camera_id)

    def _finish_restart(self, camera_id: int, running: Running, config: dict, timeout: float | None) -> None:
        """The slow half of a restart: join the old thread, then launch with the new settings."""
        timeout = self.stop_timeout if timeout is None else timeout
        try:
            self._wind_down(camera_id, running, timeout, "starting its new settings anyway")
            state, error = "starting", self.SHUTDOWN_ERROR
            try:
                system = None
                if self._stopping.get(camera_id) == "restart" and not self._closing.is_set():
                    system = self.build(config, self)  # outside the lock: a model load delays no heartbeat
                with self._lock:
                    mode = self._stopping.get(camera_id)
                    if system is not None and mode == "restart" and not self._closing.is_set():
                        self._run(config, system)
                        return
            except Exception as exc:
                log.exception("Camera %s could not restart", camera_id)
                state, error, mode = "error", f"Could not restart: {exc}"[:300], self._stopping.get(camera_id)
            if mode == "lost":  # another worker holds it now: nothing of ours to release
                return
            self._release(camera_id, running, state, error, timeout)
        finally:
            self._stopped(camera_id)

    @staticmethod
    def _wind_down(camera_id: int, running: Running, timeout: float, then: str) -> None:
        running.stop.set()
        running.thread.join(timeout)
        if running.thread.is_alive():
            log.warning("Camera %s did not stop within %.0f s; %s", camera_id, timeout, then)

    def _release(self, camera_id: int, running: Running, state: str, error: str, timeout: float) -> None:
        """Finish the camera's last episodes, then give up its database row and its lease."""
        try:
            running.system.wait_pending(timeout)
        except Exception:
            log.exception("Finishing the events of camera %s failed", camera_id)
        self.store.release(camera_id, state, error)
        self.lease.release(camera_id)

    def _stopped(self, camera_id: int) -> None:
        with self._lock:
            self._stopping.pop(camera_id, None)
            again = camera_id in self._start_after_stop and camera_id not in self.cameras
            self._start_after_stop.discard(camera_id)
        if again and not self._closing.is_set():
            try:
                log.info("Camera %s stopped; started again as asked meanwhile: %s", camera_id, self.start(camera_id))
            except Exception:
                log.exception("Camera %s could not start again after its stop", camera_id)

    def close(self) -> None:
        """Worker shutdown: stop every camera and wait for it; their leases go so another worker takes them."""
        self._closing.set()
        with self._lock:
            self._start_after_stop.clear()
        hb = self._hb_thread
        if hb is not None and hb is not threading.current_thread():
            hb.join(self.stop_timeout)  # a heartbeat never waits for a camera: this is short
        while True:
            with self._lock:
                ids = list(self.cameras)
            if not ids:
                break
            for camera_id in ids:  # in parallel on the control workers; here when that cannot queue them
                self.stop_later(camera_id, state="starting", error=self.SHUTDOWN_ERROR, inline=True)
            self.control.shutdown(wait=True)  # every stop and restart in progress finishes
        self.control.shutdown(wait=True)
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
            restarting = [cid for cid, mode in self._stopping.items() if mode == "restart"]
        self.lease.alive(ids + restarting)
        # Leases first (Redis): a database outage must not let them expire under running cameras,
        # nor a camera being restarted. Nothing here waits for a camera.
        for camera_id in ids + restarting:
            if (camera_id in self.cameras or self._stopping.get(camera_id) == "restart") \
                    and not self.lease.renew(camera_id):
                log.warning("Lost the lease of camera %s; stopping it here", camera_id)
                self._drop(camera_id)
        if not ids:
            return
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
                self.stop_later(camera_id, expected=running)  # stopped, deleted or taken over: the database says so
            elif config != running.config:
                log.info("Camera %s settings changed; restarting it", camera_id)
                self.restart_later(camera_id, config, expected=running)

    def _drop(self, camera_id: int) -> None:
        """The lease is gone: stop the loop, release nothing (another worker may hold the camera)."""
        with self._lock:
            running = self.cameras.pop(camera_id, None)
            if running is None and self._stopping.get(camera_id) == "restart":
                self._stopping[camera_id] = "lost"  # the restart does not launch it again
        if running:
            running.stop.set()

    def stats(self) -> dict[int, dict]:
        """Each running camera's figures (``E2ESystem.stats_snapshot``): what the heartbeat publishes."""
        return {cid: r.system.stats_snapshot() for cid, r in list(self.cameras.items())}

    def status(self) -> dict[int, dict]:
        """Each running camera's state, error and figures (fps, frames, lag, detector ms, events)."""
        return {cid: {**r.system.stats_snapshot(), "error": r.system.error} for cid, r in list(self.cameras.items())}
