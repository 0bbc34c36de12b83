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
        self.r.set(live.stats_key(self.worker), value, px=self.ttl_ms)
