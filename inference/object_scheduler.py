"""Which cameras' frames the object model looks at, and when: one scheduler per worker and model.

Object detection costs tens of milliseconds a frame on a CPU, so it runs only where something
moves, at most ``camera_fps`` times a second per camera (the camera's detector decides when to
offer), and under a worker-wide budget of ``budget_fps`` images a second shared by all cameras.

* ``offer(camera, image, timestamp, priority)`` never blocks the camera loop: it leaves the frame
  for the scheduler's thread, replacing the camera's previous offer if that one was not taken yet
  (counted as ``superseded``: a newer frame of the same camera is worth more).
* The thread takes the waiting offers with the highest ``priority`` first (the cameras' anomaly
  scores: the camera that looks most anomalous is labelled first), up to ``max_batch`` images a
  forward pass, as the budget allows (a token bucket refilled at ``budget_fps``, holding at most
  one batch). Offers older than ``max_age`` seconds are dropped (``expired``): a label for a frame
  long gone helps nobody.
* ``take(camera)`` gives the camera its newest finished result, once.

At most one offer per camera waits, so the queue is bounded by the number of cameras. A model
that fails on a batch fails those offers only (``failed``, logged); the thread goes on.
Plain Python (threads, numpy); no Django.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class _Offer:
    camera_id: int
    image: np.ndarray
    timestamp: float
    priority: float
    offered_at: float


@dataclass
class ObjectResult:
    """Detections of one offered frame: the frame's own timestamp, and when they were ready."""

    timestamp: float
    detections: list
    latency: float  # seconds from the offer to the result
    batch: int  # images in the forward pass that produced it


@dataclass
class _Counters:
    offered: int = 0
    superseded: int = 0
    expired: int = 0
    detected: int = 0
    failed: int = 0
    batches: int = 0
    model_seconds: float = 0.0
    latencies: list = field(default_factory=list)


class ObjectScheduler:
    def __init__(self, model, *, budget_fps: float = 10.0, max_batch: int = 8, max_age: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, start: bool = True):
        if budget_fps <= 0:
            raise ValueError("budget_fps must be positive")
        self.model = model
        self.budget_fps = float(budget_fps)
        self.max_batch = max(1, int(max_batch))
        self.max_age = float(max_age)
        self.clock = clock
        self._cond = threading.Condition()
        self._offers: dict[int, _Offer] = {}
        self._results: dict[int, ObjectResult] = {}
        self._forgotten: set[int] = set()  # cameras that stopped: a batch still running keeps nothing for them
        self._tokens = float(self.max_batch)
        self._refilled = clock()
        self._closed = False
        self.counters = _Counters()
        self._thread: threading.Thread | None = None
        if start:
            self._thread = threading.Thread(target=self._run, name="object-scheduler", daemon=True)
            self._thread.start()

    # -- the camera side -------------------------------------------------------------------------------------
    def offer(self, camera_id: int, image: np.ndarray, timestamp: float, priority: float = 0.0) -> None:
        """Leave a frame for the model (never blocks); it replaces this camera's waiting offer."""
        with self._cond:
            if self._closed:
                return
            self.counters.offered += 1
            self._forgotten.discard(camera_id)
            if camera_id in self._offers:
                self.counters.superseded += 1
            self._offers[camera_id] = _Offer(camera_id, image, float(timestamp), float(priority), self.clock())
            self._cond.notify()

    def take(self, camera_id: int) -> ObjectResult | None:
        """The camera's newest finished result, once (None when there is none new)."""
        with self._cond:
            return self._results.pop(camera_id, None)

    def forget(self, camera_id: int) -> None:
        """The camera stopped: drop its waiting offer and result."""
        with self._cond:
            self._offers.pop(camera_id, None)
            self._results.pop(camera_id, None)
            self._forgotten.add(camera_id)

    # -- the scheduler's thread ------------------------------------------------------------------------------
    def _refill(self, now: float) -> None:
        self._tokens = min(float(self.max_batch), self._tokens + (now - self._refilled) * self.budget_fps)
        self._refilled = now

    def next_batch(self) -> list[_Offer]:
        """Under the lock: drop stale offers, then take the most urgent ones the budget allows."""
        now = self.clock()
        for camera_id, offer in list(self._offers.items()):
            if now - offer.offered_at > self.max_age:
                del self._offers[camera_id]
                self.counters.expired += 1
        self._refill(now)
        room = min(self.max_batch, int(self._tokens))
        if room <= 0 or not self._offers:
            return []
        chosen = sorted(self._offers.values(), key=lambda o: (-o.priority, o.offered_at))[:room]
        for offer in chosen:
            del self._offers[offer.camera_id]
        self._tokens -= len(chosen)
        return chosen

    def run_batch(self, batch: list[_Offer]) -> None:
        """One forward pass for ``batch``; each camera's result is left for ``take``."""
        started = time.perf_counter()
        try:
            found = self.model.detect([offer.image for offer in batch])
        except Exception:
            log.exception("The object model failed on a batch of %d frames", len(batch))
            with self._cond:
                self.counters.failed += len(batch)
            return
        spent = time.perf_counter() - started
        now = self.clock()
        with self._cond:
            self.counters.batches += 1
            self.counters.detected += len(batch)
            self.counters.model_seconds += spent
            for offer, detections in zip(batch, found):
                if offer.camera_id in self._forgotten:
                    continue
                latency = now - offer.offered_at
                self._results[offer.camera_id] = ObjectResult(offer.timestamp, detections, latency, len(batch))
                self.counters.latencies.append(latency)
            del self.counters.latencies[:-500]

    def _run(self) -> None:
        while True:
            with self._cond:
                batch = []
                while not self._closed:
                    batch = self.next_batch()
                    if batch:
                        break
                    # Nothing to do, or the budget is spent: wait for an offer or for the next token.
                    wait = None if not self._offers else max(0.005, (1.0 - self._tokens) / self.budget_fps)
                    self._cond.wait(wait)
                if self._closed:
                    return
            self.run_batch(batch)

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._offers.clear()
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def stats(self) -> dict:
        """Offers, how many were superseded, expired or failed, images detected, batches, model time, latency."""
        with self._cond:
            c = self.counters
            latencies = sorted(c.latencies)
        pick = (lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 4)) if latencies \
            else (lambda q: None)
        return {
            "offered": c.offered, "superseded": c.superseded, "expired": c.expired, "failed": c.failed,
            "detected": c.detected, "batches": c.batches,
            "ms_per_image": round(1000 * c.model_seconds / c.detected, 2) if c.detected else None,
            "latency_p50": pick(0.5), "latency_p95": pick(0.95),
        }
