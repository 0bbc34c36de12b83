"""E2ESystem: one camera's loop, frames -> score -> episode -> description -> decision -> event.

No Django here: the worker wires callbacks (live push, state reports), the event sink
(EventLogger.append) and the snapshot store. ``vad_eval`` uses ``analysis_frame`` and
the same detector classes, so live and offline scores agree.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import math
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import cv2
import numpy as np

from .agent import actions_for
from .base import AgentPolicy, Decision, Detector, DetectorResult, EpisodeSummary, Frame, FrameSource, SourceError
from .camera_health import SEVERITY as HEALTH_SEVERITY
from .camera_health import CameraHealth, HealthChange
from .stats import CameraStats

log = logging.getLogger(__name__)

MAX_EVENT_SECONDS = 300.0  # an episode longer than this is closed and a new one opens
OFFLINE_KIND = "camera_offline"  # details.kind of the event recorded when a camera stops being watched
HEALTH_KIND = "camera_health"  # details.kind of a camera health event (covered, blurred, moved, frozen, dark, blinded)
SCORE_CURVE_POINTS = 300
OBJECT_CROP = 96  # px: the longest side of an object's thumbnail
MAX_EVENT_OBJECTS = 20  # objects an event record lists (the most confident)
MAX_EVENT_TERMS = 5  # object anomaly terms it keeps
#: Clip frames: (timestamp, BGR image at the analysis resolution).
ClipFrames = list[tuple[float, np.ndarray]]


def analysis_images(image: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(the frame downscaled once to ``width``, in colour; its grayscale): the detector reads the
    second, event clips keep the first (no other copy of the frame is made)."""
    h, w = image.shape[:2]
    small = image
    if w > width:
        small = cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
    return small, gray


def detector_input(detector, small: np.ndarray, gray: np.ndarray) -> np.ndarray:
    """What ``detector.score`` reads: the grayscale analysis frame, or its colour twin."""
    return small if getattr(detector, "wants_color", False) else gray


def make_health(config: dict) -> CameraHealth | None:
    """The camera's health monitor from ``config["health"]`` (inference/camera_health.py), or None.

    ``{"enabled": false}`` turns it off (it is on by default); the other keys are
    ``CameraHealth`` parameters (an unknown one raises ValueError naming it), plus ``state`` (a
    ``state_dict()``) or ``state_path`` (a JSON file of one): the learned reference. A state that
    does not load is logged and skipped; without one the monitor learns its reference online from
    the camera's first ``learn_seconds`` (60 s) of frames, reporting nothing meanwhile.
    """
    params = dict(config.get("health") or {})
    if not params.pop("enabled", True):
        return None
    state, state_path = params.pop("state", None), params.pop("state_path", None)
    health = CameraHealth(**params)
    if state_path and state is None:
        try:
            with open(state_path) as fh:
                state = json.load(fh)
        except (OSError, ValueError) as exc:
            log.warning("Camera %s: cannot read its health state %s (%s); it learns online", config.get("id"),
                        state_path, exc)
    if state:
        try:
            health.load_state_dict(state)
        except ValueError as exc:
            log.warning("Camera %s: its health state does not load (%s); it learns online", config.get("id"), exc)
    return health


def analysis_frame(image: np.ndarray, width: int) -> np.ndarray:
    """Downscale once and convert to grayscale: the frame every detector reads."""
    return analysis_images(image, width)[1]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()


def _jsonable(value, depth=0):
    """Detector details made JSON-safe (numpy scalars and arrays, tuples), kept small."""
    if depth > 4:
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in list(value.items())[:50]}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in list(value)[:100]]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist(), depth)
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else round(float(value), 4)
    if isinstance(value, (np.integer, int, bool, str)) or value is None:
        return value.item() if isinstance(value, np.generic) else value
    return str(value)


def reported_objects(details: dict, scale: float = 1.0):
    """The well-formed objects a detector reports (``details["objects"]``): (object, x1, y1, x2, y2), the
    box times ``scale``. A malformed entry is skipped."""
    for obj in details.get("objects") or ():
        try:
            x1, y1, x2, y2 = (float(v) * scale for v in obj["box"])
            int(obj["id"]), float(obj["score"]), float(obj.get("since", 0.0))
        except (AttributeError, KeyError, TypeError, ValueError):
            continue
        yield obj, x1, y1, x2, y2


def _boxes_at_peak(details: dict, scale: float) -> list[dict]:
    return [{"track": int(obj["id"]), "label": str(obj["label"]),
             "box": [round(x1), round(y1), round(x2 - x1), round(y2 - y1)]}
            for obj, x1, y1, x2, y2 in reported_objects(details, scale)]


def _objects_now(details: dict, width: int, height: int, frame_ts: float, wall: float) -> list[dict]:
    """The detector's current objects for the status API: box as fractions of the frame, ``since`` wall time."""
    if not width or not height:
        return []
    return [{"track": int(obj["id"]), "label": str(obj["label"]), "confidence": round(float(obj["score"]), 3),
             "box": [round(x1 / width, 4), round(y1 / height, 4), round(x2 / width, 4), round(y2 / height, 4)],
             "since": round(wall - max(0.0, frame_ts - float(obj.get("since", frame_ts))), 3)}
            for obj, x1, y1, x2, y2 in reported_objects(details)]


def _frames_describer(vlm) -> tuple[Callable | None, dict]:
    """The backend's ``describe_frames(frames, prompt)`` (a model server's: several frames in one
    request; through the pool's SharedVLM its backend's), with ``raise_errors`` where it takes it (the
    describe queue then tells timeouts and failures apart); (None, {}) when it has none."""
    backend = getattr(vlm, "backend", vlm)
    fn = getattr(backend, "describe_frames", None)
    if not callable(fn):
        return None, {}
    try:
        takes = "raise_errors" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        takes = False
    return fn, ({"raise_errors": True} if takes else {})


class Callbacks:
    """What the loop tells the outside world. Subclass and override what you need."""

    def on_frame(self, camera_id: int, frame: Frame, captured_at: float) -> None:
        """Every frame read (at the analysis rate, or faster while someone watches live)."""

    def on_score(self, camera_id: int, timestamp: float, result: DetectorResult) -> None: ...

    def on_anomaly_started(self, camera_id: int, episode: "Episode") -> None: ...

    def on_anomaly_ended(self, camera_id: int, episode: "Episode") -> None: ...

    def on_event(self, camera_id: int, record: dict) -> None: ...

    def on_state(self, camera_id: int, state: str, error: str = "") -> None: ...


@dataclass
class Episode:
    id: uuid.UUID
    started_wall: float
    started_ts: float
    last_above_ts: float
    threshold: float
    scores: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, score)
    peak_score: float = 0.0
    peak_ts: float = 0.0
    peak_image: np.ndarray | None = None
    peak_regions: list = field(default_factory=list)
    peak_details: dict = field(default_factory=dict)
    ended_wall: float | None = None
    clip_frames: ClipFrames = field(default_factory=list)  # pre-roll, then the episode (capped)
    peak_objects: list = field(default_factory=list)  # labelled boxes (x, y, w, h) on the peak frame
    objects: dict = field(default_factory=dict)  # track id -> what was seen of it (see add_objects)
    object_terms: dict = field(default_factory=dict)  # (term, track) -> the strongest anomaly term
    # Descriptions through the worker's describe queue (see E2ESystem._request_description).
    phase: str = "open"  # "open" -> "closing" (close_episode) -> "closed" (its final record emitted)
    answer: object = None  # the latest description that arrived (VLMAnswer)
    answer_score: float = 0.0  # the peak score that description was asked for
    emitted_answer: object = None  # the description the last emitted record carried
    requested_score: float = 0.0  # the peak score of the latest request
    requested_at: float | None = None  # when (clock) it was asked for
    describing: int = 0  # its requests waiting or running
    vlm_error: str = ""  # why the last request gave nothing (while no description arrived)
    severity: str = "low"  # the latest decision's severity (the queue's priority)
    snapshot: str = ""
    clip: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, ts: float, result: DetectorResult, image: np.ndarray, scale: float) -> None:
        self.add_objects(ts, result.details, image, scale)
        self.scores.append((ts - self.started_ts, result.score))
        if result.score >= self.threshold:
            self.last_above_ts = ts
        if result.score > self.peak_score or self.peak_image is None:
            self.peak_score = result.score
            self.peak_ts = ts
            self.peak_image = image.copy()  # only during an anomaly, only on a new peak
            self.peak_regions = [[round(v * scale) for v in r] for r in result.regions]
            self.peak_details = result.details
            self.peak_objects = _boxes_at_peak(result.details, scale)

    def add_objects(self, ts: float, details: dict, image: np.ndarray, scale: float = 1.0) -> None:
        """Follow the objects the detector reports (``details["objects"]``, ``["object_terms"]``).

        Per track: its label, best confidence, first and last time, its box then (in ``image``'s
        pixels: the analysis frame's times ``scale``) and the crop of it at its best confidence (at
        most OBJECT_CROP px on a side), for the event's thumbnails.
        """
        h, w = image.shape[:2]
        for obj, x1, y1, x2, y2 in reported_objects(details, scale):
            track, label, score = int(obj["id"]), str(obj["label"]), float(obj["score"])
            seen = self.objects.get(track)
            if seen is None:
                seen = self.objects[track] = {"track": track, "label": label, "score": 0.0, "first": ts,
                                              "last": ts, "box": None, "crop": None}
            seen["label"], seen["last"] = label, ts
            if score >= seen["score"]:
                seen["score"], seen["box"] = score, [round(x1), round(y1), round(x2), round(y2)]
                crop = image[max(0, int(y1)):min(h, round(y2)), max(0, int(x1)):min(w, round(x2))]
                if crop.size:
                    side = max(crop.shape[:2])
                    if side > OBJECT_CROP:
                        f = OBJECT_CROP / side
                        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * f)), max(1, round(crop.shape[0] * f))),
                                          interpolation=cv2.INTER_AREA)
                    seen["crop"] = crop.copy()
        for term in details.get("object_terms") or ():
            key = (term.get("term"), term.get("track"))
            if term.get("value", 0) > self.object_terms.get(key, {}).get("value", -1):
                self.object_terms[key] = dict(term)

    def object_summary(self) -> tuple[list[str], list[dict], list[dict]]:
        """(labels seen, objects without their crops, the strongest terms) for the event record."""
        objects = sorted(self.objects.values(), key=lambda o: (-o["score"], o["track"]))
        labels = sorted({o["label"] for o in objects})
        plain = [{k: v for k, v in o.items() if k != "crop"} for o in objects[:MAX_EVENT_OBJECTS]]
        terms = sorted(self.object_terms.values(), key=lambda t: -float(t.get("value", 0)))[:MAX_EVENT_TERMS]
        return labels, plain, terms

    @property
    def mean_score(self) -> float:
        return sum(s for _, s in self.scores) / len(self.scores) if self.scores else 0.0

    @property
    def duration(self) -> float:
        return self.scores[-1][0] if self.scores else 0.0

    def curve(self) -> list[list[float]]:
        step = max(1, math.ceil(len(self.scores) / SCORE_CURVE_POINTS))
        return [[round(t, 2), round(s, 4)] for t, s in self.scores[::step]]


class E2ESystem:
    def __init__(
        self,
        config: dict,
        *,
        source: FrameSource,
        detector: Detector,
        agent: AgentPolicy,
        vlm=None,
        callbacks: Callbacks | None = None,
        snapshot_store: Callable[[uuid.UUID, np.ndarray], str] | None = None,
        clip_store: Callable[[uuid.UUID, ClipFrames, float], str] | None = None,
        crop_store: Callable[[uuid.UUID, list[tuple[int, np.ndarray]]], dict[int, str]] | None = None,
        clip_pre_seconds: float = 4.0,
        clip_max_seconds: float = 30.0,
        executor: Executor | None = None,
        realtime: bool = True,
        clock: Callable[[], float] = time.time,
        reconnect_max: float = 30.0,
        live_rate: Callable[[], float] | None = None,
        offline_after: float | None = 10.0,
        describe_queue=None,
        describe_repeat_seconds: float = 5.0,
        describe_peak_gain: float = 0.2,
        describe_deadline: float | None = None,
    ):
        self.config = config
        self.camera_id = config.get("id")
        self.source = source
        self.detector = detector
        self.agent = agent
        self.vlm = vlm
        self.callbacks = callbacks or Callbacks()
        self.snapshot_store = snapshot_store
        self.clip_store = clip_store
        self.crop_store = crop_store
        self.current_objects: list[dict] = []  # the objects followed now (status API), frame fractions
        self.executor = executor
        self.realtime = realtime
        self.clock = clock
        self.reconnect_max = reconnect_max
        self.live_rate = live_rate or (lambda: 0.0)
        # A camera not watched (reconnecting or error) for ``offline_after`` seconds gets an event
        # (severity high, details.kind "camera_offline") through the normal event path; frames
        # coming back close it. None: never.
        self.offline_after = offline_after
        # The worker's description queue (inference/describe_queue.py): with one, the VLM describes an
        # episode when it opens, again when its peak rises by ``describe_peak_gain`` (at most once per
        # ``describe_repeat_seconds``), and at its close only when no description arrived; each
        # description that arrives re-emits the event's record. Without one: at the close, in the
        # episode executor, as before.
        self.describe_queue = describe_queue if vlm is not None else None
        self.describe_repeat_seconds = float(describe_repeat_seconds)
        self.describe_peak_gain = float(describe_peak_gain)
        self.describe_deadline = describe_deadline
        self._describe_frames_fn, self._describe_frames_kw = _frames_describer(vlm)
        self._down_since: float | None = None
        self._was_running = False
        self._offline_record: dict | None = None
        # The camera's health (covered, blurred, moved, frozen, dark, blinded): one event per condition
        # through the normal event path; while a condition is pending or lasts, no scene episode opens
        # (``scene_suppressed`` counts the frames above the threshold that did not open one).
        self.health = make_health(config)
        self._health_records: dict[str, dict] = {}
        self.scene_suppressed = 0
        self.health_ms = 0.0  # the latest health sample's cost
        # What the camera runs without (a detector's missing model, say): shown as its error while it runs.
        self.warning = str(getattr(detector, "warning", "") or "")[:500]
        self.threshold = float(config.get("threshold", 0.5))
        self.close_after = float(config.get("event_close_seconds", 3.0))
        self.analysis_fps = float(config.get("analysis_fps", 5.0))
        self.analysis_width = int(config.get("analysis_width", 360))
        self.episode: Episode | None = None
        self.state = "stopped"
        self.error = ""
        self.frames = 0
        self.last_frame_wall: float | None = None
        self.measured_fps = 0.0
        self._fps_window: list[float] = []
        self.stats = CameraStats(clock=clock)  # detector ms, frame lag, events (inference/stats.py)
        self._pending = []  # futures of episode finalisations
        self.finalised_inline = 0  # episodes the executor could not take, finished in the camera thread
        # Event clips: the last analysed frames (pre-roll) and a cap on an episode's frames.
        self._clip_max_frames = max(1, math.ceil(clip_max_seconds * self.analysis_fps))
        self._preroll: deque | None = None
        if clip_store is not None:
            self._preroll = deque(maxlen=max(1, math.ceil(clip_pre_seconds * self.analysis_fps)))

    # -- one analysed frame ------------------------------------------------------
    def process(self, frame: Frame, captured_at: float | None = None) -> DetectorResult:
        """Analyse one frame. ``captured_at`` (wall clock, as ``clock``) gives the frame lag when known."""
        small, gray = analysis_images(frame.image, self.analysis_width)
        if self.health is not None:
            self._health_update(small, frame.timestamp)
        started = time.perf_counter()
        result = self.detector.score(detector_input(self.detector, small, gray), frame.timestamp)
        detector_ms = (time.perf_counter() - started) * 1000.0
        self.frames += 1
        now = self.clock()
        self.stats.analysed(detector_ms, None if captured_at is None else now - captured_at)
        self.last_frame_wall = now
        self._fps_window.append(now)
        if len(self._fps_window) > 20:
            del self._fps_window[0]
        if len(self._fps_window) > 1 and self._fps_window[-1] > self._fps_window[0]:
            self.measured_fps = (len(self._fps_window) - 1) / (self._fps_window[-1] - self._fps_window[0])
        self.callbacks.on_score(self.camera_id, frame.timestamp, result)
        self.current_objects = _objects_now(result.details, gray.shape[1], gray.shape[0], frame.timestamp, now)
        scale = frame.image.shape[1] / gray.shape[1]
        self._track(frame, result, scale, now)
        if self._preroll is not None:
            # The downscaled frame is new unless the source is already small: then copy (cheap).
            clip_image = small.copy() if small is frame.image else small
            if self.episode is not None and len(self.episode.clip_frames) < self._clip_max_frames:
                self.episode.clip_frames.append((frame.timestamp, clip_image))
            self._preroll.append((frame.timestamp, clip_image))
        return result

    def _track(self, frame: Frame, result: DetectorResult, scale: float, now: float) -> None:
        ep = self.episode
        if ep is None:
            if result.score < self.threshold:
                return
            if self.health is not None and self.health.suspect:
                self.scene_suppressed += 1  # the camera itself is the news: one health event, not a flood
                return
            ep = self.episode = Episode(
                id=uuid.uuid4(), started_wall=now, started_ts=frame.timestamp,
                last_above_ts=frame.timestamp, threshold=self.threshold,
            )
            if self._preroll is not None:
                ep.clip_frames = list(self._preroll)[-(self._clip_max_frames - 1):] if self._clip_max_frames > 1 else []
            ep.add(frame.timestamp, result, frame.image, scale)
            self.stats.event()
            self.callbacks.on_anomaly_started(self.camera_id, ep)
            # The event exists from the first anomalous frame: operators see it at once.
            decision = self.agent.decide(self._summary(ep, None))
            ep.severity, ep.snapshot = decision.severity, self._snapshot(ep)
            self._emit(ep, decision, answer=None, snapshot=ep.snapshot)
            if self.describe_queue is not None:
                self._request_description(ep, "open")
            return
        ep.add(frame.timestamp, result, frame.image, scale)
        if (self.describe_queue is not None and ep.peak_ts == frame.timestamp
                and ep.peak_score >= ep.requested_score * (1.0 + self.describe_peak_gain)
                and (ep.requested_at is None or now - ep.requested_at >= self.describe_repeat_seconds)):
            self._request_description(ep, "peak")  # a new peak clearly above the one asked about
        quiet = frame.timestamp - ep.last_above_ts
        if quiet >= self.close_after or frame.timestamp - ep.started_ts >= MAX_EVENT_SECONDS:
            self.close_episode(now)

    def close_episode(self, now: float | None = None) -> None:
        ep, self.episode = self.episode, None
        if ep is None:
            return
        ep.ended_wall = self.clock() if now is None else now
        ep.phase = "closing"  # a description arriving now is left to _finalise
        if self.executor is not None:
            self._pending = [f for f in self._pending if not f.done()]
            try:
                self._pending.append(self.executor.submit(self._finalise, ep))
                return
            except RuntimeError as exc:  # a bounded executor full (QueueFull), or shut down
                # Never lose the event: finish it here, in the camera thread (which waits meanwhile).
                self.finalised_inline += 1
                log.warning("Camera %s: episode %s could not be queued (%s); finishing it in the camera thread "
                            "(%d so far)", self.camera_id, ep.id, exc, self.finalised_inline)
        self._finalise(ep)

    def _finalise(self, ep: Episode) -> None:
        """Describe the peak frame, decide, and record the closed event (off the frame loop)."""
        if self.describe_queue is not None:
            return self._finalise_queued(ep)
        answer = None
        if self.vlm is not None and ep.peak_image is not None:
            try:
                answer = self.vlm.describe(ep.peak_image, self.config.get("vlm_prompt", ""))
            except Exception as exc:  # a failing model must not lose the event
                log.exception("VLM failed on camera %s", self.camera_id)
                ep.peak_details = {**ep.peak_details, "vlm_error": str(exc)[:300]}
        decision = self.agent.decide(self._summary(ep, answer))
        clip = self._clip(ep)
        self._crops(ep)
        self._emit(ep, decision, answer=answer, snapshot=self._snapshot(ep), clip=clip)
        self.callbacks.on_anomaly_ended(self.camera_id, ep)

    # -- descriptions through the worker's queue -------------------------------------------
    def _finalise_queued(self, ep: Episode) -> None:
        """Close with the latest description; without one (and none on its way), ask for one with a
        deadline and record the closed event now: when it arrives, the record is emitted again."""
        with ep.lock:
            answer, ask = ep.answer, ep.answer is None and ep.describing == 0
        if ask:
            self._request_description(ep, "close")
        decision = self.agent.decide(self._summary(ep, answer))
        clip = self._clip(ep)
        self._crops(ep)
        snapshot = self._snapshot(ep)
        with ep.lock:
            ep.phase, ep.clip, ep.snapshot, ep.severity = "closed", clip, snapshot, decision.severity
            ep.emitted_answer = answer
            self._emit(ep, decision, answer=answer, snapshot=snapshot, clip=clip)
        if ep.answer is not answer:  # one arrived while this ran: record it too
            self._describe_update(ep)
        self.callbacks.on_anomaly_ended(self.camera_id, ep)

    def _description_frames(self, ep: Episode) -> list:
        """What is sent, oldest first: a frame about a second before the peak and one about a second
        after it (from the clip's frames, when kept and already seen) around the peak frame, for a
        backend with ``describe_frames``; the peak frame alone otherwise."""
        if self._describe_frames_fn is None:
            return [ep.peak_image]
        clip = list(ep.clip_frames)
        before = [image for ts, image in clip if ts <= ep.peak_ts - 0.8]
        after = [image for ts, image in clip if ts >= ep.peak_ts + 0.8]
        return before[-1:] + [ep.peak_image] + after[:1]

    def _request_description(self, ep: Episode, why: str) -> None:
        """Queue a description of the episode's peak (never waits: the queue's threads run it)."""
        if ep.peak_image is None:
            return
        frames, peak = self._description_frames(ep), ep.peak_image
        prompt, score = self.config.get("vlm_prompt", ""), ep.peak_score
        with ep.lock:
            ep.requested_score, ep.requested_at = score, self.clock()
            ep.describing += 1

        def run():
            if self._describe_frames_fn is not None:
                return self._describe_frames_fn(frames, prompt, **self._describe_frames_kw)
            return self.vlm.describe(peak, prompt)

        def done(answer, reason):
            self._described(ep, score, answer, reason, why)

        self.describe_queue.submit(self.camera_id, run, done, severity=ep.severity,
                                   score=score / self.threshold if self.threshold > 0 else score,
                                   deadline=self.describe_deadline, key=(self.camera_id, ep.id))

    def _described(self, ep: Episode, score: float, answer, reason: str, why: str) -> None:
        """A request's outcome (in a queue thread, or the caller's when refused at once)."""
        with ep.lock:
            ep.describing -= 1
            if answer is None:
                if reason != "superseded" and ep.answer is None:
                    ep.vlm_error = reason
                    log.info("Camera %s: no description of episode %s (%s request): %s",
                             self.camera_id, ep.id, why, reason)
                return
            if ep.answer is not None and score < ep.answer_score:
                return  # an older peak's description, late: the newer one stays
            ep.answer, ep.answer_score, ep.vlm_error = answer, score, ""
        self._describe_update(ep)

    def _describe_update(self, ep: Episode) -> None:
        """Emit the episode's record again with its latest description and the decision it leads to
        (open: the event stays open; closed: the final record, its clip kept). While closing,
        ``_finalise`` uses it instead."""
        answer = ep.answer
        if answer is None or ep.phase == "closing":
            return
        try:
            decision = self.agent.decide(self._summary(ep, answer))
        except Exception:
            log.exception("Camera %s: the agent failed on a description of episode %s", self.camera_id, ep.id)
            return
        with ep.lock:
            if ep.answer is not answer or ep.emitted_answer is answer or ep.phase == "closing":
                return  # a newer one is on its way, this one is out already, or _finalise takes it
            ep.severity, ep.emitted_answer = decision.severity, answer
            try:
                self._emit(ep, decision, answer=answer, snapshot=ep.snapshot, clip=ep.clip)
            except Exception:
                log.exception("Camera %s: could not record the description of episode %s", self.camera_id, ep.id)

    def _summary(self, ep: Episode, answer) -> EpisodeSummary:
        return EpisodeSummary(
            peak_score=ep.peak_score, mean_score=ep.mean_score, duration=ep.duration,
            threshold=self.threshold, answer=answer, details=ep.peak_details or {},
        )

    def _snapshot(self, ep: Episode) -> str:
        if self.snapshot_store is None or ep.peak_image is None:
            return ""
        try:
            return self.snapshot_store(ep.id, ep.peak_image)
        except Exception:
            log.exception("Could not store the snapshot of event %s", ep.id)
            return ""

    def _crops(self, ep: Episode) -> None:
        """Store each object's best crop (its thumbnail); the record then names the files."""
        crops = [(o["track"], o["crop"]) for o in ep.objects.values() if o.get("crop") is not None]
        if self.crop_store is None or not crops:
            return
        try:
            names = self.crop_store(ep.id, crops)
        except Exception:
            log.exception("Could not store the object thumbnails of event %s", ep.id)
            return
        for track, name in names.items():
            if track in ep.objects:
                ep.objects[track]["thumbnail"] = name

    def _clip(self, ep: Episode) -> str:
        """Write the episode's clip (in the executor, off the frame loop); its relative path or ""."""
        frames, ep.clip_frames = ep.clip_frames, []
        if self.clip_store is None or not frames:
            return ""
        try:
            return self.clip_store(ep.id, frames, self.analysis_fps)
        except Exception:
            log.exception("Could not store the clip of event %s", ep.id)
            return ""

    def _emit(self, ep: Episode, decision: Decision, *, answer, snapshot: str, clip: str = "") -> None:
        h, w = ep.peak_image.shape[:2] if ep.peak_image is not None else (0, 0)
        labels, objects, terms = ep.object_summary()
        record = {
            "id": str(ep.id),
            "camera_id": self.camera_id,
            "started_at": iso(ep.started_wall),
            "ended_at": iso(ep.ended_wall) if ep.ended_wall is not None else None,
            "peak_score": round(ep.peak_score, 4),
            "mean_score": round(ep.mean_score, 4),
            "severity": decision.severity,
            "description": answer.summary if answer else "",
            "decision": decision.as_dict(),
            "snapshot": snapshot,
            "clip": clip,
            "labels": labels,
            "details": _jsonable({
                "detector": self.config.get("detector", ""),
                "objects": objects,
                "object_terms": terms,
                "threshold": self.threshold,
                "regions": ep.peak_regions,
                "peak_objects": ep.peak_objects,
                "frame_size": [w, h],
                "score_curve": ep.curve(),
                "vlm": {"summary": answer.summary, "threat_level": answer.threat_level,
                        "objects": answer.objects} if answer else None,
                "detector_details": {**ep.peak_details, "vlm_error": ep.vlm_error} if ep.vlm_error and not answer
                else ep.peak_details,
            }),
        }
        self.callbacks.on_event(self.camera_id, record)

    def stats_snapshot(self) -> dict:
        """This camera's figures (JSON-able): state, fps, frames analysed, lag, detector ms, events.

        ``fps`` reads 0 once no frame was analysed for a few frame intervals (a stalled source
        must not show its last rate).
        """
        fps, last = self.measured_fps, self.last_frame_wall
        if last is None or self.clock() - last > max(5.0, 5.0 / self.analysis_fps):
            fps = 0.0
        health = None
        if self.health is not None:
            health = {"learning": not self.health.fitted, "active": self.health.active,
                      "ms": round(self.health_ms, 3)}
        return {"state": self.state, "fps": round(fps, 3), "frames": self.frames, **self.stats.snapshot(),
                "objects": self.current_objects, "health": health, "scene_suppressed": self.scene_suppressed}

    def wait_pending(self, timeout: float | None = None) -> None:
        for f in list(self._pending):
            f.result(timeout)

    # -- the live loop ------------------------------------------------------------
    def _set_state(self, state: str, error: str = "") -> None:
        if (state, error) != (self.state, self.error):
            if state in ("reconnecting", "error"):
                if self._down_since is None:
                    self._down_since = self.clock()
            elif state == "running":
                self._down_since = None
                self._was_running = True
                self._offline_resolved("back online")
            self.state, self.error = state, error
            self.callbacks.on_state(self.camera_id, state, error)

    # -- camera offline events -------------------------------------------------------
    def _check_offline(self) -> None:
        """Record the offline event once the camera has not been watched for ``offline_after`` s."""
        if (self.offline_after is None or self._down_since is None or self._offline_record is not None
                or self.clock() - self._down_since < self.offline_after):
            return
        name = self.config.get("name") or f"#{self.camera_id}"
        verb = "went offline" if self._was_running else "is offline"
        cause = self.error or self.state
        self._offline_record = {
            "id": str(uuid.uuid4()),
            "camera_id": self.camera_id,
            "started_at": iso(self._down_since),
            "ended_at": None,
            "peak_score": 0.0,
            "mean_score": 0.0,
            "severity": "high",
            "description": f"Camera {name} {verb}: {cause}"[:1000],
            "decision": {"severity": "high", "actions": ["record", "notify", "alert_now"],
                         "reasons": [f"camera {verb}: {cause}"[:300]], "policy": "system"},
            "snapshot": "",
            "clip": "",
            "details": {"kind": OFFLINE_KIND, "state": self.state, "cause": cause[:500]},
        }
        self._emit_offline()

    def _offline_resolved(self, how: str) -> None:
        """Frames came back (or the camera stopped): close the offline event, if one was recorded."""
        record, self._offline_record = self._offline_record, None
        if record is None:
            return
        now = self.clock()
        started = datetime.fromisoformat(record["started_at"]).timestamp()
        record = {**record, "ended_at": iso(now),
                  "description": f"{record['description']} ({how} after {now - started:.0f} s)"[:1000],
                  "details": {**record["details"], "resolved": how, "offline_seconds": round(now - started, 1)}}
        self._offline_record = None
        self._emit_offline(record)

    def _emit_offline(self, record: dict | None = None) -> None:
        try:
            self.callbacks.on_event(self.camera_id, record or self._offline_record)
        except Exception:  # the event sink failing must not stop the camera loop
            log.exception("Could not record the offline event of camera %s", self.camera_id)

    # -- camera health events -----------------------------------------------------------
    def _health_update(self, image: np.ndarray, ts: float) -> None:
        started = time.perf_counter()
        try:
            changes = self.health.update(image, ts)
        except Exception:  # a failing measurement must not stop the camera
            log.exception("Camera %s: health measurement failed", self.camera_id)
            return
        if self.health.last:
            self.health_ms = (time.perf_counter() - started) * 1000.0
        for change in changes:
            self._health_event(change, image)

    def _health_event(self, change: HealthChange, image: np.ndarray | None = None, how: str = "") -> None:
        """Record a health condition starting (a new event) or ending (the same event, closed)."""
        now = self.clock()
        name = self.config.get("name") or f"#{self.camera_id}"
        if change.started:
            if self.episode is not None:
                self.close_episode(now)  # the scene episode that the tampering opened ends here
            severity = HEALTH_SEVERITY.get(change.condition, "medium")
            event_id = uuid.uuid4()
            snapshot = ""
            if self.snapshot_store is not None and image is not None:
                try:
                    snapshot = self.snapshot_store(event_id, image)
                except Exception:
                    log.exception("Camera %s: health snapshot failed", self.camera_id)
            record = {
                "id": str(event_id),
                "camera_id": self.camera_id,
                "started_at": iso(now - max(0.0, change.seconds)),
                "ended_at": None,
                "peak_score": 0.0,
                "mean_score": 0.0,
                "severity": severity,
                "description": f"{name}: {change.sentence}"[:1000],
                "decision": {"severity": severity, "actions": actions_for(severity),
                             "reasons": [change.sentence[:300]], "policy": "system"},
                "snapshot": snapshot,
                "clip": "",
                "details": _jsonable({"kind": HEALTH_KIND, "condition": change.condition,
                                      "measurements": change.measurements, "confirmed_after": round(change.seconds, 1)}),
            }
            self._health_records[change.condition] = record
        else:
            record = self._health_records.pop(change.condition, None)
            if record is None:
                return
            ended = change.sentence + (f" ({how})" if how else "")
            record = {**record, "ended_at": iso(now),
                      "description": f"{record['description']}. {ended}"[:1000],
                      "details": {**record["details"], "resolved": how or "condition ended",
                                  "seconds": round(change.seconds, 1),
                                  "end_measurements": _jsonable(self.health.last if self.health else {})}}
            if not self._health_records and not how and hasattr(self.detector, "reset"):
                self.detector.reset()  # no motion is measured across the uncovering (or the move back)
        try:
            self.callbacks.on_event(self.camera_id, record)
        except Exception:  # the event sink failing must not stop the camera loop
            log.exception("Could not record the health event of camera %s", self.camera_id)

    def _health_close(self, how: str) -> None:
        if self.health is None:
            return
        for change in self.health.close():
            self._health_event(change, how=how)

    def _wait(self, stop: threading.Event, seconds: float) -> None:
        """Wait before reconnecting, recording the offline event when its time comes."""
        deadline = time.monotonic() + seconds
        while not stop.is_set():
            self._check_offline()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            step = remaining
            if self.offline_after is not None and self._down_since is not None and self._offline_record is None:
                step = min(step, max(0.05, self._down_since + self.offline_after - self.clock()))
            stop.wait(step)

    def run(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set; reopen the source with backoff when it fails."""
        backoff = 1.0
        try:
            while not stop.is_set():
                try:
                    self.source.open()
                    ended = self._loop(stop)
                    backoff = 1.0
                    if ended:
                        self._set_state("stopped", "The video ended.")
                        return
                except SourceError as exc:
                    self._set_state("reconnecting" if self.source.is_live else "error", str(exc))
                except Exception as exc:
                    log.exception("Camera %s loop failed", self.camera_id)
                    self._set_state("error", f"Internal error: {exc}"[:300])
                finally:
                    self.source.close()
                if self.episode is not None:
                    self.close_episode()
                self._wait(stop, backoff)
                backoff = min(backoff * 2, self.reconnect_max)
        finally:
            self.close_episode()
            self._offline_resolved("camera stopped")
            self._health_close("camera stopped")
            close = getattr(self.detector, "close", None)
            if callable(close):  # e.g. the objects detector's entry in the worker's shared scheduler
                try:
                    close()
                except Exception:
                    log.exception("Closing the detector of camera %s failed", self.camera_id)
            if self.state != "stopped" and (self.state != "error" or stop.is_set()):
                self._set_state("stopped", "")

    def _read_plan(self) -> tuple[int, float]:
        """(frames to step over per read, seconds between reads) for the current watchers.

        Frames are read at the analysis rate, or at the highest live rate someone watches
        (capped by the source), and every frame read is decoded once and shared.
        """
        native = self.source.native_fps
        rate = max(self.analysis_fps, float(self.live_rate() or 0))
        if self.source.is_live or not native:
            return 1, 1.0 / rate
        step = max(1, round(native / min(rate, native)))
        return step, step / native

    def _loop(self, stop: threading.Event) -> bool:
        """Read frames, publish them, analyse at the analysis rate. True when a finite source ended."""
        if self._preroll is not None:
            self._preroll.clear()  # no pre-roll across a reconnect
        step, interval = self._read_plan()
        planned = next_due = time.monotonic()
        min_gap = 0.999 / self.analysis_fps
        last_analysed: float | None = None
        seen_rewinds = getattr(self.source, "rewinds", 0)
        while not stop.is_set():
            frame = self.source.read()
            if frame is None:
                return True
            if self.state != "running":
                self._set_state("running", self.warning)
            captured = frame.timestamp if self.source.is_live else self.clock()
            if self.current_objects:
                frame = dataclasses.replace(frame, objects=tuple(self.current_objects))
            self.callbacks.on_frame(self.camera_id, frame, captured)
            rewinds = getattr(self.source, "rewinds", 0)
            if rewinds != seen_rewinds:
                # A looping file jumped back to its start: no motion is measured across the cut.
                seen_rewinds = rewinds
                if hasattr(self.detector, "reset"):
                    self.detector.reset()
            if last_analysed is None or frame.timestamp - last_analysed >= min_gap:
                last_analysed = frame.timestamp
                self.process(frame, captured)
            if step > 1:
                self.source.skip(step - 1)
            now = time.monotonic()
            if now - planned >= 1.0:
                planned = now
                step, interval = self._read_plan()
            if self.realtime:
                next_due += interval
                delay = next_due - time.monotonic()
                if delay > 0:
                    stop.wait(delay)
                elif delay < -1.0:  # fell behind by over a second: do not try to catch up
                    next_due = time.monotonic()
        return False
