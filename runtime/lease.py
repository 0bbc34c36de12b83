"""Each camera runs on exactly one worker: its lease in Redis, and the worker's liveness key.

Keys are built by ``cameras.live`` (the one place for the product's Redis keys).
"""

from __future__ import annotations

import redis

from cameras import live


class RedisLease:
    """A key per camera with a time-to-live, holding the name of the worker that runs it."""

    # Renew our lease; a lease that vanished (it expired while the database or Redis was away, or
    # Redis restarted empty) is taken again when nobody else holds it: the camera still runs here.
    _RENEW = ("local v = redis.call('get', KEYS[1]) "
              "if v == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end "
              "if not v then return redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2]) and 1 or 0 end "
              "return 0")
    _RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

    def __init__(self, worker: str, ttl: int, client: redis.Redis | None = None):
        self.worker = worker
        self.ttl = ttl
        self.r = client or live.client()

    def acquire(self, camera_id: int) -> bool:
        if self.r.set(live.lease_key(camera_id), self.worker, nx=True, ex=self.ttl):
            return True
        return self.renew(camera_id)

    def renew(self, camera_id: int) -> bool:
        return bool(self.r.eval(self._RENEW, 1, live.lease_key(camera_id), self.worker, self.ttl))

    def release(self, camera_id: int) -> None:
        self.r.eval(self._RELEASE, 1, live.lease_key(camera_id), self.worker)

    def alive(self, cameras: list[int]) -> None:
        self.r.set(live.alive_key(self.worker), ",".join(map(str, cameras)), ex=self.ttl)
