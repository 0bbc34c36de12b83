"""Each heartbeat, the worker's per-camera figures as one JSON value in Redis (read by /metrics)."""

from __future__ import annotations

import json
import os
import time

import redis

from cameras import live


class StatsPublisher:
    """This worker's figures under ``cameras.live.stats_key(worker)``.

    The key expires after ``ttl`` seconds (a few heartbeats), so a worker that stops or dies drops
    out of /metrics by itself. ``extra`` adds worker-wide figures. Read by ``cameras.live.worker_stats``.

    ``describe_queue`` (the worker's ``inference.describe_queue.DescribeQueue``) adds its figures under
    ``"describe_queue"``: ``waiting``, ``running``, ``requests_per_minute``, ``wait_s_p50`` / ``_p95`` /
    ``_p99`` (seconds, over the last 1,000 started requests), the counters ``submitted``, ``started``,
    ``completed``, ``failed``, ``timeouts``, ``dropped_budget``, ``dropped_bound``, ``dropped_deadline``,
    ``superseded``, and the histograms ``wait_s`` and ``run_s`` (``inference.stats.Histogram`` snapshots,
    as the cameras' ``frame_lag_s``). Note: ``surveillance/metrics.py`` does not turn them into Prometheus
    series yet (worker-level families such as ``surveillance_worker_describe_requests{outcome}`` and a
    ``surveillance_worker_describe_wait_seconds`` histogram would go next to ``live_frames`` there).
    """

    def __init__(self, worker: str, ttl: float, client: redis.Redis | None = None, extra=None,
                 describe_queue=None):
        self.worker = worker
        self.ttl_ms = max(1000, int(ttl * 1000))
        self.r = client or live.client()
        self.extra = extra
        self.describe_queue = describe_queue

    def document(self, cameras: dict[int, dict]) -> dict:
        doc = {"worker": self.worker, "at": round(time.time(), 3), "pid": os.getpid(),
               "cameras": {str(cid): figures for cid, figures in cameras.items()}}
        if self.extra is not None:
            doc.update(self.extra())
        if self.describe_queue is not None:
            doc["describe_queue"] = self.describe_queue.stats()
        return doc

    def publish(self, cameras: dict[int, dict]) -> None:
        value = json.dumps(self.document(cameras), separators=(",", ":"), allow_nan=False)
        self.r.set(live.stats_key(self.worker), value, px=self.ttl_ms)
