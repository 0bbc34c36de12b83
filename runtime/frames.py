"""Live frames to the WebSocket groups of the fps tiers that have watchers (docs/websocket.md)."""

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
    """

    TIER_REFRESH = 1.0

    def __init__(self, layer, client: redis.Redis, *, width: int, quality: int, queue_size: int = 64):
        self.layer = layer
        self.r = client
        self.width = width
        self.quality = quality
        self.queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._full = queue.Full
        self._tiers: dict[int, tuple[float, set[int]]] = {}
        self._last: dict[tuple[int, int], float] = {}
        self.encoded = 0
        self.dropped = 0
        self.sent = 0
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

    def on_frame(self, camera_id: int, frame, captured_at: float) -> None:
        tiers = self.tiers(camera_id)
        if not tiers:
            return
        now = time.monotonic()
        due = [fps for fps in tiers if now - self._last.get((camera_id, fps), 0.0) >= 0.9 / fps]
        if not due:
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
