"""The camera protocol's shared state in Redis: every key the product owns there, and the web side's reads.

Keys all start with ``settings.REDIS_KEY_PREFIX`` (two sites or two test runs can share a Redis):

* ``<prefix>:camera-lease:<camera>``: which worker runs the camera (written by runtime/lease.py);
* ``<prefix>:worker-alive:<worker>``: the cameras a live worker runs (its heartbeat, with a TTL);
* ``<prefix>:worker-stats:<worker>``: that worker's per-camera figures (JSON, with a TTL);
* ``<prefix>:live-watchers:<camera>``: who watches which camera at which fps tier.

Consumers register a subscription (camera, fps tier, channel) with an expiry and refresh it while
connected; the worker asks which tiers of a camera have live watchers before it encodes anything.
A crashed consumer's entries expire by themselves. The worker's side (leases, heartbeat, figures)
lives in runtime/; the web process reads here and never imports runtime.
"""

from __future__ import annotations

import json
import logging
import time

import redis
from django.conf import settings

log = logging.getLogger(__name__)

WATCH_TTL = 60.0  # seconds an entry lives without a refresh


def key(kind: str, name) -> str:
    """One Redis key of this product: ``<REDIS_KEY_PREFIX>:<kind>:<name>``."""
    return f"{settings.REDIS_KEY_PREFIX}:{kind}:{name}"


def lease_key(camera_id) -> str:
    return key("camera-lease", camera_id)


def alive_key(worker: str) -> str:
    return key("worker-alive", worker)


def stats_key(worker: str) -> str:
    return key("worker-stats", worker)


def watchers_key(camera_id: int) -> str:
    return key("live-watchers", int(camera_id))


def _name_of(redis_key: bytes, kind: str) -> str:
    return redis_key.decode()[len(key(kind, "")):]


def _field(fps: int, channel: str) -> str:
    return f"{int(fps)}|{channel}"


def client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)


def watch(r: redis.Redis, camera_id: int, fps: int, channel: str) -> None:
    r.hset(watchers_key(camera_id), _field(fps, channel), time.time() + WATCH_TTL)
    r.expire(watchers_key(camera_id), int(WATCH_TTL * 2))


def unwatch(r: redis.Redis, camera_id: int, fps: int, channel: str) -> None:
    r.hdel(watchers_key(camera_id), _field(fps, channel))


def watched_tiers(r: redis.Redis, camera_id: int) -> set[int]:
    """The fps tiers of this camera that have at least one live subscriber."""
    now = time.time()
    tiers, stale = set(), []
    for field, expires in r.hgetall(watchers_key(camera_id)).items():
        if float(expires) < now:
            stale.append(field)
            continue
        tiers.add(int(field.split(b"|", 1)[0]))
    if stale:
        r.hdel(watchers_key(camera_id), *stale)
    return tiers


def live_workers(r: redis.Redis | None = None) -> dict[str, list[int]]:
    """The workers whose heartbeat is live, with the cameras each runs."""
    r = r or client()
    out = {}
    for redis_key in r.scan_iter(match=alive_key("*")):
        value = r.get(redis_key)
        if value is not None:
            out[_name_of(redis_key, "worker-alive")] = [int(v) for v in value.decode().split(",") if v]
    return out


def tracked_objects(camera, r: redis.Redis | None = None) -> list[dict]:
    """The objects the worker running ``camera`` follows now (its latest published figures); [] when none."""
    if not camera.worker:
        return []
    try:
        value = (r or client()).get(stats_key(camera.worker))
        doc = json.loads(value) if value else {}
    except (redis.RedisError, ValueError):
        return []
    objects = ((doc.get("cameras") or {}).get(str(camera.pk)) or {}).get("objects")
    return objects if isinstance(objects, list) else []


def worker_stats(r: redis.Redis | None = None) -> dict[str, dict]:
    """The figures every live worker published (runtime/stats.py), by worker name: a scan and one MGET."""
    r = r or client()
    keys = sorted(r.scan_iter(match=stats_key("*"), count=1000))
    out = {}
    for redis_key, value in zip(keys, r.mget(keys) if keys else []):
        if value is None:
            continue  # expired between the scan and the read
        try:
            doc = json.loads(value)
        except ValueError:
            log.warning("Unreadable worker figures under %s", redis_key)
            continue
        out[_name_of(redis_key, "worker-stats")] = doc
    return out
