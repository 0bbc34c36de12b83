"""An event's evidence on disk: the key frame and each object's thumbnail as JPEG, the clip as VP8 WebM.

Written by the camera's episode executor when an episode closes; the event record names the files.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
from django.conf import settings


def store_snapshot(event_id: uuid.UUID, image: np.ndarray) -> str:
    """Encode the key frame once and write it under MEDIA_ROOT; return its relative name."""
    day = datetime.now(timezone.utc)
    name = f"events/snapshots/{day:%Y/%m/%d}/{event_id}.jpg"
    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError("JPEG encoding failed")
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(jpeg.tobytes())
    os.replace(tmp, path)
    return name


CLIP_FOURCC = "VP80"  # VP8 in WebM: OpenCV's FFmpeg writes it offline, and every current browser plays it


def store_clip(event_id: uuid.UUID, frames: list[tuple[float, np.ndarray]], fps: float) -> str:
    """Encode an event's frames as a VP8 WebM under MEDIA_ROOT (in the episode executor); its relative name.

    Frames are BGR (or grayscale) at the analysis resolution; a frame of another size (the
    source changed resolution) is scaled to the first one's.
    """
    if not frames:
        return ""
    day = datetime.now(timezone.utc)
    name = f"events/clips/{day:%Y/%m/%d}/{event_id}.webm"
    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    first = frames[0][1]
    h, w = first.shape[:2]
    w, h = w - w % 2, h - h % 2  # VP8 wants even dimensions
    tmp = path.with_name(f"{event_id}.part.webm")  # FFmpeg picks the container by the extension
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*CLIP_FOURCC), max(1.0, float(fps)), (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {CLIP_FOURCC} WebM here")
    try:
        for _, image in frames:
            if image.ndim == 2:
                image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
            if image.shape[0] != h or image.shape[1] != w:
                image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
            writer.write(image)
    finally:
        writer.release()
    if not tmp.exists() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError("The clip writer produced no file")
    os.replace(tmp, path)
    return name


def store_crops(event_id: uuid.UUID, crops: list[tuple[int, np.ndarray]]) -> dict[int, str]:
    """Each object's thumbnail (its best crop) as a JPEG under MEDIA_ROOT: {track: relative name}."""
    day = datetime.now(timezone.utc)
    folder = f"events/objects/{day:%Y/%m/%d}"
    out = {}
    for track, image in crops:
        name = f"{folder}/{event_id}-{int(track)}.jpg"
        path = Path(settings.MEDIA_ROOT) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            continue
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(jpeg.tobytes())
        os.replace(tmp, path)
        out[int(track)] = name
    return out
