"""/ws/stream/: per-camera live subscriptions for events, status, scores, frames and learning.

The protocol is documented in docs/websocket.md.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from accounts.selectors import session_user, token_user

from . import live
from .groups import camera_frames_group, camera_group, user_group
from .models import Camera
from .selectors import camera_ids_for_user

log = logging.getLogger(__name__)

FPS_TIERS = (1, 5, 10, 30)
CLOSE_UNAUTHENTICATED = 4401
#: The server could not do its part for the socket (the database or Redis failed): its authority could
#: not be re-checked, or it could not join the live groups of its user or of a camera it subscribed
#: to. It is closed, never left open unchecked or half subscribed (silent): the client connects again,
#: with backoff, and subscribes again. Application close codes are 1000 or 3000-4999, hence not 1011.
CLOSE_RECHECK_FAILED = 4503
#: Closed after WS_RATE_LIMIT_CLOSE_AFTER messages in a row were refused by the rate limit.
CLOSE_RATE_LIMITED = 4429
MAX_MESSAGE_BYTES = 4096
#: Camera ids are database integers: anything larger cannot exist (and would overflow the query).
MAX_CAMERA_ID = 2**63 - 1
SCORE_INTERVAL = 1.0
#: A frame older than this when it reaches the connection is dropped: the client (or the
#: connection's queue) is behind, and it should get the newest picture, not a backlog.
FRAME_MAX_AGE = 2.0


class TokenBucket:
    """``burst`` messages at once, refilled at ``rate`` a second (per connection, in memory)."""

    def __init__(self, *, rate: float, burst: int):
        self.rate, self.burst = max(float(rate), 0.001), max(int(burst), 1)
        self.tokens, self.at = float(self.burst), time.monotonic()

    def _refill(self):
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def take(self) -> bool:
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def wait(self) -> float:
        """Seconds until the next message would be accepted."""
        self._refill()
        return max(0.0, (1 - self.tokens) / self.rate)


class StreamConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Refused before accept(): the handshake is closed with a clear application code.
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        # How the socket signed in decides how it is re-checked: a token socket has "jwt" in its scope.
        self.session_key = None if "jwt" in self.scope else getattr(self.scope.get("session"), "session_key", None)
        self.subs: dict[int, dict] = {}  # camera id -> {"fps": int, "frames": bool, "binary": bool}
        self.last_score: dict[int, float] = {}
        self.redis = None
        self.bucket = TokenBucket(rate=settings.WS_MESSAGES_PER_SECOND, burst=settings.WS_MESSAGE_BURST)
        self.refused_in_row = 0
        self.closing = False
        self.keeper = None
        await self.accept()
        try:
            await self.channel_layer.group_add(user_group(user.pk), self.channel_name)
        except Exception:
            # Redis unreachable (or coming back): a socket outside its groups would stay open and silent.
            return await self._server_trouble("joining the user's live group")
        self.keeper = asyncio.ensure_future(self._keep())

    async def disconnect(self, code):
        if not hasattr(self, "subs"):
            return
        if self.keeper is not None:
            self.keeper.cancel()
        try:
            for camera_id in list(self.subs):
                await self._leave(camera_id)
            await self.channel_layer.group_discard(user_group(self.user.pk), self.channel_name)
        except Exception as exc:  # Redis down: the memberships expire (group_expiry), the watchers (WATCH_TTL)
            log.warning("WebSocket of user %s: leaving its live groups failed: %s", self.user.pk, exc)

    # -- client messages ----------------------------------------------------------------
    async def receive(self, text_data=None, bytes_data=None):
        if self.closing:
            return
        if not self.bucket.take():
            return await self._rate_limited()
        self.refused_in_row = 0
        try:
            await self._handle(text_data, bytes_data)
        except Exception:
            # Bad input is answered in _handle, never raised: what raises is the server's side (the
            # database or Redis failing, e.g. half-way through a subscription). The socket's state is
            # then unknown to the client, so it is closed (4503) and the client starts again cleanly.
            await self._server_trouble("handling a message")

    async def _rate_limited(self):
        self.refused_in_row += 1
        if self.refused_in_row >= settings.WS_RATE_LIMIT_CLOSE_AFTER:
            return await self._shut(CLOSE_RATE_LIMITED, "rate_limited",
                                    f"Too many messages: {self.refused_in_row} refused in a row. "
                                    f"Closing the connection (code {CLOSE_RATE_LIMITED}).")
        await self._error("rate_limited", f"Too many messages (at most {settings.WS_MESSAGES_PER_SECOND:g} a second, "
                                          f"bursts of {settings.WS_MESSAGE_BURST}); this one was ignored.",
                          retry_after=round(self.bucket.wait(), 3))

    async def _handle(self, text_data, bytes_data):
        if bytes_data is not None or text_data is None:
            return await self._error("bad_request", "Send JSON text messages, not binary.")
        if len(text_data) > MAX_MESSAGE_BYTES or len(text_data.encode("utf-8", "replace")) > MAX_MESSAGE_BYTES:
            return await self._error("bad_request", f"Message too large (over {MAX_MESSAGE_BYTES} bytes).")
        try:
            message = json.loads(text_data)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            return await self._error("bad_request", "Message is not valid JSON.")
        if not isinstance(message, dict) or not isinstance(message.get("action"), str):
            return await self._error("bad_request", "Message must be a JSON object with an 'action'.")
        action = message["action"]
        if action == "ping":
            return await self._send_json({"type": "pong", "at": time.time()})
        if action not in ("subscribe", "unsubscribe"):
            return await self._error("bad_request", f"Unknown action '{action[:40]}'. Use subscribe, unsubscribe or ping.")
        camera_id = message.get("camera")
        if not isinstance(camera_id, int) or isinstance(camera_id, bool) or not 1 <= camera_id <= MAX_CAMERA_ID:
            return await self._error("bad_request", "'camera' must be a positive integer camera id.")
        if action == "unsubscribe":
            if camera_id not in self.subs:
                return await self._error("not_found", f"Not subscribed to camera {camera_id}.", camera=camera_id)
            await self._leave(camera_id)
            return await self._send_json({"type": "unsubscribed", "camera": camera_id})
        await self._subscribe(camera_id, message)

    async def _subscribe(self, camera_id: int, message: dict):
        camera = await self._camera(camera_id)
        if camera is None or camera_id not in await self._viewable():
            # The same answer for a camera that does not exist and one the user may not view (as the
            # API's 404): an outsider cannot learn which camera ids exist.
            return await self._error("not_found", f"No camera {camera_id}, or you may not view it.", camera=camera_id)
        fps = message.get("fps", camera.stream_fps)
        if type(fps) is not int or fps not in FPS_TIERS:  # not 5.0, not true
            return await self._error("bad_request", "'fps' must be one of 1, 5, 10 or 30.", camera=camera_id)
        frames = message.get("frames", True)
        binary = message.get("binary", False)
        if not isinstance(frames, bool) or not isinstance(binary, bool):
            return await self._error("bad_request", "'frames' and 'binary' must be true or false.", camera=camera_id)
        if camera_id in self.subs:
            await self._leave(camera_id)
        self.subs[camera_id] = {"fps": fps, "frames": frames, "binary": binary}
        await self.channel_layer.group_add(camera_group(camera_id), self.channel_name)
        if frames:
            await self.channel_layer.group_add(camera_frames_group(camera_id, fps), self.channel_name)
            await database_sync_to_async(self._watch)(camera_id, fps)
        await self._send_json({
            "type": "subscribed", "camera": camera_id, "fps": fps, "frames": frames, "binary": binary,
            "state": camera.state,
        })

    async def _leave(self, camera_id: int):
        sub = self.subs.pop(camera_id, None)
        if sub is None:
            return
        await self.channel_layer.group_discard(camera_group(camera_id), self.channel_name)
        if sub["frames"]:
            await self.channel_layer.group_discard(camera_frames_group(camera_id, sub["fps"]), self.channel_name)
            await database_sync_to_async(self._unwatch)(camera_id, sub["fps"])

    # -- keeping the socket honest ----------------------------------------------------------------
    async def _keep(self):
        """Every WS_PERMISSION_RECHECK_SECONDS: re-check the user's authority (closing the socket when it
        is gone) and drop subscriptions it no longer allows; now and then refresh watcher entries and
        group memberships (which channels_redis expires after its group_expiry). Whatever fails here
        closes the socket: it is never left open unchecked."""
        interval = settings.WS_PERMISSION_RECHECK_SECONDS
        rejoin_every = getattr(self.channel_layer, "group_expiry", 86400) / 4
        refreshed = rejoined = time.monotonic()
        try:
            while not self.closing:
                await asyncio.sleep(interval)
                if not await self._check_authority():
                    return
                if time.monotonic() - refreshed > live.WATCH_TTL / 3:
                    refreshed = time.monotonic()
                    for camera_id, sub in list(self.subs.items()):
                        if sub["frames"]:
                            await database_sync_to_async(self._watch)(camera_id, sub["fps"])
                if time.monotonic() - rejoined > rejoin_every:
                    rejoined = time.monotonic()
                    await self._rejoin()
        except asyncio.CancelledError:
            pass
        except Exception:
            await self._recheck_failed()

    async def _check_authority(self) -> bool:
        """Reload the user as the socket signed in (session or token) and drop the subscriptions it may
        no longer view. False, with the socket closed, when the user is no longer signed in."""
        user, why, allowed = await database_sync_to_async(self._authority)(bool(self.subs))
        if user is None:
            await self._shut(CLOSE_UNAUTHENTICATED, "unauthenticated", why)
            return False
        self.user = user  # is_active, is_staff and global permissions as they are now
        if allowed is not None:
            await self._drop_forbidden(allowed)
        return True

    def _authority(self, subscribed: bool):
        """One trip to the database thread: ``(user, why, camera ids the user may view)``; the ids only
        when the socket has subscriptions, the user None (and ``why``) when no longer signed in."""
        if "jwt" in self.scope:
            user, why = token_user(self.scope["jwt"])
        else:
            user, why = session_user(self.session_key, self.user.pk)
        return user, why, camera_ids_for_user(user) if user is not None and subscribed else None

    async def _drop_forbidden(self, allowed: set[int]):
        for camera_id in [c for c in self.subs if c not in allowed]:
            await self._leave(camera_id)
            await self._send_json({"type": "unsubscribed", "camera": camera_id, "reason": "forbidden"})
            await self._error("forbidden", f"Your access to camera {camera_id} was revoked.", camera=camera_id)

    async def _recheck_failed(self):
        log.exception("WebSocket of user %s: re-checking its authority failed; closing it (code %s)",
                      self.user.pk, CLOSE_RECHECK_FAILED)
        await self._shut(CLOSE_RECHECK_FAILED, "server_error",
                         "The server could not re-check your access; connect again.")

    async def _server_trouble(self, doing: str):
        """The database or Redis failed while ``doing``: close (4503) rather than stay open half done."""
        log.warning("WebSocket of user %s: %s failed; closing it (code %s)", self.user.pk, doing,
                    CLOSE_RECHECK_FAILED, exc_info=True)
        await self._shut(CLOSE_RECHECK_FAILED, "server_error",
                         "The server is failing for a moment (database or Redis); connect again and subscribe again.")

    async def _rejoin(self):
        await self.channel_layer.group_add(user_group(self.user.pk), self.channel_name)
        for camera_id, sub in list(self.subs.items()):
            await self.channel_layer.group_add(camera_group(camera_id), self.channel_name)
            if sub["frames"]:
                await self.channel_layer.group_add(camera_frames_group(camera_id, sub["fps"]), self.channel_name)

    async def permissions_changed(self, message):
        try:
            await self._check_authority()
        except Exception:
            await self._recheck_failed()

    # -- group messages (never write to the database) --------------------------------------------
    async def event_message(self, message):
        event = message["event"]
        if event.get("camera") in self.subs:
            await self._send_json({"type": "event", "event": event})

    async def camera_status(self, message):
        if message.get("camera") in self.subs:
            await self._send_json({"type": "camera.status", "camera": message["camera"], "state": message["state"],
                                   "error": message.get("error", ""), "at": message.get("at")})

    async def camera_score(self, message):
        camera_id = message.get("camera")
        if camera_id not in self.subs:
            return
        now = time.monotonic()
        if now - self.last_score.get(camera_id, 0) < SCORE_INTERVAL:
            return
        self.last_score[camera_id] = now
        await self._send_json({"type": "score", "camera": camera_id, "score": message["score"], "at": message["at"]})

    async def camera_frame(self, message):
        camera_id = message.get("camera")
        sub = self.subs.get(camera_id)
        if sub is None or not sub["frames"] or sub["fps"] != message.get("fps"):
            return
        if time.time() - float(message["ts"]) > FRAME_MAX_AGE:
            self.frames_dropped = getattr(self, "frames_dropped", 0) + 1
            return  # frames are droppable; events never take this path
        header = {"type": "frame", "camera": camera_id, "ts": message["ts"], "fps": sub["fps"],
                  "width": message.get("width"), "height": message.get("height"),
                  "objects": message.get("objects") or []}
        if sub["binary"]:
            if self.closing:
                return
            head = json.dumps(header).encode()
            await self.send(bytes_data=len(head).to_bytes(4, "big") + head + message["jpeg"])
        else:
            header["jpeg"] = base64.b64encode(message["jpeg"]).decode()
            await self._send_json(header)

    async def camera_learning(self, message):
        """A learning job of the camera moved on (docs/websocket.md, "learning")."""
        learning = message.get("learning") or {}
        if learning.get("camera") in self.subs:
            await self._send_json(learning)

    async def camera_arming(self, message):
        """The camera's arming mode changed (arming/services.py; docs/alerts.md, "Arming")."""
        if message.get("camera") in self.subs:
            await self._send_json({"type": "arming", "camera": message["camera"], **(message.get("arming") or {})})

    async def notification(self, message):
        await self._send_json({"type": "notification", **message.get("payload", {})})

    async def recording_export(self, message):
        """Progress of one of the user's exports (recordings/services.py; docs/websocket.md, "export"): sent to the
        user's own group only, so no camera check here."""
        await self._send_json({"type": "export", **{k: v for k, v in (message.get("export") or {}).items()
                                                    if k != "type"}})

    # -- helpers -----------------------------------------------------------------------------------
    async def _send_json(self, data):
        if self.closing:  # nothing more after the last error of _shut
            return
        await self.send(text_data=json.dumps(data, default=str))

    async def _shut(self, code, error, text):
        """Send a last ``error`` saying why, then close the socket with ``code``; nothing is sent after."""
        if self.closing:
            return
        self.closing = True
        await self.send(text_data=json.dumps({"type": "error", "code": error, "message": text}))
        await self.close(code=code)

    async def _error(self, code, text, **extra):
        await self._send_json({"type": "error", "code": code, "message": text, **extra})

    @database_sync_to_async
    def _camera(self, camera_id):
        return Camera.objects.filter(pk=camera_id).only("id", "stream_fps", "state").first()

    @database_sync_to_async
    def _viewable(self):
        return camera_ids_for_user(self.user)

    def _watch(self, camera_id, fps):
        live.watch(self._redis(), camera_id, fps, self.channel_name)

    def _unwatch(self, camera_id, fps):
        live.unwatch(self._redis(), camera_id, fps, self.channel_name)

    def _redis(self):
        if self.redis is None:
            self.redis = live.client()
        return self.redis
