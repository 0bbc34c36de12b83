"""An event's evidence on disk: the key frame and each object's thumbnail as JPEG, the clip as H.264 MP4.

Written by the camera's episode executor when an episode closes; the event record names the files. The clip is
encoded by the system's ffmpeg (libx264, yuv420p, faststart: every browser plays it); where ffmpeg is missing it is
written as before, VP8 WebM through OpenCV (logged once).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
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


CLIP_FOURCC = "VP80"  # the fallback: VP8 in WebM, which OpenCV's FFmpeg writes offline
log = logging.getLogger(__name__)
_warned: list[bool] = []


def _clip_frames(frames: list[tuple[float, np.ndarray]]):
    """(width, height, BGR frames of that even size): yuv420p and VP8 want even dimensions; a frame of another
    size (the source changed resolution) is scaled to the first one's."""
    h, w = frames[0][1].shape[:2]
    w, h = w - w % 2, h - h % 2

    def images():
        for _, image in frames:
            if image.ndim == 2:
                image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
            if image.shape[0] != h or image.shape[1] != w:
                image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
            yield np.ascontiguousarray(image)

    return w, h, images()


def store_clip(event_id: uuid.UUID, frames: list[tuple[float, np.ndarray]], fps: float) -> str:
    """Encode an event's frames as an H.264 MP4 under MEDIA_ROOT (in the episode executor); its relative name.

    Frames are BGR (or grayscale) at the analysis resolution. Where ffmpeg (FFMPEG_BINARY) is missing, the clip is a
    VP8 WebM written by OpenCV instead (logged). An ffmpeg that fails raises (the event is kept without a clip).
    """
    if not frames:
        return ""
    ffmpeg = shutil.which(settings.FFMPEG_BINARY)
    if ffmpeg is None:
        if not _warned:
            _warned.append(True)
            log.warning("ffmpeg (%s) is missing: event clips are written as VP8 WebM by OpenCV, which not every "
                        "browser plays; install ffmpeg for H.264 MP4 clips", settings.FFMPEG_BINARY)
        return _store_clip_webm(event_id, frames, fps)
    day = datetime.now(timezone.utc)
    name = f"events/clips/{day:%Y/%m/%d}/{event_id}.mp4"
    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h, images = _clip_frames(frames)
    tmp = path.with_name(f"{event_id}.part.mp4")
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
           "-s", f"{w}x{h}", "-r", f"{max(1.0, float(fps)):g}", "-i", "pipe:0", "-an", "-c:v", "libx264",
           "-preset", settings.CLIP_ENCODE_PRESET, "-crf", str(settings.CLIP_ENCODE_CRF), "-pix_fmt", "yuv420p",
           "-movflags", "+faststart", "-f", "mp4", str(tmp)]
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors)
        try:
            for image in images:
                proc.stdin.write(image.tobytes())
            proc.stdin.close()
            proc.wait(timeout=settings.CLIP_ENCODE_TIMEOUT_SECONDS)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        errors.seek(0)
        why = errors.read().decode(errors="replace").strip()[-300:]
    if proc.returncode != 0 or not tmp.exists() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"ffmpeg could not encode the clip (exit {proc.returncode}): {why}")
    os.replace(tmp, path)
    return name


def _store_clip_webm(event_id: uuid.UUID, frames: list[tuple[float, np.ndarray]], fps: float) -> str:
    """The fallback without ffmpeg: the frames as a VP8 WebM through OpenCV; its relative name."""
    day = datetime.now(timezone.utc)
    name = f"events/clips/{day:%Y/%m/%d}/{event_id}.webm"
    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h, images = _clip_frames(frames)
    tmp = path.with_name(f"{event_id}.part.webm")  # FFmpeg picks the container by the extension
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*CLIP_FOURCC), max(1.0, float(fps)), (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {CLIP_FOURCC} WebM here")
    try:
        for image in images:
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
