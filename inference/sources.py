"""Frame sources: video files, network streams and local devices through OpenCV, and the demo scene.

``open_source`` validates a URL (``inference.source_urls``) and picks the class without opening
it. Everything implements :class:`inference.base.FrameSource`:

* :class:`OpenCVSource` - files (``file:///abs/path`` or a plain path), ``rtsp(s)://``,
  ``http(s)://`` streams and ``device://N`` cameras through OpenCV / FFmpeg. Live sources keep
  only the newest frame (a background grabber thread), so a slow consumer never lags behind
  real time. Stream hosts are checked again at every (re)connection.
* :class:`inference.demo.DemoSource` - ``demo://``, the synthetic walkway scene.

Nothing here imports Django.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

import cv2
import numpy as np

from .addresses import AddressNotAllowed, check_host
from .base import Frame, FrameSource, SourceError

log = logging.getLogger(__name__)

from .demo import DemoSource
from .source_urls import STREAM_SCHEMES, check_file_root, mask_credentials, validate_source_url

log = logging.getLogger(__name__)


def open_source(url: str, *, loop: bool = False, allowed_networks=None, networks_where: str = "",
                **options) -> FrameSource:
    """The FrameSource for ``url`` (validated first); not opened yet.

    ``loop`` rewinds files at their end (ignored by live and demo sources, which never end).
    ``allowed_networks``: internal networks a stream host may resolve to, checked again at
    every (re)connection (None: any; a callable is asked each time, so a changed policy applies
    at the next connection); ``networks_where`` names the setting for the message. ``options`` go to the class (e.g. ``capture_factory``,
    ``read_timeout`` for OpenCVSource).
    """
    normalised = validate_source_url(url, allowed_networks=allowed_networks, networks_where=networks_where)
    if normalised.startswith("demo://"):
        return DemoSource(normalised)
    return OpenCVSource(normalised, loop=loop, allowed_networks=allowed_networks, networks_where=networks_where,
                        **options)


# --------------------------------------------------------------------------------------------
# OpenCV: files, streams, devices
# --------------------------------------------------------------------------------------------

CaptureFactory = Callable[[Any, int, list], Any]


def default_capture_factory(target, api_preference: int, params: list):
    """``cv2.VideoCapture(target, api, params)``; tests inject a fake with the same interface."""
    if params:
        return cv2.VideoCapture(target, api_preference, params)
    return cv2.VideoCapture(target, api_preference)


def _fourcc(value: float) -> str:
    code = int(value)
    return "".join(chr((code >> 8 * i) & 0xFF) for i in range(4)).strip("\x00 ")


def _looks_like_text(path: str) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if not head:
        return True
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a multibyte char cut at the end
            return False
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head)
    return printable / len(head) > 0.95


class OpenCVSource(FrameSource):
    """Video files, RTSP/HTTP streams and local devices through OpenCV.

    Files: ``is_live`` False, timestamps are media time (index / native fps), ``skip`` grabs
    without decoding, ``loop=True`` rewinds at the end instead of returning None.

    Streams and devices: ``is_live`` True, wall-clock timestamps. A grabber thread reads
    continuously and keeps only the newest frame; ``read()`` waits (up to ``read_timeout``)
    for a frame newer than the last one it returned. A dropped or stalled stream raises
    SourceError. ``Frame.index`` counts frames received, so gaps show dropped frames.
    """

    def __init__(
        self,
        url: str,
        *,
        loop: bool = False,
        capture_factory: CaptureFactory | None = None,
        open_timeout: float = 10.0,
        read_timeout: float = 10.0,
        allowed_networks=None,
        networks_where: str = "",
        file_roots=None,
    ):
        super().__init__(url)
        self.loop = loop
        self.allowed_networks = allowed_networks
        self.networks_where = networks_where
        #: Folders a file source must (still) lie in when opened (None: anywhere).
        self.file_roots = file_roots
        #: How many times a looping file went back to its start (a cut in the picture).
        self.rewinds = 0
        self.capture_factory = capture_factory or default_capture_factory
        self.open_timeout = float(open_timeout)
        self.read_timeout = float(read_timeout)
        self._cap = None
        self._fps: float | None = None
        self._shape: tuple[int, ...] | None = None
        self._index = 0
        self._pending: np.ndarray | None = None
        # live state
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._latest: tuple[np.ndarray, int, float] | None = None
        self._last_seq = -1
        self._min_seq = 0
        self._error: str | None = None

        if url.startswith("device://"):
            self.kind = "device"
            self.target: Any = int(url[len("device://"):])
        elif url.split("://", 1)[0].lower() in STREAM_SCHEMES:
            self.kind = "stream"
            self.target = url
        else:
            self.kind = "file"
            self.target = unquote(urlsplit(url).path) if url.startswith("file://") else url
        self._file_path = self.target if self.kind == "file" else None  # as saved; target: what was opened
        self.is_live = self.kind != "file"

    # ---- common ---------------------------------------------------------------------------
    @property
    def native_fps(self) -> float | None:
        return self._fps

    @property
    def display_url(self) -> str:
        return mask_credentials(self.url)

    def _make_capture(self):
        if self.kind == "file":
            return self.capture_factory(self.target, cv2.CAP_FFMPEG, [])
        if self.kind == "device":
            return self.capture_factory(self.target, cv2.CAP_ANY, [])
        params = []
        for name, seconds in (("CAP_PROP_OPEN_TIMEOUT_MSEC", self.open_timeout),
                              ("CAP_PROP_READ_TIMEOUT_MSEC", self.read_timeout)):
            prop = getattr(cv2, name, None)
            if prop is not None:
                params += [prop, int(seconds * 1000)]
        return self.capture_factory(self.target, cv2.CAP_FFMPEG, params)

    def _read_fps(self, cap) -> float | None:
        try:
            fps = float(cap.get(cv2.CAP_PROP_FPS))
        except Exception:  # noqa: BLE001 - a fake or odd backend
            return None
        return fps if math.isfinite(fps) and 0.1 <= fps <= 1000 else None

    def _check_shape(self, image: np.ndarray) -> None:
        if self._shape is None:
            self._shape = image.shape
        elif image.shape[:2] != self._shape[:2]:
            old_h, old_w = self._shape[:2]
            new_h, new_w = image.shape[:2]
            raise SourceError(
                f"resolution changed mid-stream from {old_w}x{old_h} to {new_w}x{new_h}: {self.display_url}"
            )

    @staticmethod
    def _as_bgr(image: np.ndarray) -> np.ndarray:
        if image.ndim == 2:
            return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if image.shape[2] == 4:
            return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        return image

    def open(self) -> None:
        self.close()
        self._index = 0
        self._shape = None
        self._error = None
        self._stop.clear()
        if self.kind == "file":
            if self.file_roots is not None:
                # The path may lead elsewhere since it was saved (a symlink swapped): check where it leads
                # now, and open that resolved file (a loop's rewind reopens it, not the link).
                try:
                    self.target = check_file_root(self._file_path, self.file_roots)
                except ValueError as exc:
                    raise SourceError(str(exc)) from None
            self._open_file()
        else:
            if self.kind not in ("device",):
                try:  # the name may point elsewhere since it was saved: check what it resolves to now
                    allowed = self.allowed_networks() if callable(self.allowed_networks) else self.allowed_networks
                    check_host(urlsplit(self.url).hostname or "", allowed, what="camera host",
                               where=self.networks_where)
                except AddressNotAllowed as exc:
                    raise SourceError(str(exc)) from None
            self._open_live()

    def close(self) -> None:
        if self._thread is not None:
            self._stop.set()
            with self._cond:
                self._cond.notify_all()
            self._thread.join(timeout=self.read_timeout + 1.0)
            if self._thread.is_alive():  # blocked in a backend read; it releases the capture itself
                log.warning("frame grabber for %s did not stop in time", self.display_url)
            self._thread = None
            self._cap = None  # owned (and released) by the grabber thread
        if self._cap is not None:
            try:
                self._cap.release()
            except Exception:  # noqa: BLE001
                pass
            self._cap = None
        self._pending = None
        self._latest = None

    # ---- files ----------------------------------------------------------------------------
    def _open_file(self) -> None:
        path = self.target
        if not os.path.exists(path):
            raise SourceError(f"file not found: {path}")
        if not os.path.isfile(path):
            raise SourceError(f"not a regular file: {path}")
        if not os.access(path, os.R_OK):
            raise SourceError(f"file is not readable (permission denied): {path}")
        if os.path.getsize(path) == 0:
            raise SourceError(f"not a video: the file is empty: {path}")
        if _looks_like_text(path):
            raise SourceError(f"not a video: the file looks like text: {path}")
        cap = self._make_capture()
        if cap is None or not cap.isOpened():
            raise SourceError(f"not a video or cannot decode (unknown or corrupt container): {path}")
        codec = _fourcc(cap.get(cv2.CAP_PROP_FOURCC)) if hasattr(cap, "get") else ""
        if codec.lower() in ("ansi", "text", "tty"):
            cap.release()
            raise SourceError(f"not a video: FFmpeg reads the file as text ({codec}): {path}")
        ok, image = cap.read()
        if not ok or image is None or image.size == 0:
            cap.release()
            raise SourceError(f"cannot decode any frame (corrupt file or unsupported codec): {path}")
        self._cap = cap
        self._fps = self._read_fps(cap)
        self._pending = self._as_bgr(image)
        self._check_shape(self._pending)

    def _rewind(self) -> bool:
        """Start the file again (reopening is more reliable than seeking); False if it fails."""
        if self._cap is not None:
            self._cap.release()
        cap = self._make_capture()
        if cap is None or not cap.isOpened():
            self._cap = None
            return False
        self._cap = cap
        self.rewinds += 1
        return True

    def _file_timestamp(self, index: int) -> float:
        return index / (self._fps or 25.0)

    def _read_file(self) -> Frame | None:
        if self._cap is None:
            raise SourceError(f"source is not open: {self.display_url}")
        if self._pending is not None:
            image, self._pending = self._pending, None
        else:
            ok, image = self._cap.read()
            if not ok or image is None:
                if not self.loop or self._index == 0:
                    return None
                if not self._rewind():
                    raise SourceError(f"cannot reopen the file to loop it: {self.target}")
                ok, image = self._cap.read()
                if not ok or image is None:
                    return None
            image = self._as_bgr(image)
        self._check_shape(image)
        frame = Frame(image=image, timestamp=self._file_timestamp(self._index), index=self._index)
        self._index += 1
        return frame

    def _skip_file(self, n: int) -> None:
        if self._cap is None:
            raise SourceError(f"source is not open: {self.display_url}")
        for _ in range(max(0, int(n))):
            if self._pending is not None:
                self._pending = None
                self._index += 1
                continue
            if not self._cap.grab():
                if not self.loop or self._index == 0:
                    return
                if not self._rewind() or not self._cap.grab():
                    return
            self._index += 1

    # ---- live -----------------------------------------------------------------------------
    def _open_live(self) -> None:
        what = f"camera device {self.target}" if self.kind == "device" else f"stream {self.display_url}"
        try:
            cap = self._make_capture()
        except Exception as exc:  # noqa: BLE001 - backend errors become SourceError
            raise SourceError(f"{what} unreachable: {mask_credentials(str(exc))}") from exc
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            if self.kind == "device":
                raise SourceError(f"camera device {self.target} is not available (cannot open it)")
            raise SourceError(
                f"stream unreachable: cannot connect to {self.display_url} within {self.open_timeout:g} s "
                "(wrong address, camera offline, or credentials refused)"
            )
        self._cap = cap
        self._fps = self._read_fps(cap)
        self._latest = None
        self._last_seq = -1
        self._min_seq = 0
        self._thread = threading.Thread(
            target=self._grab_loop, args=(cap,), name=f"grabber:{self.display_url}", daemon=True
        )
        self._thread.start()

    def _grab_loop(self, cap) -> None:
        seq = 0
        try:
            while not self._stop.is_set():
                try:
                    ok, image = cap.read()
                except Exception as exc:  # noqa: BLE001
                    ok, image = False, None
                    reason = f"stream read failed: {mask_credentials(str(exc))}"
                else:
                    reason = "stream dropped: no more frames (connection lost or camera stopped)"
                if self._stop.is_set():
                    break
                if not ok or image is None:
                    with self._cond:
                        self._error = f"{reason}: {self.display_url}"
                        self._cond.notify_all()
                    return
                image = self._as_bgr(image)
                with self._cond:
                    if self._shape is None:
                        self._shape = image.shape
                    elif image.shape[:2] != self._shape[:2]:
                        old_h, old_w = self._shape[:2]
                        new_h, new_w = image.shape[:2]
                        self._error = (
                            f"resolution changed mid-stream from {old_w}x{old_h} to {new_w}x{new_h}: "
                            f"{self.display_url}"
                        )
                        self._cond.notify_all()
                        return
                    self._latest = (image, seq, time.time())
                    self._cond.notify_all()
                seq += 1
        finally:
            try:
                cap.release()
            except Exception:  # noqa: BLE001
                pass

    def _read_live(self) -> Frame:
        if self._thread is None:
            raise SourceError(f"source is not open: {self.display_url}")
        deadline = time.monotonic() + self.read_timeout
        with self._cond:
            while True:
                latest = self._latest
                if latest is not None and latest[1] > self._last_seq and latest[1] >= self._min_seq:
                    image, seq, stamp = latest
                    self._last_seq = seq
                    return Frame(image=image, timestamp=stamp, index=seq)
                if self._error:
                    raise SourceError(self._error)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SourceError(
                        f"stream timed out: no new frame within {self.read_timeout:g} s: {self.display_url}"
                    )
                self._cond.wait(remaining)

    def _skip_live(self, n: int) -> None:
        # Live frames are never queued; skipping n means the next frame returned is at least
        # n frames newer than the last one.
        self._min_seq = max(self._min_seq, self._last_seq + 1 + max(0, int(n)))

    # ---- FrameSource ------------------------------------------------------------------------
    def read(self) -> Frame | None:
        return self._read_live() if self.is_live else self._read_file()

    def skip(self, n: int) -> None:
        if self.is_live:
            self._skip_live(n)
        else:
            self._skip_file(n)
