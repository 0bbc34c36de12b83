"""Learning a camera's normal: from its own footage, from uploaded clips, or from a false alarm.

Django-free: ``runtime.tasks.detector_learn`` builds the detector (fresh, or from the camera's
active learned state), calls :func:`learn` and stores what it returns. Frames go through
``analysis_images`` / ``detector_input`` exactly as in the live loop and are taken at the
camera's analysis rate, so the detector learns the frames it will later score:

* ``live``: the camera's own source for ``minutes`` of frame time. Live streams are read in
  real time, paced by the analysis rate; files and ``demo://`` give ``minutes`` of media time
  as fast as they decode (a file shorter than that is learned once, to its end).
* ``upload``: each clip in turn (None between clips: no motion is measured across a cut).
* ``feedback``: the clip of an event an operator marked as a false alarm, every frame (event
  clips hold the analysed frames), through ``detector.feedback(frames)``.

Given a ``health`` monitor (inference/camera_health.py), ``live`` and ``upload`` learning also learn
the camera's health reference (what the camera itself looks like when nothing is wrong with it)
from the same frames, returned as ``LearningResult.health_state`` and versioned with the detector's
state; a false alarm's clip teaches the detector only.

``fit`` and ``feedback`` receive ``fps=`` (the analysis rate) when their signature takes it.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import cv2

from .base import SourceError
from .camera_health import CameraHealth, ReferenceLearner
from .e2e import analysis_images, detector_input
from .sources import open_source

log = logging.getLogger(__name__)

KINDS = ("live", "upload", "feedback")
#: The share of the progress bar that reading the footage fills; the rest is the end of
#: learning and saving the state.
READING_SHARE = 0.95
#: A live source that fails is reopened this many times in all before learning gives up.
SOURCE_RETRIES = 3
#: Seconds before the first reopen of a failed live source; doubles each time, at most 10 s.
RECONNECT_WAIT = 2.0
#: Uploaded clips whose frame rate reads higher than this are taken frame by frame.
MAX_NATIVE_FPS = 240.0

Progress = Callable[[float, str], None]


class LearningError(Exception):
    """Learning cannot go on. The message says why, for the operator."""


@dataclass
class LearningResult:
    frames: int  # analysis frames learned from
    seconds: float  # footage time they cover
    state: dict  # detector.state_dict(), JSON-serialisable
    note: str = ""
    health_state: dict | None = None  # CameraHealth.state_dict() when a health monitor learned too




class _Tally:
    def __init__(self, width: int, health: CameraHealth | None = None):
        self.width = int(width)
        self.frames = 0
        self.seconds = 0.0
        self.ended_early = False
        self.health = ReferenceLearner(health) if health is not None else None

    def cut(self) -> None:
        """A new stretch of footage begins (a clip, a reconnect)."""
        if self.health is not None:
            self.health.add(None)

    def frame(self, detector, image, ts: float):
        """One analysis frame at frame time ``ts``: what the detector reads (the health learner samples it)."""
        small, gray = analysis_images(image, self.width)
        if self.health is not None:
            self.health.add((small, ts))
        return detector_input(detector, small, gray)


class _Reporter:
    """Forwards progress (clamped to 0..1, never going back) to the caller's callback."""

    def __init__(self, callback: Progress | None):
        self.callback = callback
        self.value = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        if self.callback is None:
            return
        self.value = max(self.value, min(1.0, max(0.0, float(fraction))))
        self.callback(self.value, message)


def _call(method, frames, fps: float):
    try:
        params = inspect.signature(method).parameters
    except (TypeError, ValueError):  # a builtin or an odd callable
        params = {}
    return method(frames, **({"fps": fps} if "fps" in params else {}))


def _name(detector) -> str:
    return getattr(detector, "name", "") or type(detector).__name__


# -- footage -----------------------------------------------------------------------------------------
def live_footage(url: str, *, minutes: float, analysis_fps: float, detector, tally: _Tally,
                 report: Progress, stop: threading.Event, opener=open_source) -> Iterator:
    """Analysis frames of the camera's source for ``minutes`` of frame time (None at each new stretch)."""
    target = float(minutes) * 60.0
    min_gap = 0.999 / analysis_fps
    failures = 0
    done_before = 0.0  # frame time learned in stretches before a reconnect
    while True:
        try:
            source = opener(url)
        except ValueError as exc:  # the URL is refused (not a source, or a host that is not allowed)
            raise LearningError(f"The camera's source is refused: {exc}") from exc
        try:
            source.open()
            tally.cut()
            yield None  # a new stretch: no motion across the cut
            native = source.native_fps
            step = 1 if source.is_live or not native else max(1, round(native / min(analysis_fps, native)))
            interval = 1.0 / analysis_fps
            first = last = None
            next_due = time.monotonic()
            while True:
                if stop.is_set():
                    raise LearningError("Learning was stopped.")
                frame = source.read()
                if frame is None:  # a finite source ended before the time asked for
                    tally.ended_early = True
                    return
                if first is None:
                    first = frame.timestamp
                elapsed = done_before + (frame.timestamp - first)
                if elapsed >= target and tally.frames:
                    return
                if last is None or frame.timestamp - last >= min_gap:
                    last = frame.timestamp
                    tally.frames += 1
                    tally.seconds = elapsed
                    report(READING_SHARE * elapsed / target,
                           f"Learning from the camera's footage: {elapsed / 60:.1f} of {minutes:g} min")
                    yield tally.frame(detector, frame.image, frame.timestamp)
                if step > 1:
                    source.skip(step - 1)
                if source.is_live:
                    next_due += interval
                    delay = next_due - time.monotonic()
                    if delay > 0:
                        stop.wait(delay)
                    elif delay < -1.0:
                        next_due = time.monotonic()
        except SourceError as exc:
            if not source.is_live:
                raise LearningError(f"The camera's source cannot be read: {exc}") from exc
            failures += 1
            done_before = tally.seconds
            if failures > SOURCE_RETRIES:
                raise LearningError(f"The camera's source failed {failures} times; last: {exc}") from exc
            log.warning("Learning: source failed (%s); reopening (%d/%d)", exc, failures, SOURCE_RETRIES)
            stop.wait(min(RECONNECT_WAIT * 2 ** (failures - 1), 10.0))
        finally:
            source.close()


def _frame_count(path: str) -> int:
    cap = cv2.VideoCapture(str(path))
    try:
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT) if cap.isOpened() else 0
    finally:
        cap.release()
    return int(count) if math.isfinite(count) and count > 0 else 0


def clip_footage(paths: Sequence, *, analysis_fps: float, detector, tally: _Tally, report: Progress,
                 stop: threading.Event, every_frame: bool = False, what: str = "clip", opener=open_source) -> Iterator:
    """Analysis frames of each clip (None before each), at the analysis rate unless ``every_frame``."""
    paths = [str(p) for p in paths]
    counts = [_frame_count(p) for p in paths]
    share = 1.0 / max(1, len(paths))
    for i, path in enumerate(paths):
        name = Path(path).name
        label = f"Learning from {what} {i + 1} of {len(paths)} ({name})" if len(paths) > 1 else \
            f"Learning from the {what} ({name})"
        try:
            source = opener(path)
        except ValueError as exc:
            raise LearningError(f"{name}: {exc}") from exc
        try:
            source.open()
            native = source.native_fps
            sane = bool(native) and native <= MAX_NATIVE_FPS
            step = 1 if every_frame or not sane else max(1, round(native / min(analysis_fps, native)))
            frame_time = step / native if sane else 1.0 / analysis_fps
            tally.cut()
            yield None
            read = 0
            while (frame := source.read()) is not None:
                if stop.is_set():
                    raise LearningError("Learning was stopped.")
                read += step
                tally.frames += 1
                tally.seconds += frame_time
                within = min(1.0, read / counts[i]) if counts[i] else 0.0
                report(READING_SHARE * share * (i + within), label)
                yield tally.frame(detector, frame.image, tally.seconds)
                if step > 1:
                    source.skip(step - 1)
        except SourceError as exc:
            raise LearningError(f"{name}: {exc}") from exc
        finally:
            source.close()
        report(READING_SHARE * share * (i + 1), label)


# -- the run -----------------------------------------------------------------------------------------
def learn(detector, *, kind: str, source_url: str | None = None, minutes: float | None = None,
          clips: Sequence = (), analysis_fps: float = 5.0, width: int = 360, progress: Progress | None = None,
          stop: threading.Event | None = None, opener=open_source, health: CameraHealth | None = None) -> LearningResult:
    """Teach ``detector`` (already built, fresh or from a learned state) and return what it learned
    (and, with ``health``, the camera's health reference from the same footage; not from feedback).

    Raises LearningError with a message for the operator when the detector cannot learn this way,
    the footage cannot be read, or nothing was read.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown learning kind {kind!r} (one of {', '.join(KINDS)})")
    analysis_fps = float(analysis_fps)
    if not analysis_fps > 0:
        raise ValueError("analysis_fps must be positive")
    method_name = "feedback" if kind == "feedback" else "fit"
    method = getattr(detector, method_name, None)
    if not callable(method):
        what = "operator feedback" if kind == "feedback" else "footage"
        raise LearningError(f"The detector '{_name(detector)}' does not learn from {what}.")
    report = _Reporter(progress)
    stop = stop or threading.Event()
    tally = _Tally(width, health if kind != "feedback" else None)
    common = {"analysis_fps": analysis_fps, "detector": detector, "tally": tally,
              "report": report, "stop": stop, "opener": opener}
    if kind == "live":
        if not source_url or not minutes or minutes <= 0:
            raise ValueError("live learning needs source_url and a positive number of minutes")
        frames = live_footage(source_url, minutes=float(minutes), **common)
    else:
        if not clips:
            raise ValueError(f"{kind} learning needs at least one clip")
        frames = clip_footage(clips, every_frame=kind == "feedback",
                              what="false alarm's clip" if kind == "feedback" else "clip", **common)
    report(0.0, "Starting")
    started = time.monotonic()
    try:
        _call(method, frames, analysis_fps)
    finally:
        frames.close()
    if tally.frames == 0:
        raise LearningError("No frames could be read from the footage: nothing was learned.")
    report(READING_SHARE, "Saving what was learned")
    state = detector.state_dict()
    try:
        json.dumps(state)
    except (TypeError, ValueError) as exc:
        raise LearningError(f"The detector '{_name(detector)}' returned a state that is not JSON: {exc}") from exc
    notes = [f"{tally.frames} frames, {tally.seconds / 60:.1f} min of footage, "
             f"learned in {time.monotonic() - started:.0f} s"]
    if kind == "live" and tally.ended_early:
        notes.append(f"the source ended before the {minutes:g} min asked for")
    health_state = None
    if tally.health is not None and tally.health.samples:
        health_state = tally.health.finish().state_dict()
        notes.append(f"camera health reference from {len(tally.health.samples)} samples")
    return LearningResult(frames=tally.frames, seconds=tally.seconds, state=state, note="; ".join(notes),
                          health_state=health_state)


def save_state(state: dict, path) -> Path:
    """Write a learned state as JSON, atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, separators=(",", ":")))
    os.replace(tmp, path)
    return path
