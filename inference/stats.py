"""Per-camera figures kept by the camera loop: cheap accumulators, no Django, no locks.

The camera thread is the only writer (``CameraStats.analysed`` / ``event``: a bisect, a few
integer and float updates, no allocation beyond the floats themselves). The heartbeat thread
reads ``snapshot()``, a plain JSON-able dict the worker publishes to Redis and the web side turns
into Prometheus series (``surveillance/metrics.py``). Reads take no lock: a snapshot copies the
bucket counts in one step and derives the count from that copy, so ``+Inf`` always equals
``count`` (Prometheus semantics); the sum may lag one observation behind, which is harmless.

Histograms are cumulative since the camera started on this worker: a restart resets them,
which Prometheus reads as a counter reset.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from itertools import accumulate
from typing import Callable

#: Detector time per analysed frame, in milliseconds (upper bounds, ``le``).
DETECTOR_MS_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 250, 500, 1000)
#: Capture-to-analysed lag per analysed frame, in seconds.
FRAME_LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Histogram:
    """Prometheus-style histogram: one count per bucket (the last one is ``+Inf``) and a sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds):
        bounds = tuple(float(b) for b in bounds)
        if not bounds or list(bounds) != sorted(set(bounds)) or not all(math.isfinite(b) for b in bounds):
            raise ValueError("histogram bounds must be finite, distinct and increasing")
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        if value != value:  # NaN: not a measurement
            return
        if value < 0.0:
            value = 0.0  # a clock step backwards; never a negative duration
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def snapshot(self) -> dict:
        """{"buckets": [[le, cumulative count], ...] (finite bounds), "count": n (= +Inf), "sum": s}."""
        counts = list(self.counts)  # one copy: the buckets and the count agree
        cumulative = list(accumulate(counts))
        return {
            "buckets": [[b, c] for b, c in zip(self.bounds, cumulative)],
            "count": cumulative[-1],
            "sum": round(self.sum, 6),
        }


def quantile(q: float, snapshot: dict | None) -> float | None:
    """Estimate the ``q`` quantile from a histogram snapshot, as Prometheus' histogram_quantile does.

    Linear interpolation inside the bucket that holds the rank (the first bucket starts at 0);
    a rank in the ``+Inf`` bucket gives the highest finite bound. None when nothing was observed.
    """
    if not snapshot or not snapshot.get("count"):
        return None
    if not 0.0 <= q <= 1.0:
        raise ValueError("q must lie in [0, 1]")
    count = snapshot["count"]
    rank = q * count
    lower, below = 0.0, 0
    for upper, cumulative in snapshot["buckets"]:
        if cumulative >= rank and cumulative > below:
            return lower + (upper - lower) * (rank - below) / (cumulative - below)
        lower, below = float(upper), cumulative
    return lower  # the +Inf bucket


class CameraStats:
    """What one camera's loop measured since it started on this worker."""

    __slots__ = ("started_at", "detector_ms", "frame_lag", "last_detector_ms", "last_lag_s", "events")

    def __init__(self, *, clock: Callable[[], float] = time.time,
                 detector_buckets=DETECTOR_MS_BUCKETS, lag_buckets=FRAME_LAG_BUCKETS):
        self.started_at = clock()
        self.detector_ms = Histogram(detector_buckets)
        self.frame_lag = Histogram(lag_buckets)
        self.last_detector_ms: float | None = None
        self.last_lag_s: float | None = None
        self.events = 0

    def analysed(self, detector_ms: float, lag_s: float | None) -> None:
        """One analysed frame: the detector's milliseconds and, when known, capture-to-analysed seconds."""
        self.detector_ms.observe(detector_ms)
        self.last_detector_ms = detector_ms
        if lag_s is not None:
            self.frame_lag.observe(lag_s)
            self.last_lag_s = lag_s

    def event(self) -> None:
        """An event was opened (each anomaly episode is one event, however often it is updated)."""
        self.events += 1

    def snapshot(self) -> dict:
        last_ms, last_lag = self.last_detector_ms, self.last_lag_s
        return {
            "started_at": round(self.started_at, 3),
            "events": self.events,
            "detector_ms_last": None if last_ms is None else round(last_ms, 3),
            "lag_s": None if last_lag is None else round(max(0.0, last_lag), 4),
            "detector_ms": self.detector_ms.snapshot(),
            "frame_lag_s": self.frame_lag.snapshot(),
        }
