"""Frame sources: video files, network streams, local devices and a synthetic demo scene.

``validate_source_url`` checks what an operator typed; ``open_source`` picks the class for a
URL without opening it. Everything implements :class:`inference.base.FrameSource`:

* :class:`OpenCVSource` - files (``file:///abs/path`` or a plain path), ``rtsp(s)://``,
  ``http(s)://`` streams and ``device://N`` cameras through OpenCV / FFmpeg. Live sources keep
  only the newest frame (a background grabber thread), so a slow consumer never lags behind
  real time.
* :class:`DemoSource` - ``demo://``: a cheap synthetic walkway scene with people walking and,
  now and then, one person running, falling or entering a forbidden zone, with the ground
  truth exposed for tests and demos.

Nothing here imports Django.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import cv2
import numpy as np

from .addresses import AddressNotAllowed, check_host
from .base import Frame, FrameSource, SourceError

log = logging.getLogger(__name__)

MAX_URL_LENGTH = 1024
STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")
SUPPORTED_SCHEMES = STREAM_SCHEMES + ("file", "device", "demo")

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_HOST_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9\-._~%]*[A-Za-z0-9])?$")

# --------------------------------------------------------------------------------------------
# URL validation
# --------------------------------------------------------------------------------------------

#: demo:// query parameters: name -> (type, minimum, maximum, default)
DEMO_PARAMS: dict[str, tuple[type, float, float, Any]] = {
    "seed": (int, 0, 2**31 - 1, 0),
    "anomaly_every": (float, 0.0, 86400.0, 30.0),  # seconds of media time; 0 = never
    "width": (int, 64, 3840, 640),
    "height": (int, 48, 2160, 360),
    "fps": (float, 0.5, 120.0, 10.0),
    "people": (float, 0.0, 30.0, 4.0),  # mean number of people in view
    "noise": (float, 0.0, 30.0, 3.0),  # sensor noise, grey levels (std dev)
}
DEMO_KINDS = ("running", "fall", "forbidden_area")


def mask_credentials(url: str) -> str:
    """``rtsp://user:secret@host`` -> ``rtsp://user:***@host`` for messages and logs."""
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)


def parse_demo_params(url: str) -> dict[str, Any]:
    """The demo parameters of a ``demo://`` URL, with defaults; ValueError when invalid."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "demo":
        raise ValueError(f"not a demo URL: {url!r}")
    if parts.netloc or parts.path not in ("", "/"):
        raise ValueError("demo URL takes no host or path, only query parameters: demo://?seed=3&fps=10")
    if parts.fragment:
        raise ValueError("demo URL must not contain a '#fragment'")
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise ValueError(f"malformed demo query string {parts.query!r}") from exc
    params = {name: spec[3] for name, spec in DEMO_PARAMS.items()}
    seen = set()
    for key, raw in pairs:
        if key not in DEMO_PARAMS:
            raise ValueError(f"unknown demo parameter {key!r} (allowed: {', '.join(DEMO_PARAMS)})")
        if key in seen:
            raise ValueError(f"demo parameter {key!r} given twice")
        seen.add(key)
        kind, lo, hi, _ = DEMO_PARAMS[key]
        try:
            value = kind(raw)
            if kind is float and not math.isfinite(value):
                raise ValueError
        except ValueError:
            raise ValueError(f"demo parameter {key}={raw!r} is not a valid {kind.__name__}") from None
        if not lo <= value <= hi:
            raise ValueError(f"demo parameter {key}={raw} is out of range [{lo:g}, {hi:g}]")
        params[key] = value
    return params


def _format_demo_url(params: dict[str, Any], given: list[str]) -> str:
    if not given:
        return "demo://"
    items = []
    for key in DEMO_PARAMS:
        if key in given:
            value = params[key]
            items.append(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}")
    return "demo://?" + "&".join(items)


def validate_source_url(url: str, *, allowed_networks=None, file_roots=None) -> str:
    """Check a camera source URL and return it normalised; ValueError naming the problem.

    Accepted: ``rtsp://``, ``rtsps://``, ``http://``, ``https://`` with a host;
    ``file:///abs/path`` or a plain path to an existing regular file; ``device://N``;
    ``demo://`` with optional query parameters (see :data:`DEMO_PARAMS`).

    Policy (the Django side passes its settings; None allows everything): ``allowed_networks``,
    the internal networks a stream host may be in (``inference.addresses``); ``file_roots``, the
    folders file sources must lie in.
    """
    normalised = _validate_source_url(url)
    if file_roots is not None and not normalised.startswith(("rtsp", "http", "device:", "demo:")):
        path = os.path.realpath(unquote(urlsplit(normalised).path) if normalised.startswith("file://") else normalised)
        roots = [os.path.realpath(r) for r in file_roots]
        if not any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots):
            raise ValueError(f"file sources must lie in {', '.join(roots) or '(no folder allowed)'}; "
                             f"{path} does not (settings: CAMERA_FILE_ROOTS)")
    if normalised.startswith(("rtsp", "http")):
        check_host(urlsplit(normalised).hostname or "", allowed_networks, what="camera host")
    return normalised


def _validate_source_url(url: str) -> str:
    if not isinstance(url, str):
        raise ValueError("source URL must be a string")
    url = url.strip()
    if not url:
        raise ValueError("source URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"source URL is longer than {MAX_URL_LENGTH} characters")
    if _CONTROL_RE.search(url):
        raise ValueError("source URL contains control characters")

    match = _SCHEME_RE.match(url)
    if not match or len(match.group(1)) == 1:  # no scheme (or a "C:" drive letter): a file path
        return _validate_file_path(url)
    scheme = match.group(1).lower()
    if scheme not in SUPPORTED_SCHEMES:
        raise ValueError(
            f"unsupported scheme {scheme!r} (supported: {', '.join(s + '://' for s in SUPPORTED_SCHEMES)})"
        )
    rest = url[match.end():]
    if not rest.startswith("//"):
        raise ValueError(f"{scheme} URL must start with '{scheme}://'")

    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file URL must name a local file (file:///path), not host {parts.netloc!r}")
        if parts.query or parts.fragment:
            raise ValueError("file URL must not contain '?' or '#'")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ValueError("file URL must contain an absolute path: file:///absolute/path")
        return "file://" + quote(_validate_file_path(path), safe="/")

    if " " in url:
        raise ValueError("source URL contains spaces (percent-encode them as %20)")
    if "\\" in url:
        raise ValueError("source URL contains a backslash")

    if scheme == "device":
        index = rest[2:]
        if not index.isdigit():
            raise ValueError(f"device URL must be device://N with N a non-negative integer, got {url!r}")
        number = int(index)
        if number > 1023:
            raise ValueError(f"device number {number} is out of range (0-1023)")
        return f"device://{number}"

    if scheme == "demo":
        params = parse_demo_params(url)
        given = [key for key, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)]
        return _format_demo_url(params, given)

    # rtsp / rtsps / http / https
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when not a number or out of range
    except ValueError as exc:
        raise ValueError(f"{scheme} URL has an invalid port ({exc})") from None
    host = parts.hostname or ""
    if not host:
        raise ValueError(f"{scheme} URL has no host: expected {scheme}://host[:port]/path")
    if not (host.startswith("[") or ":" in host) and not _HOST_RE.match(host):
        raise ValueError(f"{scheme} URL has an invalid host {host!r}")
    if port == 0:
        raise ValueError(f"{scheme} URL has an invalid port 0")
    netloc = parts.netloc
    userinfo, _, hostport = netloc.rpartition("@")
    hostport = hostport.lower()
    netloc = f"{userinfo}@{hostport}" if userinfo else hostport
    normalised = f"{scheme}://{netloc}{parts.path}"
    if parts.query:
        normalised += "?" + parts.query
    if parts.fragment:
        normalised += "#" + parts.fragment
    return normalised


def _validate_file_path(path: str) -> str:
    expanded = os.path.abspath(os.path.expanduser(path))
    if not os.path.exists(expanded):
        raise ValueError(f"file not found: {expanded}")
    if not os.path.isfile(expanded):
        raise ValueError(f"not a regular file: {expanded}")
    return expanded


def open_source(url: str, *, loop: bool = False, allowed_networks=None, **options) -> FrameSource:
    """The FrameSource for ``url`` (validated first); not opened yet.

    ``loop`` rewinds files at their end (ignored by live and demo sources, which never end).
    ``allowed_networks``: internal networks a stream host may resolve to, checked again at
    every (re)connection (None: any). ``options`` go to the class (e.g. ``capture_factory``,
    ``read_timeout`` for OpenCVSource).
    """
    normalised = validate_source_url(url, allowed_networks=allowed_networks)
    if normalised.startswith("demo://"):
        return DemoSource(normalised)
    return OpenCVSource(normalised, loop=loop, allowed_networks=allowed_networks, **options)


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
    ):
        super().__init__(url)
        self.loop = loop
        self.allowed_networks = allowed_networks
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
            self._open_file()
        else:
            if self.kind not in ("device",):
                try:  # the name may point elsewhere since it was saved: check what it resolves to now
                    check_host(urlsplit(self.url).hostname or "", self.allowed_networks, what="camera host")
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
            raise SourceError(f"{what} unreachable: {exc}") from exc
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
                    reason = f"stream read failed: {exc}"
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


# --------------------------------------------------------------------------------------------
# Demo: a synthetic walkway scene
# --------------------------------------------------------------------------------------------


@dataclass
class _Figure:
    """A person: a piecewise-linear path of the feet position over time, plus a pose."""

    times: np.ndarray  # seconds, increasing
    xs: np.ndarray  # feet x (pixels)
    ys: np.ndarray  # feet y (pixels)
    scale: float  # individual height factor
    shirt: tuple[int, int, int]
    trousers: tuple[int, int, int]
    skin: tuple[int, int, int]
    running_from: float = math.inf  # gait switches to running from this time
    fall: tuple[float, float, float, float] | None = None  # fall start, down, getup start, up
    fall_dir: int = 1
    kind: str | None = None  # anomaly kind for the scripted actor
    gt: tuple[float, float] | None = None
    cumdist: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self):
        seg = np.hypot(np.diff(self.xs), np.diff(self.ys))
        self.cumdist = np.concatenate([[0.0], np.cumsum(seg)])

    @property
    def end(self) -> float:
        return float(self.times[-1])

    def at(self, t: float) -> tuple[float, float, float]:
        x = float(np.interp(t, self.times, self.xs))
        y = float(np.interp(t, self.times, self.ys))
        d = float(np.interp(t, self.times, self.cumdist))
        return x, y, d


class DemoSource(FrameSource):
    """``demo://``: synthetic surveillance scene rendered on the fly (no files).

    A building, grass and a paved walkway in perspective, a marked forbidden zone on the near
    grass, sensor noise, and people (head, body, swinging legs and arms, size by perspective)
    walking along the walkway, entering and leaving. About every ``anomaly_every`` seconds of
    media time (uniformly 0.67-1.33x that; deterministic given ``seed``) one scripted person
    RUNS (3-4x walking speed), FALLS (lies still for several seconds, then gets up) or walks
    into the FORBIDDEN AREA. Infinite; media-time timestamps; ``is_live`` False.

    Ground truth: :attr:`current_anomaly` (the kind for the last frame returned, or None) and
    :meth:`anomaly_intervals` (``(start, end, kind)`` in media seconds).
    """

    is_live = False

    def __init__(self, url: str = "demo://", **overrides):
        super().__init__(url)
        params = parse_demo_params(url)
        for key, value in overrides.items():
            if key not in DEMO_PARAMS:
                raise ValueError(f"unknown demo parameter {key!r}")
            params[key] = DEMO_PARAMS[key][0](value)
        self.params = params
        self.seed = int(params["seed"])
        self.width = int(params["width"])
        self.height = int(params["height"])
        self.fps = float(params["fps"])
        self.anomaly_every = float(params["anomaly_every"])
        self.mean_people = float(params["people"])
        self.noise_level = float(params["noise"])
        self._opened = False
        self._index = 0
        self._current_anomaly: str | None = None
        self._plans: list[_Figure] = []  # scripted anomalies, in time order (lazily extended)
        self._layout()

    # ---- geometry -------------------------------------------------------------------------
    def _layout(self) -> None:
        W, H = self.width, self.height
        self.horizon = 0.24 * H  # building bottom
        self.walk_top = 0.44 * H
        self.walk_bottom = 0.76 * H
        self.lane_top = 0.47 * H
        self.lane_bottom = 0.72 * H
        # the forbidden zone lies on the near grass, off the walkway (feet positions)
        self.zone = (0.56 * W, 0.83 * H, 0.86 * W, 0.97 * H)  # x0, y0, x1, y1

    def person_height(self, y: float) -> float:
        """Pixel height of a standing person whose feet are at ``y`` (perspective)."""
        H = self.height
        y_far, y_near = 0.30 * H, 0.95 * H
        h_far, h_near = 0.10 * H, 0.34 * H
        return h_far + (h_near - h_far) * (y - y_far) / (y_near - y_far)

    def px_per_metre(self, y: float) -> float:
        return self.person_height(y) / 1.7

    @property
    def native_fps(self) -> float | None:
        return self.fps

    @property
    def current_anomaly(self) -> str | None:
        """The anomaly visible in the last frame returned (``running``/``fall``/``forbidden_area``)."""
        return self._current_anomaly

    # ---- FrameSource ------------------------------------------------------------------------
    def open(self) -> None:
        self._index = 0
        self._current_anomaly = None
        self._traffic_rng = np.random.default_rng([self.seed, 1])
        self._look_rng = np.random.default_rng([self.seed, 2])
        self._noise_rng = np.random.default_rng([self.seed, 3])
        self._figures: list[_Figure] = []
        self._next_plan = 0
        self._render_background()
        self._make_noise()
        # people already in view at t=0
        for _ in range(int(round(self.mean_people))):
            self._figures.append(self._walker(0.0, start_inside=True))
        self._opened = True

    def close(self) -> None:
        self._opened = False

    def read(self) -> Frame | None:
        if not self._opened:
            raise SourceError("demo source is not open")
        t = self._index / self.fps
        self._step(t)
        image = self._render(t)
        self._current_anomaly = self.anomaly_at(t)
        frame = Frame(image=image, timestamp=t, index=self._index)
        self._index += 1
        return frame

    def skip(self, n: int) -> None:
        if not self._opened:
            raise SourceError("demo source is not open")
        for _ in range(max(0, int(n))):
            self._step(self._index / self.fps)
            self._index += 1

    # ---- ground truth -----------------------------------------------------------------------
    def anomaly_intervals(self, until: float) -> list[tuple[float, float, str]]:
        """Scripted anomalies starting before ``until`` seconds: ``[(start, end, kind), ...]``."""
        self._plan_until(until)
        return [(p.gt[0], p.gt[1], p.kind) for p in self._plans if p.gt and p.gt[0] < until]

    def anomaly_at(self, t: float) -> str | None:
        """The anomaly kind at media time ``t`` (None when the scene is normal)."""
        self._plan_until(t + 1.0)
        for plan in self._plans:
            if plan.gt and plan.gt[0] <= t <= plan.gt[1]:
                return plan.kind
        return None

    def labels(self, n_frames: int) -> np.ndarray:
        """Per-frame ground truth (1 = anomalous) for the first ``n_frames`` frames."""
        times = np.arange(n_frames) / self.fps
        out = np.zeros(n_frames, dtype=np.uint8)
        for start, end, _ in self.anomaly_intervals(times[-1] + 1.0 if n_frames else 0.0):
            out[(times >= start) & (times <= end)] = 1
        return out

    # ---- simulation ---------------------------------------------------------------------------
    def _looks(self, rng) -> dict:
        shirts = [(40, 40, 160), (150, 60, 30), (30, 120, 40), (200, 200, 200), (40, 40, 40),
                  (30, 150, 200), (120, 50, 120), (90, 90, 90), (20, 80, 180), (160, 160, 60)]
        trousers = [(40, 30, 30), (80, 50, 20), (30, 30, 30), (110, 100, 90), (60, 60, 100)]
        skins = [(150, 180, 220), (110, 140, 190), (70, 95, 140), (180, 200, 230)]
        return {
            "shirt": shirts[int(rng.integers(len(shirts)))],
            "trousers": trousers[int(rng.integers(len(trousers)))],
            "skin": skins[int(rng.integers(len(skins)))],
            "scale": float(rng.uniform(0.88, 1.1)),
        }

    def _walker(self, t0: float, start_inside: bool = False) -> _Figure:
        rng = self._traffic_rng
        W = self.width
        y0 = float(rng.uniform(self.lane_top, self.lane_bottom))
        y1 = float(np.clip(y0 + rng.uniform(-0.04, 0.04) * self.height, self.lane_top, self.lane_bottom))
        direction = 1 if rng.random() < 0.5 else -1
        speed = float(rng.uniform(1.1, 1.6)) * self.px_per_metre((y0 + y1) / 2)
        margin = 0.1 * W
        x_start, x_end = (-margin, W + margin) if direction > 0 else (W + margin, -margin)
        if start_inside:
            x_start = float(rng.uniform(0.1 * W, 0.9 * W))
        duration = abs(x_end - x_start) / speed
        look = self._looks(rng)
        return _Figure(np.array([t0, t0 + duration]), np.array([x_start, x_end]), np.array([y0, y1]), **look)

    def _plan_until(self, t: float) -> None:
        """Script the anomalies that start before ``t`` (each from its own seeded RNG)."""
        while not self._plans or self._plans[-1].gt[0] < t:
            k = len(self._plans)
            if self.anomaly_every <= 0:
                return
            rng = np.random.default_rng([self.seed, 100 + k])
            previous_end = self._plans[-1].end if self._plans else 0.0
            start = (self._plans[-1].times[0] if self._plans else 0.0) + self.anomaly_every * rng.uniform(0.67, 1.33)
            start = max(start, previous_end + 3.0)
            block = np.random.default_rng([self.seed, 99, k // 3]).permutation(len(DEMO_KINDS))
            kind = DEMO_KINDS[int(block[k % 3])]
            self._plans.append(self._script(kind, start, rng))

    def _script(self, kind: str, t0: float, rng) -> _Figure:
        W = self.width
        look = self._looks(rng)
        direction = 1 if rng.random() < 0.5 else -1
        margin = 0.1 * W
        x_in, x_out = (-margin, W + margin) if direction > 0 else (W + margin, -margin)
        y = float(rng.uniform(self.lane_top + 0.03 * self.height, self.lane_bottom - 0.03 * self.height))
        walk = float(rng.uniform(1.2, 1.5)) * self.px_per_metre(y)

        if kind == "running":
            # walks in, then breaks into a run (3-4x walking speed) and leaves the scene
            x_run = x_in + direction * float(rng.uniform(0.15, 0.3)) * W
            t_run = t0 + abs(x_run - x_in) / walk
            run = walk * float(rng.uniform(3.0, 4.0))
            t_end = t_run + abs(x_out - x_run) / run
            fig = _Figure(np.array([t0, t_run, t_end]), np.array([x_in, x_run, x_out]), np.array([y, y, y]), **look)
            fig.running_from = t_run
            # visible until the body has left the frame
            leave_x = W + 0.05 * W if direction > 0 else -0.05 * W
            t_gone = t_run + abs(leave_x - x_run) / run
            fig.gt = (t_run, t_gone)
        elif kind == "fall":
            x_fall = x_in + direction * float(rng.uniform(0.35, 0.65)) * W
            t_fall = t0 + abs(x_fall - x_in) / walk
            lie = float(rng.uniform(5.0, 8.0))
            t_down, t_getup = t_fall + 0.7, t_fall + 0.7 + lie
            t_up = t_getup + 1.2
            t_end = t_up + abs(x_out - x_fall) / walk
            fig = _Figure(np.array([t0, t_fall, t_up, t_end]), np.array([x_in, x_fall, x_fall, x_out]),
                          np.array([y, y, y, y]), **look)
            fig.fall = (t_fall, t_down, t_getup, t_up)
            fig.fall_dir = direction
            fig.gt = (t_fall, t_up)
        else:  # forbidden_area: leaves the walkway, crosses the grass into the marked zone
            zx0, zy0, zx1, zy1 = self.zone
            y = float(rng.uniform(self.lane_bottom - 0.08 * self.height, self.lane_bottom))
            walk = float(rng.uniform(1.2, 1.5)) * self.px_per_metre(y)
            target = (float(rng.uniform(zx0 + 0.2 * (zx1 - zx0), zx1 - 0.2 * (zx1 - zx0))),
                      float(rng.uniform(zy0 + 0.3 * (zy1 - zy0), zy1 - 0.2 * (zy1 - zy0))))
            x_turn = target[0] - direction * float(rng.uniform(0.06, 0.12)) * W
            wander = (float(np.clip(target[0] + direction * rng.uniform(0.03, 0.08) * W, zx0, zx1)),
                      float(np.clip(target[1] + rng.uniform(-0.03, 0.03) * self.height, zy0, zy1)))
            t_turn = t0 + abs(x_turn - x_in) / walk
            zone_speed = float(rng.uniform(1.0, 1.3)) * self.px_per_metre(target[1])
            t_in = t_turn + math.hypot(target[0] - x_turn, target[1] - y) / zone_speed
            t_stand = t_in + float(rng.uniform(1.5, 3.0))  # stands still in the zone for a moment
            t_wander = t_stand + math.hypot(wander[0] - target[0], wander[1] - target[1]) / (0.6 * zone_speed)
            x_back = wander[0] + direction * 0.08 * W
            t_back = t_wander + math.hypot(x_back - wander[0], y - wander[1]) / zone_speed
            t_end = t_back + abs(x_out - x_back) / walk
            fig = _Figure(
                np.array([t0, t_turn, t_in, t_stand, t_wander, t_back, t_end]),
                np.array([x_in, x_turn, target[0], target[0], wander[0], x_back, x_out]),
                np.array([y, y, target[1], target[1], wander[1], y, y]),
                **look,
            )
            fig.gt = (t_turn, t_back)
        fig.kind = kind
        fig.gt = (float(fig.gt[0]), float(fig.gt[1]))
        return fig

    def _step(self, t: float) -> None:
        dt = 1.0 / self.fps
        self._figures = [f for f in self._figures if f.end >= t]
        # Poisson arrivals so that about `people` walkers are in view (crossing takes ~W/speed)
        crossing = 1.2 * self.width / (1.35 * self.px_per_metre((self.lane_top + self.lane_bottom) / 2))
        rate = self.mean_people / crossing
        if self._traffic_rng.random() < rate * dt:
            self._figures.append(self._walker(t))
        self._plan_until(t + dt)
        while self._next_plan < len(self._plans) and self._plans[self._next_plan].times[0] <= t:
            self._figures.append(self._plans[self._next_plan])
            self._next_plan += 1

    # ---- rendering ----------------------------------------------------------------------------
    def _render_background(self) -> None:
        W, H = self.width, self.height
        rng = np.random.default_rng([self.seed, 4])
        img = np.zeros((H, W, 3), np.uint8)
        hz, wt, wb = int(self.horizon), int(self.walk_top), int(self.walk_bottom)
        # building with windows
        img[:hz] = (120, 125, 135)
        win_w, win_h = max(4, W // 22), max(4, hz // 3)
        for x in range(W // 40, W - win_w, int(win_w * 1.8)):
            for y in (hz // 6, hz // 6 + int(win_h * 1.4)):
                if y + win_h < hz:
                    shade = int(rng.integers(50, 90))
                    cv2.rectangle(img, (x, y), (x + win_w, y + win_h), (shade + 10, shade, shade - 10), -1)
        # grass: green with coarse blotches and fine texture
        img[hz:] = (60, 120, 70)
        blotch = cv2.resize(rng.normal(0, 1, (max(2, H // 24), max(2, W // 24))).astype(np.float32), (W, H - hz),
                            interpolation=cv2.INTER_CUBIC)
        fine = rng.normal(0, 1, (H - hz, W)).astype(np.float32)
        tex = 10 * blotch + 6 * fine
        img[hz:] = np.clip(img[hz:].astype(np.float32) + tex[..., None] * np.array([0.6, 1.0, 0.6]), 0, 255)
        # walkway: light paving slabs in perspective
        pts = np.array([[0, wt], [W, wt - int(0.02 * H)], [W, wb], [0, wb + int(0.02 * H)]], np.int32)
        walk_mask = np.zeros((H, W), np.uint8)
        cv2.fillPoly(walk_mask, [pts], 255)
        pave = np.full((H, W), 165, np.float32) + 5 * rng.normal(0, 1, (H, W)).astype(np.float32)
        paved = np.clip(pave, 0, 255).astype(np.uint8)
        paved = cv2.merge([paved, paved, (paved * 0.97).astype(np.uint8)])
        img[walk_mask > 0] = paved[walk_mask > 0]
        vanish_x = W / 2
        for k in range(-12, 13):  # slab joints converging to a vanishing point
            x_bottom = vanish_x + k * W / 8
            x_top = vanish_x + k * W / 14
            cv2.line(img, (int(x_top), wt), (int(x_bottom), wb), (140, 140, 135), 1, cv2.LINE_AA)
        y = wt
        gap = max(3, int(0.02 * H))
        while y < wb:
            cv2.line(img, (0, y), (W, y - int(0.02 * H * (1 - (y - wt) / (wb - wt)))), (145, 145, 140), 1)
            y += gap
            gap = int(gap * 1.18) + 1
        # forbidden zone: red dashed outline, hatching and a sign post
        x0, y0, x1, y1 = (int(v) for v in self.zone)
        zone_img = img.copy()
        for xx in range(x0 - (y1 - y0), x1, max(6, W // 60)):
            cv2.line(zone_img, (xx, y1), (xx + (y1 - y0), y0), (40, 40, 170), 1, cv2.LINE_AA)
        zmask = np.zeros((H, W), np.uint8)
        cv2.rectangle(zmask, (x0, y0), (x1, y1), 255, -1)
        img[zmask > 0] = zone_img[zmask > 0]
        dash = max(4, W // 80)
        for xx in range(x0, x1, 2 * dash):
            cv2.line(img, (xx, y0), (min(xx + dash, x1), y0), (0, 0, 220), 2)
            cv2.line(img, (xx, y1), (min(xx + dash, x1), y1), (0, 0, 220), 2)
        for yy in range(y0, y1, 2 * dash):
            cv2.line(img, (x0, yy), (x0, min(yy + dash, y1)), (0, 0, 220), 2)
            cv2.line(img, (x1, yy), (x1, min(yy + dash, y1)), (0, 0, 220), 2)
        sign_h = int(self.person_height(y0) * 0.45)
        sx = x1 - max(6, W // 50)
        cv2.line(img, (sx, y1 - 2), (sx, y1 - 2 - sign_h), (60, 60, 60), 2)
        cv2.rectangle(img, (sx - sign_h // 5, y1 - 2 - sign_h), (sx + sign_h // 5, y1 - 2 - sign_h + sign_h // 3),
                      (0, 0, 200), -1)
        self._background = img

    def _make_noise(self) -> None:
        """A few precomputed noise frames, picked at random per frame (rendering stays cheap)."""
        k = self.noise_level
        H, W = self.height, self.width
        if k <= 0:
            self._noise = None
            self._base = self._background
            return
        offset = int(math.ceil(3 * k))
        self._base = cv2.subtract(self._background, np.full_like(self._background, offset))
        noise = self._noise_rng.normal(offset, k, (6, H, W, 1))
        noise = np.clip(noise, 0, 2 * offset).astype(np.uint8)
        self._noise = [np.repeat(n, 3, axis=2) for n in noise]
        # which noise frame each frame index uses: fixed by the seed, so skip() and read() agree
        self._noise_order = self._noise_rng.integers(len(self._noise), size=997)

    def _render(self, t: float) -> np.ndarray:
        if self._noise is not None:
            img = cv2.add(self._base, self._noise[int(self._noise_order[self._index % len(self._noise_order)])])
        else:
            img = self._background.copy()
        for fig in sorted((f for f in self._figures if f.times[0] <= t <= f.end), key=lambda f: f.at(t)[1]):
            self._draw_person(img, fig, t)
        return img

    def _draw_person(self, img: np.ndarray, fig: _Figure, t: float) -> None:
        x, y, dist = fig.at(t)
        h = self.person_height(y) * fig.scale
        if h < 4:
            return
        running = t >= fig.running_from
        # pose angle: 0 upright, 90 lying (rotating about the feet, forwards)
        angle = 0.0
        moving = True
        if fig.fall is not None:
            fs, fd, gs, gu = fig.fall
            if fs <= t < fd:
                angle = 90.0 * (t - fs) / (fd - fs)
            elif fd <= t < gs:
                angle = 90.0
            elif gs <= t < gu:
                angle = 90.0 * (1 - (t - gs) / (gu - gs))
            moving = not (fs <= t < gu)
        theta = math.radians(angle) * fig.fall_dir
        c, s = math.cos(theta), math.sin(theta)

        def P(u: float, v: float) -> tuple[int, int]:
            # u: sideways, v: up (in person heights); rotate then map to image (y down)
            ru = u * c + v * s
            rv = -u * s + v * c
            return int(round(x + ru * h)), int(round(y - rv * h))

        stride = 0.75 if not running else 1.6  # in person heights per gait cycle
        phase = 2 * math.pi * dist / (stride * h) if moving else 0.0
        swing = (0.35 if running else 0.22) * math.sin(phase) if moving else 0.0
        arm = -swing * 0.8
        lw = max(1, int(round(h * 0.075)))
        bw = max(2, int(round(h * 0.16)))
        hip, neck = (0.0, 0.5), (0.0, 0.82)
        # shadow
        if angle < 45:
            cv2.ellipse(img, (int(x), int(y)), (max(2, int(h * 0.18)), max(1, int(h * 0.04))), 0, 0, 360,
                        (60, 70, 60) if not self.walk_top <= y <= self.walk_bottom else (110, 110, 110), -1)
        # legs (far leg first)
        for sgn, shade in ((-1, 0.75), (1, 1.0)):
            col = tuple(int(ch * shade) for ch in fig.trousers)
            knee = (sgn * swing * 0.25, 0.27)
            foot = (sgn * swing * 0.5, 0.02 if not running else 0.05 + 0.05 * max(0.0, sgn * math.cos(phase)))
            cv2.line(img, P(*hip), P(*knee), col, lw + 1)
            cv2.line(img, P(*knee), P(*foot), col, lw)
        # body
        cv2.line(img, P(*hip), P(*neck), fig.shirt, bw)
        # arms
        for sgn in (-1, 1):
            hand = (sgn * arm * 0.45 + 0.02, 0.5)
            cv2.line(img, P(0.0, 0.8), P(*hand), tuple(int(ch * 0.85) for ch in fig.shirt), max(1, lw - 1))
        # head
        cv2.circle(img, P(0.0, 0.91), max(2, int(h * 0.075)), fig.skin, -1)
