"""Each camera's score timeline (the camera page's 24 hours), kept in memory and stored in batches."""

from __future__ import annotations

import logging
import math
import threading
import time

log = logging.getLogger(__name__)


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
