"""``objects``: the motion detector and the objects in view, with each camera's normal over both.

Per analysed frame the motion detector scores what moves (``inference.detectors``). Where
something moves, or objects are being followed, at most ``detect_fps`` times a second of frame
time, the frame goes to the object model (``inference.objects``, NanoDet by default): in a worker
through the worker-wide :class:`inference.object_scheduler.ObjectScheduler` (budget, priority
by anomaly score, batches across cameras; the camera loop never waits for it), elsewhere
(``vad_eval``, learning, tests) at once. Detections feed the tracker (``inference.tracking``);
the tracks are scored against what this camera learned about objects
(``inference.object_normal``: a class rarely seen in that place, unusual speed, direction or
size, an object left behind, a person down, an unusual dwell). The frame's score is the larger
of the two parts (both are calibrated for 0.5).

Without the model (its files missing or damaged: ``ObjectModelMissing``), the detector runs on
motion alone, says so in ``details["objects_error"]`` and logs it once, naming the file and the
command that restores it.

Parameters: ``motion`` ({}, the motion detector's), ``normal`` ({}, ObjectNormal's), ``tracker``
({}, Tracker's), ``model_dir`` (None: the installed NanoDet), ``min_score`` (0.35, the
detections kept), ``other_min_score`` (0.45: classes other than people need more confidence; on
small grey people the model's stray "dog" or "motorcycle" boxes score below it), ``detect_fps`` (2.0), ``device`` (None: the worker's ``INFERENCE_DEVICE``, "auto" takes
a GPU where there is one; "cpu" elsewhere), ``threshold`` (0.5), ``labels``
(the classes followed: :attr:`ObjectsDetector.LABELS`; null for every class the model knows).
The object part's defaults (:attr:`ObjectsDetector.NORMAL_DEFAULTS`) score where a class is rarely
seen, objects left behind, people down, an unusual outline (``shape``: a person in a wheelchair),
dwell, and the speed of anything but people: on UCSD
Ped1 the continuous terms for people (speed, size, direction) only repeated the motion part's
measurements with the object detector's noise (docs/detection.md, "Objects").

``details``: the motion part's, plus ``motion_score``, ``object_score``, ``driver``, ``objects``
(the tracks followed now: id, label, box, score, speed_rel, since) and ``object_terms`` (the
strongest anomaly terms, with their explanations).
"""

from __future__ import annotations

import itertools
import logging
from typing import Iterable

import numpy as np

from .base import Detector, DetectorResult
from .detectors import MotionDetector
from .images import bgr, gray
from .object_normal import ObjectNormal
from .object_scheduler import ObjectScheduler
from .objects import DEFAULT_MODEL_DIR, NanoDet, ObjectModelMissing
from .pool import ResourcePool
from .tracking import Tracker

log = logging.getLogger(__name__)

STATE_VERSION = 1
MAX_TERMS = 3
#: Between detections the tracks are scored again at most this often (seconds of frame time): the
#: object terms change with detections, and their Python costs the camera threads' shared GIL.
SCORE_EVERY = 0.5
_KEYS = itertools.count(1)


def load_object_model(config: dict) -> NanoDet:
    """The object model a pool shares between cameras (``pool.shared("objects", config, ...)``)."""
    return NanoDet(model_dir=config["model_dir"], score_threshold=config["min_score"], device=config["device"],
                   threads=config.get("threads"))


def object_scheduler(pool: ResourcePool, model, key: dict) -> ObjectScheduler | None:
    """The worker's scheduler for ``model``, when the pool says this process runs live cameras."""
    options = pool.options.get("objects") or {}
    if not options.get("live"):
        return None
    return pool.shared("object-scheduler", {**key, "budget_fps": options.get("budget_fps", 10.0)},
                       lambda cfg: ObjectScheduler(model, budget_fps=cfg["budget_fps"],
                                                   max_batch=int(options.get("max_batch", 8))))


class ObjectsDetector(Detector):
    name = "objects"
    wants_color = True
    needs_pool = True

    #: What the object part scores by default: where a class is rarely seen, objects left behind, people
    #: down, an unusual outline, unusual dwell, and unusual speed of anything but people (whose motion the motion part
    #: measures better). Size and direction (motion's job too) are measured and reported, not scored.
    NORMAL_DEFAULTS = {"weights": {"size": 0.0, "direction": 0.0}, "speed_skip": ["person"],
                       "speed_sd_floor": 0.5}
    #: The classes followed by default: people, vehicles, animals, carried things.
    LABELS = ["person", "bicycle", "car", "motorcycle", "bus", "truck", "dog", "cat", "horse", "backpack",
              "handbag", "suitcase", "skateboard"]
    DEFAULTS = {"motion": {}, "normal": {}, "tracker": {}, "model_dir": None, "min_score": 0.35,
                "other_min_score": 0.45, "detect_fps": 2.0, "device": None, "threshold": 0.5, "labels": LABELS}

    @classmethod
    def check_params(cls, **params) -> dict:
        """The merged parameters, or ValueError naming the problem (loads no model: the web side checks here)."""
        unknown = set(params) - set(cls.DEFAULTS)
        if unknown:
            raise ValueError(f"unknown objects detector parameter(s): {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(sorted(cls.DEFAULTS))}; the parts' own parameters go under "
                             "'motion', 'normal' and 'tracker')")
        merged = {**cls.DEFAULTS, **params}
        for part in ("motion", "normal", "tracker"):
            if not isinstance(merged[part] or {}, dict):
                raise ValueError(f"objects detector: '{part}' must be an object of parameters")
        try:
            threshold, detect_fps, min_score, other = (float(merged[k]) for k in (
                "threshold", "detect_fps", "min_score", "other_min_score"))
        except (TypeError, ValueError):
            raise ValueError("objects detector: threshold, detect_fps and min_score are numbers") from None
        if not 0 < detect_fps <= 30 or not 0 < min_score < 1 or not 0 < other < 1:
            raise ValueError("objects detector: detect_fps must be above 0 (at most 30), min_score and "
                             "other_min_score between 0 and 1")
        labels = merged["labels"]
        if labels is not None and (not isinstance(labels, list) or not all(isinstance(x, str) for x in labels)):
            raise ValueError("objects detector: 'labels' is a list of class names (or null for every class)")
        MotionDetector(**{"threshold": threshold, **(merged["motion"] or {})})
        ObjectNormal(**cls._normal_params(merged))
        Tracker(**(merged["tracker"] or {}))
        return merged

    @classmethod
    def _normal_params(cls, merged: dict) -> dict:
        given = dict(merged["normal"] or {})
        weights = {**cls.NORMAL_DEFAULTS["weights"], **(given.get("weights") or {})}
        return {**cls.NORMAL_DEFAULTS, "threshold": merged["threshold"], **given, "weights": weights}

    def __init__(self, pool=None, **params):
        merged = self.check_params(**params)
        self.threshold = float(merged["threshold"])
        self.detect_fps = float(merged["detect_fps"])
        self.other_min_score = float(merged["other_min_score"])
        min_score = float(merged["min_score"])
        labels = merged["labels"]
        super().__init__(**merged)
        self.labels = set(labels) if labels else None
        self.motion = MotionDetector(**{"threshold": self.threshold, **(merged["motion"] or {})})
        self.normal = ObjectNormal(**self._normal_params(merged))
        self.tracker_params = dict(merged["tracker"] or {})
        self.tracker = Tracker(**self.tracker_params)
        pool = pool if pool is not None else ResourcePool()
        key = {"model_dir": str(merged["model_dir"] or pool.options.get("objects", {}).get("model_dir")
                                or DEFAULT_MODEL_DIR),
               "min_score": min_score,
               "device": str(merged["device"] or pool.options.get("objects", {}).get("device") or "cpu"),
               "threads": pool.options.get("objects", {}).get("threads")}
        self.model = None
        self.model_error = ""
        self.scheduler = None
        try:
            self.model = pool.shared("objects", key, load_object_model)
        except ObjectModelMissing as exc:
            self.model_error = str(exc)
            log.error("The objects detector runs on motion alone: %s", exc)
        if self.model is not None:
            self.scheduler = object_scheduler(pool, self.model, key)
        self.detections = 0
        self._scheduler_key = next(_KEYS)  # this detector's entry in the shared scheduler (never reused)
        self.reset()

    @property
    def warning(self) -> str:
        """Shown as the camera's error while it runs: what it runs without."""
        return f"Objects off, motion only: {self.model_error}" if self.model_error else ""

    # -- state of the frame chain ------------------------------------------------------------------------
    def reset(self) -> None:
        self.motion.reset()
        self.tracker.reset()
        self._last_offer: float | None = None
        self._last_t: float | None = None
        self._scored: tuple | None = None  # (time, object score, terms) of the last scoring of the tracks

    def _key(self) -> int:
        return self._scheduler_key

    def _due(self, t: float, moving: bool) -> bool:
        if self.model is None:
            return False
        if not (moving or self.tracker.following):
            return False
        return self._last_offer is None or t - self._last_offer >= 1.0 / self.detect_fps - 1e-6

    def _keep(self, detections: list) -> list:
        return [d for d in detections if (self.labels is None or d.label in self.labels)
                and (d.label == "person" or d.score >= self.other_min_score)]

    def _detect_now(self, image: np.ndarray, t: float) -> None:
        self.tracker.update(self._keep(self.model.detect_one(bgr(image))), t)
        self.detections += 1

    # -- scoring -----------------------------------------------------------------------------------------
    def score(self, image: np.ndarray, timestamp: float) -> DetectorResult:
        t = float(timestamp)
        if self._last_t is not None and t < self._last_t:
            self.reset()  # a new clip
        self._last_t = t
        m = self.motion.score(gray(image), t)
        moving = bool(m.details.get("active_cells")) or bool(m.regions)
        updated = False
        if self._due(t, moving):
            self._last_offer = t
            if self.scheduler is not None:
                self.scheduler.offer(self._key(), bgr(image), t, priority=m.score)
            else:
                self._detect_now(image, t)
                updated = True
        if self.scheduler is not None:
            result = self.scheduler.take(self._key())
            if result is not None and (self.tracker.time is None or result.timestamp >= self.tracker.time):
                self.tracker.update(self._keep(result.detections), result.timestamp)
                self.detections += 1
                updated = True
        h, w = image.shape[:2]
        tracks = self.tracker.predict(t) if self.tracker.following else []
        if tracks and (updated or self._scored is None or t - self._scored[0] >= SCORE_EVERY):
            self._scored = (t, *self.normal.score(tracks, w, h, t))
        elif not tracks:
            self._scored = None
        o_score, terms = (self._scored[1], self._scored[2]) if self._scored else (0.0, [])
        score = max(m.score, o_score)
        if updated and tracks and score < self.normal.params["learn_below"]:  # learn from the detected frames
            self.normal.observe(tracks, w, h, t, learn=True)
        regions = list(m.regions)
        for term in terms:
            if term["value"] >= self.threshold and term.get("box"):
                x1, y1, x2, y2 = term["box"]
                regions.append((int(x1), int(y1), int(max(1, x2 - x1)), int(max(1, y2 - y1))))
        details = dict(m.details)
        details.update({
            "motion_score": round(float(m.score), 4),
            "object_score": round(float(o_score), 4),
            "driver": "objects" if o_score > m.score else "motion",
            "objects": [{"id": tr.id, "label": tr.label, "box": [round(float(v), 1) for v in tr.box],
                         "score": round(float(tr.score), 3), "speed_rel": round(float(tr.speed_rel), 2),
                         "since": round(float(tr.first_seen), 2)} for tr in tracks],
            "object_terms": [{k: term[k] for k in ("term", "track", "label", "value", "explain", "numbers")}
                             for term in terms[:MAX_TERMS]],
        })
        if self.model_error:
            details["objects_error"] = self.model_error
        return DetectorResult(score=float(score), regions=regions, details=details)

    # -- learning ----------------------------------------------------------------------------------------
    def _walk(self, frames: Iterable, fps: float, items: list):
        """Gray frames for the motion part, while the objects of the same frames go to ``items``."""
        dt = 1.0 / float(fps)
        t = 0.0
        last = None
        tracker = Tracker(**self.tracker_params)

        def one(frame):
            nonlocal t, last
            if self.model is not None and (last is None or t - last >= 1.0 / self.detect_fps - 1e-6):
                last = t
                tracker.update(self._keep(self.model.detect_one(bgr(frame))), t)
                h, w = frame.shape[:2]
                items.append((tracker.tracks, w, h, t))
            t += dt
            return gray(frame)

        for item in frames:
            if item is None:
                items.append(None)
                tracker.reset()
                last = None
                t += 100.0
                yield None
            elif isinstance(item, np.ndarray) and item.ndim in (2, 3) and (item.ndim == 2 or item.shape[2] in (3, 4)):
                yield one(item)
            else:  # a whole clip
                clip = [one(frame) for frame in item]
                items.append(None)
                tracker.reset()
                last = None
                t += 100.0
                yield clip

    def fit(self, frames: Iterable, fps: float = 10.0, **kwargs) -> "ObjectsDetector":
        """Learn normal motion and normal objects from known-normal footage (None between clips)."""
        items: list = []
        self.motion.fit(self._walk(frames, fps, items), fps=fps, **kwargs)
        self.normal.fit(items)
        self.reset()
        return self

    def feedback(self, frames: Iterable, fps: float = 10.0, **kwargs) -> dict:
        """An operator's false alarm: both parts accept what fired in it (see each part's feedback)."""
        items: list = []
        if not isinstance(frames, (list, tuple)):
            frames = list(frames)
        summary = {"motion": self.motion.feedback(list(self._walk(frames, fps, items)), fps=fps, **kwargs)}
        summary["objects"] = self.normal.feedback(items)
        return summary

    def state_dict(self) -> dict:
        return {"version": STATE_VERSION, "motion": self.motion.state_dict(), "objects": self.normal.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ValueError(f"not an objects detector state (version {STATE_VERSION} expected)")
        self.motion.load_state_dict(state["motion"])
        self.normal.load_state_dict(state["objects"])

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.forget(self._key())
