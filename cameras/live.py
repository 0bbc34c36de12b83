"""Who watches which camera at which frame rate: a small registry in Redis.

Consumers register a subscription (camera, fps tier, channel) with an expiry and refresh
it while connected; the worker asks which tiers of a camera have live watchers before it
encodes anything. A crashed consumer's entries expire by themselves.
"""

from __future__ import annotations

import time

import redis
from django.conf import settings

WATCH_TTL = 60.0  # seconds an entry lives without a refresh


def _key(camera_id: int) -> str:
    return f"live-watchers:{int(camera_id)}"


def _field(fps: int, channel: str) -> str:
    return f"{int(fps)}|{channel}"


def client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)


def watch(r: redis.Redis, camera_id: int, fps: int, channel: str) -> None:
    r.hset(_key(camera_id), _field(fps, channel), time.time() + WATCH_TTL)
    r.expire(_key(camera_id), int(WATCH_TTL * 2))


def unwatch(r: redis.Redis, camera_id: int, fps: int, channel: str) -> None:
    r.hdel(_key(camera_id), _field(fps, channel))


def watched_tiers(r: redis.Redis, camera_id: int) -> set[int]:
    """The fps tiers of this camera that have at least one live subscriber."""
    now = time.time()
    tiers, stale = set(), []
    for field, expires in r.hgetall(_key(camera_id)).items():
        if float(expires) < now:
            stale.append(field)
            continue
        tiers.add(int(field.split(b"|", 1)[0]))
    if stale:
        r.hdel(_key(camera_id), *stale)
    return tiers
