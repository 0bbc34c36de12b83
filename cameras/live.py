"""The camera protocol's shared state in Redis: every key the product owns there, and the web side's reads.

Keys all start with ``settings.REDIS_KEY_PREFIX`` (two sites or two test runs can share a Redis):

* ``<prefix>:camera-lease:<camera>``: which worker runs the camera (written by runtime/lease.py);
* ``<prefix>:worker-alive:<worker>``: the cameras a live worker runs (its heartbeat, with a TTL);
* ``<prefix>:worker-stats:<worker>``: that worker's per-camera figures (JSON, with a TTL);
* ``<prefix>:live-watchers:<camera>``: who watches which camera at which fps tier;
* ``<prefix>:camera-picture:<camera>``: the camera's current picture (a JPEG with when it was taken), kept
  by the worker only while the key below exists, for ``CAMERA_PICTURE_MAX_AGE`` seconds after each store;
* ``<prefix>:camera-picture-wanted:<camera>``: someone asked for that picture (``GET
  /api/v1/cameras/{id}/picture/``) in the last ``CAMERA_PICTURE_WANTED_SECONDS``.

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


def picture_key(camera_id) -> str:
    return key("camera-picture", int(camera_id))


def picture_wanted_key(camera_id) -> str:
    return key("camera-picture-wanted", int(camera_id))


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


# -- a camera's current picture (GET /api/v1/cameras/{id}/picture/) -------------------------------------
# The web side marks a camera's picture wanted when a client asks for it; the worker running the camera
# sees the mark (it checks at most once a second), and while it lasts keeps the newest frame it read as a
# JPEG every CAMERA_PICTURE_SECONDS, each stored for CAMERA_PICTURE_MAX_AGE seconds. A camera nobody asks
# for costs nothing but that check; a stopped camera's picture is dropped (or expires by itself).
def picture_want(r: redis.Redis, camera_id: int, seconds: float) -> None:
    """The web side: ask the worker to keep this camera's picture for the next ``seconds``."""
    r.set(picture_wanted_key(camera_id), b"1", px=max(1, int(seconds * 1000)))


def picture_wanted(r: redis.Redis, camera_id: int) -> bool:
    """The worker: whether someone asked for this camera's picture lately."""
    return bool(r.exists(picture_wanted_key(camera_id)))


def picture_store(r: redis.Redis, camera_id: int, jpeg: bytes, *, at: float, width: int, height: int,
                  ttl: float) -> None:
    """The worker: keep ``jpeg`` (taken at ``at``, epoch seconds) as the camera's picture for ``ttl`` seconds.

    One key per camera, every field and the expiry replaced together (one transaction).
    """
    name = picture_key(camera_id)
    pipe = r.pipeline(transaction=True)
    pipe.hset(name, mapping={"jpeg": jpeg, "at": repr(float(at)), "width": int(width), "height": int(height)})
    pipe.pexpire(name, max(1, int(ttl * 1000)))
    pipe.execute()


def picture_forget(r: redis.Redis, camera_id: int) -> None:
    """The worker: the camera stopped; its picture is no longer current."""
    r.delete(picture_key(camera_id))


def picture_read(r: redis.Redis, camera_id: int, *, want_seconds: float = 0) -> dict | None:
    """The camera's current picture: {"jpeg", "at", "width", "height"}, or None when there is none.

    Freshness is the key's expiry (Redis' clock, not the worker's: clocks of two machines may differ).
    With ``want_seconds`` the picture is also marked wanted, in the same round trip.
    """
    pipe = r.pipeline(transaction=False)
    pipe.hmget(picture_key(camera_id), "jpeg", "at", "width", "height")
    if want_seconds > 0:
        pipe.set(picture_wanted_key(camera_id), b"1", px=max(1, int(want_seconds * 1000)))
    jpeg, at, width, height = pipe.execute()[0]
    if not jpeg:
        return None
    try:
        return {"jpeg": jpeg, "at": float(at), "width": int(width), "height": int(height)}
    except (TypeError, ValueError):
        return None
