"""Each camera's recording in the inference worker: ffmpeg in a supervised subprocess (docs/recordings.md).

A camera whose ``record_mode`` is not ``off`` gets a ``CameraRecorder`` while its loop runs (``Recordings``
follows the loop's state through ``WorkerCallbacks``):

- **copy**: a network stream (rtsp://, http(s)://) whose video is H.264 (``RECORDING_COPY_CODECS``, asked of
  ffprobe first) is copied by ffmpeg from its own connection into segments, without re-encoding;
- **encode**: anything else (a file played in a loop, ``demo://``, a device, an MJPEG stream) is encoded once
  to H.264 by ffmpeg (libx264, yuv420p) from the frames the camera's loop already decodes. The loop hands
  them over through a bounded queue (``RECORDING_ENCODE_QUEUE``): when it is full the frame is dropped and
  counted (``dropped``), so the loop never waits for the encoder. The recorder turns the frames it gets into a
  constant frame rate (the newest frame repeats until the next one), and ends a segment when frames stop for
  ``RECORDING_GAP_SECONDS`` or change size.

ffmpeg writes segments of ``RECORDING_SEGMENT_SECONDS`` into the camera's ``incoming/`` folder and lists each
one in a CSV file when it is finished; the recorder's thread reads that list, moves each finished segment to
``<camera>/<day>/`` and indexes it (``index``: ``recordings.services.segment_index``, with whether the
detector saw motion and whether the object detector saw objects meanwhile, each kept apart). A run of ffmpeg
that ends is started again after 1 s, doubling up to ``RECORDING_RESTART_MAX_SECONDS`` (back to 1 s once a run
has made a segment), like the camera's loop.
Audio is not recorded.

Nothing here runs in the camera's thread except ``on_frame`` and ``on_activity`` (a non-blocking put).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import tempfile
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from urllib.parse import urlsplit

import numpy as np
from django.conf import settings
from django.db import close_old_connections

from inference.source_urls import mask_credentials
from recordings.concat import concat_list, probe
from recordings.services import segment_index as index_segment
from recordings.storage import segment_name  # the file layout the web side serves from

log = logging.getLogger(__name__)

NETWORK_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")
POLL_SECONDS = 0.5
#: Finished segments waiting to be indexed while the database cannot take them; past this the oldest is left
#: unindexed (its file stays in incoming/, removed by the next start of the camera's recorder after an hour).
INDEX_BACKLOG = 8640
STALE_INCOMING_SECONDS = 3600
_STOP = object()


@dataclass
class RecordingOptions:
    """The settings a recorder runs with (``from_settings``: the RECORDING_* settings)."""

    root: Path
    segment_seconds: float = 10.0
    container: str = "mp4"
    copy_codecs: tuple = ("h264",)
    encode_fps: float = 0.0
    preset: str = "veryfast"
    crf: int = 28
    queue_size: int = 30
    gap_seconds: float = 3.0
    restart_max: float = 60.0
    probe_timeout: float = 15.0
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"

    @classmethod
    def from_settings(cls) -> "RecordingOptions":
        return cls(root=Path(settings.RECORDING_DIR), segment_seconds=settings.RECORDING_SEGMENT_SECONDS,
                   container=settings.RECORDING_CONTAINER, copy_codecs=tuple(settings.RECORDING_COPY_CODECS),
                   encode_fps=settings.RECORDING_ENCODE_FPS, preset=settings.RECORDING_ENCODE_PRESET,
                   crf=settings.RECORDING_ENCODE_CRF, queue_size=settings.RECORDING_ENCODE_QUEUE,
                   gap_seconds=settings.RECORDING_GAP_SECONDS, restart_max=settings.RECORDING_RESTART_MAX_SECONDS,
                   probe_timeout=settings.RECORDING_PROBE_TIMEOUT_SECONDS, ffmpeg=settings.FFMPEG_BINARY,
                   ffprobe=settings.FFPROBE_BINARY)


def is_network(url: str) -> bool:
    return url.lower().startswith(NETWORK_SCHEMES)


#: What ffmpeg may open through a stream list (``stream_input``): the stream protocols, nothing local but the list.
STREAM_PROTOCOLS = "file,rtsp,rtsps,rtp,srtp,tcp,udp,tls,http,https,httpproxy,crypto"


def _input_options(url: str, timeout: float) -> list[tuple[str, str]]:
    micros = str(int(timeout * 1_000_000))
    if url.lower().startswith(("rtsp://", "rtsps://")):
        return [("rtsp_transport", "tcp"), ("timeout", micros)]
    return [("rw_timeout", micros)]


def has_credentials(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return bool(parts.username or parts.password)


def stream_input(url: str, options: RecordingOptions, list_file: Path) -> list[str]:
    """ffmpeg's (or ffprobe's) input arguments for a stream.

    A URL with credentials (``rtsp://user:password@camera/...``) never appears on the command line, where any user
    of the machine can read it (``ps``, /proc/<pid>/cmdline): it goes into ``list_file`` (mode 0600), a one-entry list
    of ffmpeg's concat demuxer with the stream's options, and the command names only that file. Other URLs are given
    as they are. The caller removes the file when the run ends."""
    opts = _input_options(url, options.probe_timeout)
    if not has_credentials(url):
        return [arg for key, value in opts for arg in (f"-{key}", value)] + ["-i", url]
    fd = os.open(list_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("ffconcat version 1.0\n" + concat_list([url]) + "".join(f"option {k} {v}\n" for k, v in opts))
    return ["-f", "concat", "-safe", "0", "-protocol_whitelist", STREAM_PROTOCOLS, "-i", str(list_file)]


def probe_codec(url: str, options: RecordingOptions, list_file: Path | None = None) -> str:
    """The codec of the stream's first video stream (ffprobe), e.g. "h264"; raises RuntimeError saying why not
    (credentials masked). ``list_file``: where a URL with credentials is written for ffprobe (``stream_input``)."""
    list_file = list_file or Path(tempfile.gettempdir()) / f"probe-{uuid.uuid4().hex}.ffconcat"
    try:
        cmd = [options.ffprobe, "-v", "error", *stream_input(url, options, list_file), "-select_streams", "v:0",
               "-show_entries", "stream=codec_name", "-of", "json"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=options.probe_timeout + 5)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(mask_credentials(f"ffprobe: {exc}")) from exc
    finally:
        list_file.unlink(missing_ok=True)
    try:
        streams = json.loads(out.stdout or "{}").get("streams") or []
    except ValueError:
        streams = []
    if out.returncode != 0 or not streams:
        raise RuntimeError(mask_credentials(f"ffprobe found no video stream: {(out.stderr or '').strip()[-300:]}"))
    return str(streams[0].get("codec_name") or "")


def probe_duration(file: Path, options: RecordingOptions) -> float | None:
    """A finished segment's duration in seconds (ffprobe, recordings.concat.probe), or None when it cannot tell."""
    return probe(file, ffprobe=options.ffprobe).get("duration") or None


def _segment_output(options: RecordingOptions, incoming: Path, run: str) -> list[str]:
    movflags = "+frag_keyframe+empty_moov+default_base_moof" if options.container == "fmp4" else "+faststart"
    return ["-f", "segment", "-segment_time", f"{options.segment_seconds:g}", "-segment_format", "mp4",
            "-segment_format_options", f"movflags={movflags}", "-reset_timestamps", "1",
            "-segment_list", str(incoming / f"{run}.csv"), "-segment_list_type", "csv",
            str(incoming / f"{run}-%06d.mp4")]


def copy_command(url: str, options: RecordingOptions, incoming: Path, run: str) -> list[str]:
    """ffmpeg copying the stream's video into segments (no re-encoding); credentials in ``<run>.ffconcat``."""
    return [options.ffmpeg, "-hide_banner", "-loglevel", "error",
            *stream_input(url, options, incoming / f"{run}.ffconcat"),
            "-map", "0:v:0", "-an", "-c:v", "copy", *_segment_output(options, incoming, run)]


def encode_command(width: int, height: int, gray: bool, fps: float, options: RecordingOptions, incoming: Path,
                   run: str) -> list[str]:
    """ffmpeg encoding raw BGR (or grey) frames from its stdin to H.264 segments, a key frame at each cut."""
    scale = [] if width % 2 == 0 and height % 2 == 0 else ["-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2"]
    return [options.ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "rawvideo",
            "-pix_fmt", "gray" if gray else "bgr24", "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "pipe:0",
            *scale, "-c:v", "libx264", "-preset", options.preset, "-crf", str(options.crf), "-pix_fmt", "yuv420p",
            "-force_key_frames", f"expr:gte(t,n_forced*{options.segment_seconds:g})",
            *_segment_output(options, incoming, run)]


class SegmentList:
    """Follows the CSV segment list of one ffmpeg run: (file name, start, end) of each finished segment."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.partial = ""
        self.mtime = 0.0

    def read(self) -> list[tuple[str, float, float]]:
        try:
            with open(self.path) as fh:
                self.mtime = os.fstat(fh.fileno()).st_mtime  # when ffmpeg wrote its latest line
                fh.seek(self.offset)
                data = fh.read()
                self.offset = fh.tell()
        except FileNotFoundError:
            return []
        lines = (self.partial + data).split("\n")
        self.partial = lines.pop()
        out = []
        for line in lines:
            try:
                name, start, end = line.strip().rsplit(",", 2)
                out.append((name.strip('"'), float(start), float(end)))
            except ValueError:
                continue
        return out


class _Run:
    """One ffmpeg process and what it has written."""

    def __init__(self, proc, incoming: Path, run: str, *, t0: float | None = None, copy: bool = False):
        self.proc = proc
        self.copy = copy
        self.incoming = incoming
        self.id = run
        self.list = SegmentList(incoming / f"{run}.csv")
        self.t0 = t0  # wall time of media time 0 (encode: the first frame; copy: anchored on the file names)
        self.segments = 0
        self.started = time.monotonic()

    def tail(self) -> str:
        try:
            return mask_credentials((self.incoming / f"{self.id}.log").read_text(errors="replace").strip()[-500:])
        except OSError:
            return ""

    def cleanup(self) -> None:
        for suffix in (".csv", ".log", ".ffconcat"):
            (self.incoming / f"{self.id}{suffix}").unlink(missing_ok=True)


class CameraRecorder:
    """One camera's recording: its thread supervises ffmpeg and indexes the finished segments."""

    def __init__(self, camera_id: int, source_url: str, mode: str, *, fps: float, index: Callable[..., object],
                 options: RecordingOptions, clock: Callable[[], float] = time.time,
                 check_url: Callable[[str], object] | None = None):
        self.camera_id = int(camera_id)
        self.source_url = source_url
        #: Asked before every connection ffmpeg or ffprobe makes to the stream (the camera networks the site allows,
        #: as the camera's loop checks at each of its own): raises ValueError naming the problem.
        self.check_url = check_url
        self.mode = mode
        self.fps = float(options.encode_fps or fps or 5.0)
        self.index = index
        self.options = options
        self.clock = clock
        self.kind = "probe" if is_network(source_url) else "encode"  # then "copy" or "encode"
        self.codec = ""
        self.frames: queue.Queue = queue.Queue(maxsize=max(1, options.queue_size))
        self.dropped = 0  # frames the encoder's queue had no room for
        self.segments = 0
        self.restarts = 0
        self.error = ""
        # wall seconds with motion, and with objects (each at most one a second, about two hours' worth)
        self._motion: deque = deque(maxlen=7200)
        self._objects: deque = deque(maxlen=7200)
        self._backlog: deque = deque(maxlen=INDEX_BACKLOG)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.incoming = options.root / str(self.camera_id) / "incoming"

    # -- the camera's thread -----------------------------------------------------------------------------
    def on_frame(self, image: np.ndarray, wall: float) -> None:
        """Hand a decoded frame to the encoder (encode recorders only); never waits: a full queue drops it."""
        if self.kind != "encode" or self._stop.is_set():
            return
        try:
            self.frames.put_nowait((wall, image))
        except queue.Full:
            self.dropped += 1

    def on_activity(self, wall: float, *, motion: bool = True, objects: bool = False) -> None:
        """The detector saw motion (``motion``) and/or the object detector saw objects (``objects``) at ``wall``:
        the segment that holds that moment is indexed with ``has_motion`` / ``has_objects``."""
        for seen, marks in ((motion, self._motion), (objects, self._objects)):
            if seen and (not marks or wall - marks[-1] >= 1.0):
                marks.append(wall)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> "CameraRecorder":
        self.incoming.mkdir(parents=True, exist_ok=True)
        self._sweep_incoming()
        self._thread = threading.Thread(target=self._run, name=f"record-{self.camera_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop recording: ffmpeg finishes its last segment, which is indexed (in the recorder's thread)."""
        self._stop.set()
        try:
            self.frames.put_nowait(_STOP)
        except queue.Full:
            pass
        if timeout is not None and self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> dict:
        return {"kind": self.kind, "codec": self.codec, "segments": self.segments, "dropped": self.dropped,
                "restarts": self.restarts, "error": self.error}

    def _sweep_incoming(self) -> None:
        """Files an ffmpeg that crashed long ago left behind (never finished, so never listed)."""
        cutoff = time.time() - STALE_INCOMING_SECONDS
        for file in self.incoming.iterdir():
            try:
                if file.stat().st_mtime < cutoff:
                    file.unlink()
            except OSError:
                pass

    # -- the recorder's thread ---------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            if self.kind == "probe":
                self._probe()
            if self.kind == "copy":
                self._run_copy()
            elif self.kind == "encode":
                self._run_encode()
        except Exception:
            log.exception("Recorder of camera %s failed", self.camera_id)
        finally:
            self._index_backlog()

    def _allowed(self) -> bool:
        """Whether the stream may be opened now (``check_url``); else the reason is the recorder's error."""
        if self.check_url is None:
            return True
        try:
            self.check_url(self.source_url)
        except ValueError as exc:
            self.error = mask_credentials(f"the stream is not opened: {exc}")[:300]
            log.warning("Camera %s: recording refused: %s", self.camera_id, self.error)
            return False
        return True

    def _probe(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            try:
                if not self._allowed():
                    raise RuntimeError(self.error)
                self.codec = probe_codec(self.source_url, self.options,
                                         self.incoming / f"probe-{uuid.uuid4().hex[:8]}.ffconcat")
            except RuntimeError as exc:
                self.error = str(exc)[:300]
                log.warning("Camera %s: recording waits for its stream (%s)", self.camera_id, self.error)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.options.restart_max)
                continue
            self.error = ""
            if self.codec in self.options.copy_codecs:
                self.kind = "copy"
            else:
                log.info("Camera %s: its stream is %s, not %s: recorded by encoding the decoded frames",
                         self.camera_id, self.codec, "/".join(self.options.copy_codecs))
                self.kind = "encode"
            return

    def _spawn(self, cmd: list[str], run: str, **kwargs):
        log_file = open(self.incoming / f"{run}.log", "wb")
        try:
            return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log_file, **kwargs)
        finally:
            log_file.close()

    def _finish(self, run: _Run, *, graceful: bool) -> None:
        """Wait for the run's ffmpeg to end (asking it to finish its segment when ``graceful``), then index."""
        proc = run.proc
        if proc.poll() is None and graceful:
            try:
                if run.copy:
                    proc.stdin.write(b"q")  # ffmpeg's own key to stop: it closes the segment cleanly
                    proc.stdin.flush()
                proc.stdin.close()  # encode: the end of its input; it writes the last segment
            except (OSError, ValueError):
                pass
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        self._collect(run)
        if proc.returncode != 0 and not self._stop.is_set():
            self.error = (run.tail() or f"ffmpeg exited with {proc.returncode}")[:300]
            log.warning("Camera %s: recording ffmpeg ended (%s): %s", self.camera_id, proc.returncode, self.error)
        run.cleanup()

    def _run_copy(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            run_id = uuid.uuid4().hex[:8]
            proc = None
            try:
                if self._allowed():
                    proc = self._spawn(copy_command(self.source_url, self.options, self.incoming, run_id), run_id,
                                       stdin=subprocess.PIPE)
            except OSError as exc:
                (self.incoming / f"{run_id}.ffconcat").unlink(missing_ok=True)
                self.error = mask_credentials(f"ffmpeg cannot start: {exc}")[:300]
            if proc is not None:
                run = _Run(proc, self.incoming, run_id, copy=True)
                while proc.poll() is None and not self._stop.wait(POLL_SECONDS):
                    self._collect(run)
                self._finish(run, graceful=True)
                if self._stop.is_set():
                    return
                if run.segments:
                    backoff = 1.0
            self.restarts += 1
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.options.restart_max)

    def _run_encode(self) -> None:
        run: _Run | None = None
        shape = None
        written = 0  # frames written in this run (the next frame's index at the constant rate)
        last_wall = 0.0
        retry_at = 0.0
        backoff = 1.0
        while True:
            try:
                item = self.frames.get(timeout=POLL_SECONDS)
            except queue.Empty:
                item = None
            if item is _STOP or (item is None and self._stop.is_set()):
                break
            if run is not None:
                self._collect(run)
                ended = run.proc.poll() is not None
                gap = (item[0] if item else self.clock()) - last_wall > self.options.gap_seconds
                if ended or gap or (item is not None and item[1].shape != shape):
                    self._finish(run, graceful=True)
                    if ended:
                        self.restarts += 1
                        retry_at = time.monotonic() + backoff
                        backoff = min(backoff * 2, self.options.restart_max)
                    elif run.segments:
                        backoff = 1.0
                    run = None
            if item is None:
                continue
            wall, image = item
            if run is None:
                if time.monotonic() < retry_at:
                    continue
                shape = image.shape
                run_id = uuid.uuid4().hex[:8]
                h, w = image.shape[:2]
                cmd = encode_command(w, h, image.ndim == 2, self.fps, self.options, self.incoming, run_id)
                try:
                    proc = self._spawn(cmd, run_id, stdin=subprocess.PIPE)
                except OSError as exc:
                    self.error = f"ffmpeg cannot start: {exc}"[:300]
                    retry_at = time.monotonic() + backoff
                    backoff = min(backoff * 2, self.options.restart_max)
                    continue
                run = _Run(proc, self.incoming, run_id, t0=wall)
                written = 0
            last_wall = wall
            due = int((wall - run.t0) * self.fps) + 1  # frames the run should hold once this one is in
            data = np.ascontiguousarray(image).data
            try:
                while written < due:
                    run.proc.stdin.write(data)
                    written += 1
            except (BrokenPipeError, OSError, ValueError):
                pass  # ffmpeg ended: seen at the next frame, restarted with back-off
        if run is not None:
            self._finish(run, graceful=True)

    # -- finished segments -------------------------------------------------------------------------------------------
    @staticmethod
    def _marked(marks: deque, start: float, end: float) -> bool:
        return any(start - 1.0 <= t <= end for t in list(marks))

    def _collect(self, run: _Run) -> None:
        listed = run.list.read()
        if listed and run.copy:
            # The list's latest line was written as its segment ended: that anchors the stream's clock on the
            # wall clock (again when the stream's clock jumps, or at a restart of the stream).
            t0 = run.list.mtime - listed[-1][2]
            if run.t0 is None or abs(run.t0 - t0) > 2.0:
                run.t0 = t0
        for name, start_time, end_time in listed:
            file = run.incoming / Path(name).name
            if not file.exists():
                continue
            run.segments += 1
            start = run.t0 + start_time
            listed_span = max(0.0, end_time - start_time)
            # Encoded here, at a constant rate: ffmpeg's list has the exact span, and an ffprobe per segment (a
            # process spawned from the worker every few seconds per camera) is saved. A copied stream's list may
            # not match its frames (a camera's clock, long key-frame intervals): ffprobe reads the file.
            exact = self.kind == "encode" and listed_span > 0
            end = start + (listed_span if exact else (probe_duration(file, self.options) or listed_span))
            start_dt = datetime.fromtimestamp(start, tz=timezone.utc)
            rel = segment_name(self.camera_id, start_dt, f"{run.id}-{run.segments}", "mp4")
            dest = self.options.root / rel
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(file, dest)
                size = dest.stat().st_size
            except OSError as exc:
                log.warning("Camera %s: segment %s cannot be stored: %s", self.camera_id, file, exc)
                continue
            self.segments += 1
            self._backlog.append(dict(camera_id=self.camera_id, start=start_dt,
                                      end=datetime.fromtimestamp(end, tz=timezone.utc), path=rel, size=size,
                                      mode=self.mode, codec="h264" if self.kind == "encode" else self.codec,
                                      encoded=self.kind == "encode",
                                      has_motion=self._marked(self._motion, start, end),
                                      has_objects=self._marked(self._objects, start, end)))
        self._index_backlog()

    def _index_backlog(self) -> None:
        while self._backlog:
            item = self._backlog[0]
            try:
                segment = self.index(**item)
            except Exception as exc:  # the database is away: kept (bounded) and tried again at the next segment
                log.warning("Camera %s: segment %s not indexed yet: %s", self.camera_id, item["path"], exc)
                return
            self._backlog.popleft()
            if segment is None:  # the camera was deleted
                (self.options.root / item["path"]).unlink(missing_ok=True)


class Recordings:
    """The worker's recorders, one per running camera whose ``record_mode`` is not off.

    ``configure`` (when the camera's loop is built) keeps its settings; its loop's state starts (``running``)
    and stops (``stopped``) the recorder; frames and detector results reach it through the callbacks.
    """

    def __init__(self, index: Callable[..., object], options: RecordingOptions | None = None,
                 check_url: Callable[[str], object] | None = None):
        self.index = index
        self.options = options
        self.check_url = check_url
        self._configs: dict[int, dict] = {}
        self.recorders: dict[int, CameraRecorder] = {}
        self._lock = threading.Lock()

    def configure(self, config: dict) -> None:
        with self._lock:
            self._configs[int(config["id"])] = {"mode": config.get("record_mode") or "off",
                                                "url": config["source_url"],
                                                "fps": float(config.get("analysis_fps") or 5.0)}

    def on_state(self, camera_id: int, state: str) -> None:
        if state == "running":
            self._ensure(int(camera_id))
        elif state == "stopped":
            self._stop(int(camera_id))

    def _ensure(self, camera_id: int) -> None:
        with self._lock:
            config = self._configs.get(camera_id)
            current = self.recorders.get(camera_id)
            changed = config is None or (current and (current.mode, current.source_url) != (config["mode"], config["url"]))
            if current is not None and (changed or not current.alive):
                self.recorders.pop(camera_id).stop()
                current = None
            if current is not None or config is None or config["mode"] == "off":
                return
            options = self.options or RecordingOptions.from_settings()
            self.recorders[camera_id] = CameraRecorder(camera_id, config["url"], config["mode"], fps=config["fps"],
                                                       index=self.index, options=options,
                                                       check_url=self.check_url).start()

    def _stop(self, camera_id: int) -> None:
        with self._lock:
            recorder = self.recorders.pop(camera_id, None)
        if recorder is not None:
            recorder.stop()  # its thread finishes the last segment

    def on_frame(self, camera_id: int, image: np.ndarray, wall: float) -> None:
        recorder = self.recorders.get(camera_id)
        if recorder is not None:
            recorder.on_frame(image, wall)

    def on_activity(self, camera_id: int, wall: float, *, motion: bool = True, objects: bool = False) -> None:
        recorder = self.recorders.get(camera_id)
        if recorder is not None:
            recorder.on_activity(wall, motion=motion, objects=objects)

    def stats(self) -> dict:
        return {camera_id: recorder.stats() for camera_id, recorder in list(self.recorders.items())}

    def close(self, timeout: float = 20.0) -> None:
        with self._lock:
            recorders = list(self.recorders.values())
            self.recorders.clear()
        for recorder in recorders:
            recorder.stop()
        deadline = time.monotonic() + timeout
        for recorder in recorders:
            recorder.stop(max(0.1, deadline - time.monotonic()))


def segment_index(**fields):
    """Index a finished segment from a recorder's thread (its own database connection)."""
    close_old_connections()
    return index_segment(**fields)
