"""Live frames to the WebSocket groups of the fps tiers that have watchers (docs/websocket.md), and each
wanted camera's current picture to Redis (``GET /api/v1/cameras/{id}/picture/``, cameras/live.py)."""

from __future__ import annotations

import logging
import queue
import threading
import time

import cv2
import redis
from asgiref.sync import async_to_sync

from cameras import live
from cameras.groups import camera_frames_group

log = logging.getLogger(__name__)


BOX_COLOUR = (246, 125, 47)  # BGR: the blue of the pages' object boxes


def draw_objects(image, objects: list[dict]) -> None:
    """Each object's box (fractions of the frame) and label, drawn on ``image`` in place."""
    h, w = image.shape[:2]
    scale = max(0.35, min(0.6, w / 900))
    for obj in objects:
        try:
            x1, y1, x2, y2 = (int(round(v * s)) for v, s in zip(obj["box"], (w, h, w, h)))
        except (KeyError, TypeError, ValueError):
            continue
        cv2.rectangle(image, (x1, y1), (x2, y2), BOX_COLOUR, 1 if w < 500 else 2, cv2.LINE_AA)
        text = str(obj.get("label", ""))[:20]
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(0, y1 - th - 4)
        cv2.rectangle(image, (x1, top), (x1 + tw + 4, top + th + 4), BOX_COLOUR, -1)
        cv2.putText(image, text, (x1 + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                    cv2.LINE_AA)


class FramePublisher:
    """Live frames to the fps tiers that have watchers, encoded once, sent off the camera loop.

    Nothing is downscaled or encoded for a camera nobody watches. The camera thread only
    puts a message on a bounded queue; when Redis or the clients lag, frames are dropped
    there (frames are droppable; events never go this way).

    The current picture: while a camera's picture is wanted (``cameras.live.picture_wanted``, checked
    at most once a ``TIER_REFRESH``), one frame every ``picture_every`` seconds goes to Redis as a JPEG
    for ``picture_ttl`` seconds (the live frame's JPEG when one was encoded anyway, else one encode of
    the same size and quality); larger than ``picture_max_bytes``, it is skipped. ``picture_every`` 0:
    never (the default here; the worker passes ``CAMERA_PICTURE_SECONDS``).
    """

    TIER_REFRESH = 1.0

    def __init__(self, layer, client: redis.Redis, *, width: int, quality: int, queue_size: int = 64,
                 picture_every: float = 0.0, picture_ttl: float = 10.0, picture_max_bytes: int = 1_000_000):
        self.layer = layer
        self.r = client
        self.width = width
        self.quality = quality
        self.picture_every = float(picture_every or 0)
        self.picture_ttl = float(picture_ttl)
        self.picture_max_bytes = int(picture_max_bytes)
        self.queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._full = queue.Full
        self._tiers: dict[int, tuple[float, set[int]]] = {}
        self._last: dict[tuple[int, int], float] = {}
        self._wanted: dict[int, tuple[float, bool]] = {}
        self._kept: dict[int, float] = {}
        self.encoded = 0
        self.dropped = 0
        self.sent = 0
        self.pictures = 0  # current pictures stored in Redis
        self.pictures_skipped = 0  # too large, or the store failed
        threading.Thread(target=self._send_loop, name="frame-publisher", daemon=True).start()

    def tiers(self, camera_id: int) -> set[int]:
        now = time.monotonic()
        checked = self._tiers.get(camera_id)
        if checked is None or now - checked[0] >= self.TIER_REFRESH:
            try:
                tiers = live.watched_tiers(self.r, camera_id)
            except redis.RedisError:
                tiers = set()
            checked = self._tiers[camera_id] = (now, tiers)
        return checked[1]

    def rate(self, camera_id: int) -> float:
        return float(max(self.tiers(camera_id), default=0))

    def picture_due(self, camera_id: int, now: float) -> bool:
        """Whether this frame should become the camera's current picture (wanted, and the last is old)."""
        if self.picture_every <= 0 or self.r is None:
            return False
        kept = self._kept.get(camera_id)
        if kept is not None and now - kept < self.picture_every:
            return False
        checked = self._wanted.get(camera_id)
        if checked is None or now - checked[0] >= self.TIER_REFRESH:
            try:
                wanted = live.picture_wanted(self.r, camera_id)
            except redis.RedisError:
                wanted = False
            checked = self._wanted[camera_id] = (now, wanted)
        return checked[1]

    def forget_picture(self, camera_id: int) -> None:
        """The camera stopped: its picture is dropped (after any still queued), and kept afresh on restart."""
        self._kept.pop(camera_id, None)
        self._wanted.pop(camera_id, None)
        if self.picture_every > 0 and self.r is not None:
            try:
                self.queue.put_nowait((None, {"camera": camera_id, "forget": True}))
            except self._full:
                pass  # it expires by itself within picture_ttl

    def on_frame(self, camera_id: int, frame, captured_at: float) -> None:
        tiers = self.tiers(camera_id)
        now = time.monotonic()
        due = [fps for fps in tiers if now - self._last.get((camera_id, fps), 0.0) >= 0.9 / fps]
        picture = self.picture_due(camera_id, now)
        if not due and not picture:
            return
        image = frame.image
        h, w = image.shape[:2]
        if w > self.width:
            image = cv2.resize(image, (self.width, round(h * self.width / w)), interpolation=cv2.INTER_AREA)
        elif frame.objects:
            image = image.copy()  # the boxes are drawn on the copy the viewers get, never on the source's frame
        objects = [dict(o) for o in frame.objects]
        if objects:
            draw_objects(image, objects)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            return
        self.encoded += 1
        data = jpeg.tobytes()
        for fps in due:
            self._last[(camera_id, fps)] = now
            message = {"type": "camera.frame", "camera": camera_id, "fps": fps, "ts": captured_at,
                       "jpeg": data, "width": image.shape[1], "height": image.shape[0], "objects": objects}
            try:
                self.queue.put_nowait((camera_frames_group(camera_id, fps), message))
            except self._full:
                self.dropped += 1
        if picture:
            self._kept[camera_id] = now
            if len(data) > self.picture_max_bytes:
                self.pictures_skipped += 1
                return
            try:  # stored by the sending thread: the camera's thread never waits for Redis
                self.queue.put_nowait((None, {"camera": camera_id, "jpeg": data, "at": captured_at,
                                              "width": image.shape[1], "height": image.shape[0]}))
            except self._full:
                self.dropped += 1

    def _store_picture(self, message: dict) -> None:
        try:
            if message.get("forget"):
                live.picture_forget(self.r, message["camera"])
                return
            live.picture_store(self.r, message["camera"], message["jpeg"], at=message["at"],
                               width=message["width"], height=message["height"], ttl=self.picture_ttl)
            self.pictures += 1
        except redis.RedisError as exc:
            self.pictures_skipped += 1
            log.debug("Storing the picture of camera %s failed: %s", message["camera"], exc)

    #: Messages sent in one hop to the event loop: a hop costs more than a send, and the hop is taken
    #: under the GIL that the camera threads share.
    SEND_BATCH = 32

    def _send_loop(self) -> None:
        while True:
            batch = [self.queue.get()]
            while len(batch) < self.SEND_BATCH:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            if any(group is None for group, _message in batch):  # current pictures: to Redis, in order
                for group, message in batch:
                    if group is None:
                        self._store_picture(message)
                batch = [(group, message) for group, message in batch if group is not None]
                if not batch:
                    continue
            try:
                async_to_sync(self._send_all)(batch)
            except Exception as exc:  # the event loop itself failed: the whole batch is lost (frames are droppable)
                self.dropped += len(batch)
                log.debug("Frame push of %d frames failed: %s", len(batch), exc)

    async def _send_all(self, batch: list) -> None:
        for group, message in batch:
            try:
                await self.layer.group_send(group, message)
                self.sent += 1
            except Exception as exc:
                self.dropped += 1
                log.debug("Frame push to %s failed: %s", group, exc)
