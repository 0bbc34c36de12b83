"""Multi-object tracking of an object detector's boxes (SORT / ByteTrack style, no weights).

:class:`Tracker` turns the detections of successive analysed frames into tracks with stable
integer ids, and measures what the normal-object model (:mod:`inference.object_normal`) needs
from each track: where its foot point has been, how fast it moves (in pixels per second and in
body heights per second), in which direction, how long it has been in view and how long it has
stood still.

The detections are anything with ``label`` (str), ``score`` (float) and ``box`` (x1, y1, x2, y2
in pixels of the analysed frame): ``inference.objects.Detection`` has that shape, and so does
any stand-in (:class:`DetectionLike`); nothing here imports the detector.

Per track a constant-velocity Kalman filter follows the box centre and size (state: centre x,
centre y, width, height and their rates per SECOND). Frames may come at irregular timestamps:
the loop analyses at about 5 fps but the detector may run on only some frames, and
:meth:`Tracker.update` is called only with frames that were detected; every prediction uses
the real time since the track's last update, and the process noise grows with it.

Matching, at each :meth:`Tracker.update` (all Hungarian assignments, scipy's
``linear_sum_assignment``; a pair is only possible within one class family, so a 'person'
detection never extends a 'car' track):

1. tracks (their boxes predicted to the frame's timestamp) against the HIGH-score detections
   (``score >= high_score``), by IoU >= ``iou_threshold``;
2. tracks still unmatched against the LOW-score detections (``low_score <= score <
   high_score``), by IoU >= ``low_iou_threshold`` (ByteTrack's second association: an occluded
   or blurred object keeps its track instead of losing it to a weak detection);
3. tracks still unmatched against high-score detections still unmatched, by the distance of
   the box centres in box sizes (the longer side of either box): at most ``max_center_shift``,
   plus, for a track of one detection (no velocity yet), ``max_speed_rel`` x the seconds since
   it. This catches a box that changes shape quickly (a person falling: tall to wide) and a new
   object whose next detection comes late.
   A track with a velocity gets no such allowance (its prediction already moves) and its box
   must still cover ``min_overlap`` of the smaller of the two boxes: a person entering where
   another just left must not take over the leaver's track.

A high-score detection left over starts a tentative track; it is confirmed, and gets its id,
at ``min_hits`` hits, and dropped as soon as it misses one detected frame before that (a
spurious detection makes no track). A confirmed track that is not matched coasts on its
prediction and is dropped once it has not been seen for ``max_age_s`` seconds. Detections
below ``low_score`` are ignored. Everything is deterministic: the same calls give the same ids
and numbers.

What a track reports (:class:`Track`, an immutable snapshot):

* ``label``: the majority vote over its detections' labels (ties: the higher summed score),
* ``box``: the filtered (smoothed) box at its latest detection, ``score`` that detection's,
* ``path``: the last ``path_len`` foot points ``(x centre, y2, timestamp)`` as detected,
* ``velocity`` (px/s): a Theil-Sen fit (median of the slopes between points at least half the
  window apart) of the foot points of the last ``velocity_window_s`` seconds: a jittery box
  moves the median little, and irregular timestamps are used as they are,
* ``speed`` (px/s), ``speed_rel`` (speed / box height: body heights per second, so that near
  and far objects compare), ``direction`` (radians, ``atan2(vy, vx)`` in image coordinates:
  0 is to the right, pi/2 is down the image),
* ``dwell``: seconds since it was first seen; ``stationary_s``: for how long its foot point
  has stayed within ``stationary_heights`` (0.3) box heights of where it is now.

Why not norfair: norfair 2.3.0 (its latest release) requires ``numpy<2`` (and filterpy),
and this project runs numpy 2; the part of it needed here (IoU matching with a Kalman
prediction) is a page of numpy, and ByteTrack's two-stage association is not in norfair.
"""

from __future__ import annotations

import math
from collections import deque
from statistics import median
from dataclasses import dataclass
from typing import Iterable, Protocol, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

#: Class families: a track keeps to one family (labels within a family may change by vote:
#: the detector often confuses car / truck, handbag / backpack). A label of no family here is
#: its own family.
FAMILIES: dict[str, frozenset[str]] = {
    "person": frozenset({"person"}),
    "vehicle": frozenset({"bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"}),
    "animal": frozenset({"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"}),
    "bag": frozenset({"backpack", "handbag", "suitcase"}),
}
_FAMILY_OF = {label: name for name, labels in FAMILIES.items() for label in labels}

_BIG = 1e6  # cost of an impossible pair


def family(label: str) -> str:
    """The class family of a detector label (``person``, ``vehicle``, ``animal``, ``bag``, or the
    label itself)."""
    return _FAMILY_OF.get(label, label)


class DetectionLike(Protocol):
    """What the tracker reads from a detection (``inference.objects.Detection`` has it)."""

    label: str
    score: float
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class Track:
    """One tracked object, as of the frame it was returned for (an immutable snapshot)."""

    id: int
    label: str
    family: str
    #: (x1, y1, x2, y2) in analysed-frame pixels: filtered at the latest detection, or
    #: predicted to the requested time by :meth:`Tracker.predict`
    box: tuple[float, float, float, float]
    score: float
    first_seen: float
    last_seen: float
    hits: int
    #: the last foot points as detected: (x centre, y2, timestamp), oldest first
    path: tuple[tuple[float, float, float], ...]
    velocity: tuple[float, float]  # px/s, image coordinates
    speed: float  # px/s
    speed_rel: float  # box heights per second
    direction: float  # radians, atan2(vy, vx)
    dwell: float  # seconds since first seen
    stationary_s: float  # seconds within stationary_heights box heights of where it is now
    time_since_update: float = 0.0  # 0 when a detection of this frame extended it

    @property
    def foot(self) -> tuple[float, float]:
        """(x centre, bottom) of the box: where the object stands."""
        x1, _, x2, y2 = self.box
        return (0.5 * (x1 + x2), y2)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def aspect(self) -> float:
        """width / height (a standing person is about 0.4, a lying one above 1.2)."""
        return self.width / max(self.height, 1e-6)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (n x 4, x1 y1 x2 y2) with every box of ``b`` (m x 4)."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _to_xywh(box: Sequence[float]) -> np.ndarray:
    x1, y1, x2, y2 = (float(v) for v in box)
    return np.array([0.5 * (x1 + x2), 0.5 * (y1 + y2), max(x2 - x1, 1.0), max(y2 - y1, 1.0)])


def theil_sen_velocity(points: Sequence[tuple[float, float, float]], window: float) -> tuple[float, float] | None:
    """Velocity (px/s) of ``points`` ((x, y, t), oldest first) over the last ``window`` seconds:
    per axis the median of the slopes between points at least half the span apart. At least 3
    points are used when the path has them (from up to 3 windows back: sparse detection).
    None with fewer than 2 points or no time between them."""
    n = len(points)
    if n < 2:
        return None
    t_end = points[-1][2]
    start = n - 1
    while start > 0 and points[start - 1][2] >= t_end - window - 1e-9:
        start -= 1
    if n - start < 3:  # sparse: the last 3 points if they are recent enough
        start = max(0, n - 3)
        while start < n - 2 and points[start][2] < t_end - 3.0 * window - 1e-9:
            start += 1
    pts = [points[i] for i in range(start, n)]
    span = pts[-1][2] - pts[0][2]
    if span <= 1e-9:
        return None
    min_dt = 0.5 * span - 1e-9
    vx, vy = [], []
    for i, (xi, yi, ti) in enumerate(pts):
        for xj, yj, tj in pts[i + 1:]:
            dt = tj - ti
            if dt >= min_dt and dt > 1e-9:
                vx.append((xj - xi) / dt)
                vy.append((yj - yi) / dt)
    return float(median(vx)), float(median(vy))


@dataclass(frozen=True)
class _Filter:
    """A track's Kalman state: per coordinate (cx, cy, w, h) its value, rate (per second) and
    covariance terms."""

    pos: list[float]
    vel: list[float]
    p00: list[float]
    p01: list[float]
    p11: list[float]

    def box(self) -> tuple[float, float, float, float]:
        cx, cy = self.pos[0], self.pos[1]
        w, h = max(self.pos[2], 1.0), max(self.pos[3], 1.0)
        return (cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h)


class _State:
    """A track's filter and bookkeeping (internal; :class:`Track` is what callers get)."""

    __slots__ = ("key", "id", "family", "votes", "label", "f", "t", "first_seen", "last_seen", "hits",
                 "score", "path", "anchor", "stationary_s", "velocity")

    def __init__(self, key: int, fam: str, box, t: float, path_len: int, meas_std: float, init_speed_std: float):
        self.key = key
        self.id: int | None = None
        self.family = fam
        self.votes: dict[str, list[float]] = {}
        self.label = ""
        z = [float(v) for v in _to_xywh(box)]
        h = z[3]
        pos = (2.0 * meas_std * h) ** 2
        vel = (init_speed_std * h) ** 2
        self.f = _Filter(z, [0.0] * 4, [pos] * 4, [0.0] * 4, [vel, vel, 0.25 * vel, 0.25 * vel])
        self.t = t
        self.first_seen = t
        self.last_seen = t
        self.hits = 0
        self.score = 0.0
        self.path: deque = deque(maxlen=path_len)
        self.anchor: tuple[float, float, float] | None = None
        self.stationary_s = 0.0
        self.velocity: tuple[float, float] | None = None

    def vote(self, label: str, score: float) -> None:
        """Count a detection's label; the track's label is the most counted (then the higher
        summed score); on a tie it keeps the label it had."""
        v = self.votes.setdefault(label, [0, 0.0])
        v[0] += 1
        v[1] += score
        key = lambda k: (self.votes[k][0], self.votes[k][1])  # noqa: E731
        best = max(sorted(self.votes), key=key)
        if not self.label or key(best) > key(self.label):
            self.label = best


class Tracker:
    """Tracks detected objects across frames (see the module docstring for the method).

    Parameters (defaults in :attr:`DEFAULTS`):

    ``max_age_s`` (1.5)          a confirmed track not seen for this long is dropped
    ``min_hits`` (2)             hits before a track is confirmed (gets its id, is returned)
    ``iou_threshold`` (0.3)      least IoU of a high-score detection with a predicted box
    ``low_score`` (0.2)          detections below this are ignored
    ``high_score`` (0.4)         detections from this score start tracks and match first
    ``low_iou_threshold`` (0.5)  least IoU of a low-score detection with a predicted box
    ``max_center_shift`` (0.5)   third stage: centre distance in box sizes (the longer side;
                                 0: no third stage)
    ``max_speed_rel`` (2.0)      third stage, tracks of one detection: plus this many box
                                 sizes per second since it
    ``min_overlap`` (0.3)        third stage, other tracks: least intersection over the smaller
                                 box of the prediction and the detection
    ``path_len`` (64)            foot points kept per track
    ``velocity_window_s`` (1.0)  seconds of path the velocity is measured over
    ``stationary_heights`` (0.3) box heights within which a track counts as standing still
    ``meas_std`` (0.05)          box measurement noise, in box heights
    ``accel_std`` (1.0)          process noise of the centre: box heights / s^2
    ``size_accel_std`` (0.5)     process noise of the size: box heights / s^2
    ``init_speed_std`` (2.0)     a new track's speed uncertainty, box heights / s
    """

    DEFAULTS = {
        "max_age_s": 1.5,
        "min_hits": 2,
        "iou_threshold": 0.3,
        "low_score": 0.2,
        "high_score": 0.4,
        "low_iou_threshold": 0.5,
        "max_center_shift": 0.5,
        "max_speed_rel": 2.0,
        "min_overlap": 0.3,
        "path_len": 64,
        "velocity_window_s": 1.0,
        "stationary_heights": 0.3,
        "meas_std": 0.05,
        "accel_std": 1.0,
        "size_accel_std": 0.5,
        "init_speed_std": 2.0,
    }

    def __init__(self, max_age_s: float = 1.5, min_hits: int = 2, iou_threshold: float = 0.3,
                 low_score: float = 0.2, high_score: float = 0.4, **params):
        unknown = set(params) - set(self.DEFAULTS)
        if unknown:
            raise ValueError(f"unknown Tracker parameter(s): {', '.join(sorted(unknown))}")
        p = {**self.DEFAULTS, **params, "max_age_s": max_age_s, "min_hits": min_hits,
             "iou_threshold": iou_threshold, "low_score": low_score, "high_score": high_score}
        if not 0.0 <= float(p["low_score"]) <= float(p["high_score"]):
            raise ValueError("need 0 <= low_score <= high_score")
        if int(p["min_hits"]) < 1:
            raise ValueError("min_hits must be at least 1")
        if float(p["max_age_s"]) < 0:
            raise ValueError("max_age_s must not be negative")
        self.params = p
        self.max_age_s = float(p["max_age_s"])
        self.min_hits = int(p["min_hits"])
        self.iou_threshold = float(p["iou_threshold"])
        self.low_score = float(p["low_score"])
        self.high_score = float(p["high_score"])
        self.reset()

    def reset(self) -> None:
        """Forget every track; ids start again at 1."""
        self._states: list[_State] = []
        self._next_key = 0
        self._next_id = 1
        self._t: float | None = None

    # ------------------------------------------------------------------------------------
    # Kalman filter (constant velocity, time in seconds)
    # ------------------------------------------------------------------------------------
    # The four coordinates (centre x, centre y, width, height) are independent: each is a
    # position with a rate, its own 2x2 covariance [[p00, p01], [p01, p11]] (the 8-state filter
    # with H = [I 0] and diagonal noises is exactly these four, at a fraction of the cost).
    def _predicted(self, s: _State, t: float) -> _Filter:
        f = s.f
        dt = max(0.0, t - s.t)
        if dt == 0.0:
            return f
        h = max(f.pos[3], 1.0)
        qa = (float(self.params["accel_std"]) * h) ** 2
        qs = (float(self.params["size_accel_std"]) * h) ** 2
        pos, vel, p00, p01, p11 = [], [], [], [], []
        for i in range(4):
            q = qa if i < 2 else qs
            v, a, b, c = f.vel[i], f.p00[i], f.p01[i], f.p11[i]
            x = f.pos[i] + v * dt
            pos.append(max(x, 1.0) if i >= 2 else x)
            vel.append(v)
            p00.append(a + 2.0 * dt * b + dt * dt * c + q * dt ** 3 / 3.0)
            p01.append(b + dt * c + q * dt * dt / 2.0)
            p11.append(c + q * dt)
        return _Filter(pos, vel, p00, p01, p11)

    def _correct(self, f: _Filter, box) -> _Filter:
        x1, y1, x2, y2 = (float(v) for v in box)
        z = (0.5 * (x1 + x2), 0.5 * (y1 + y2), max(x2 - x1, 1.0), max(y2 - y1, 1.0))
        r = (float(self.params["meas_std"]) * max(f.pos[3], 1.0)) ** 2
        pos, vel, p00, p01, p11 = [], [], [], [], []
        for i in range(4):
            a, b, c = f.p00[i], f.p01[i], f.p11[i]
            k0, k1 = a / (a + r), b / (a + r)
            innov = z[i] - f.pos[i]
            x = f.pos[i] + k0 * innov
            pos.append(max(x, 1.0) if i >= 2 else x)
            vel.append(f.vel[i] + k1 * innov)
            p00.append((1.0 - k0) * a)
            p01.append((1.0 - k0) * b)
            p11.append(c - k1 * b)
        return _Filter(pos, vel, p00, p01, p11)

    # ------------------------------------------------------------------------------------
    # API
    # ------------------------------------------------------------------------------------
    @property
    def time(self) -> float | None:
        """The timestamp of the latest update (None before the first, and after ``reset``)."""
        return self._t

    @property
    def following(self) -> bool:
        """Whether any confirmed track is alive (cheap: no snapshot is built)."""
        return any(s.id is not None for s in self._states)

    @property
    def tracks(self) -> list[Track]:
        """Every confirmed track alive after the latest update, by id, with the box of its latest
        detection (``time_since_update`` > 0 for those coasting)."""
        if self._t is None:
            return []
        return [self._snapshot(s, self._t, None) for s in self._confirmed()]

    def predict(self, timestamp: float) -> list[Track]:
        """Every confirmed track that would still be alive at ``timestamp``, its box predicted to
        then (``time_since_update`` says how old its detection is). Changes nothing."""
        t = float(timestamp)
        out = []
        for s in self._confirmed():
            if t - s.last_seen > self.max_age_s:
                continue
            out.append(self._snapshot(s, t, self._predicted(s, t).box()))
        return out

    def update(self, detections: Iterable[DetectionLike], timestamp: float) -> list[Track]:
        """Match the detections of the frame taken at ``timestamp`` (seconds) to the tracks.

        Returns the confirmed tracks that a detection of this frame extended, by id (coasting
        tracks are in :attr:`tracks` and :meth:`predict`). A timestamp earlier than the previous
        update's is a new clip: every track is forgotten first.
        """
        t = float(timestamp)
        if self._t is not None and t < self._t:
            self.reset()
        self._t = t
        # drop the tracks too old to be matched
        self._states = [s for s in self._states if t - s.last_seen <= self.max_age_s]

        dets = [d for d in detections if float(d.score) >= self.low_score]
        boxes = np.array([[float(v) for v in d.box] for d in dets], dtype=np.float64).reshape(-1, 4)
        fams = [family(str(d.label)) for d in dets]
        high = [i for i, d in enumerate(dets) if float(d.score) >= self.high_score]
        low = [i for i, d in enumerate(dets) if float(d.score) < self.high_score]

        states = self._states
        pred = [self._predicted(s, t) for s in states]
        pboxes = np.array([f.box() for f in pred], dtype=np.float64).reshape(-1, 4)
        matches: dict[int, int] = {}  # state index -> detection index

        free_tracks = list(range(len(states)))
        for stage_dets, threshold in ((high, self.iou_threshold),
                                      (low, float(self.params["low_iou_threshold"]))):
            pairs = self._assign_iou(free_tracks, stage_dets, pboxes, boxes, fams, threshold)
            matches.update(pairs)
            free_tracks = [i for i in free_tracks if i not in pairs]
        shift = float(self.params["max_center_shift"])
        if shift > 0:
            used = set(matches.values())
            rest = [j for j in high if j not in used]
            young = np.array([states[i].hits == 1 for i in free_tracks], dtype=bool)
            ages = np.array([t - states[i].t for i in free_tracks]) * young
            limit = shift + float(self.params["max_speed_rel"]) * ages
            matches.update(self._assign_centre(free_tracks, rest, pboxes, boxes, fams, limit, young))

        for i, j in sorted(matches.items()):
            s = states[i]
            s.f = self._correct(pred[i], boxes[j])
            s.t = t
            self._hit(s, dets[j], t)

        kept: list[_State] = []
        for i, s in enumerate(states):
            if i in matches or s.id is not None:
                kept.append(s)  # an unmatched tentative track is dropped (ByteTrack)
        used = set(matches.values())
        hit_now = {states[i].key for i in matches}
        for j in high:
            if j in used:
                continue
            s = _State(self._next_key, fams[j], boxes[j], t, int(self.params["path_len"]),
                       float(self.params["meas_std"]), float(self.params["init_speed_std"]))
            self._next_key += 1
            self._hit(s, dets[j], t)
            kept.append(s)
            hit_now.add(s.key)
        self._states = kept
        return [self._snapshot(s, t, None) for s in self._confirmed() if s.key in hit_now]

    # ------------------------------------------------------------------------------------
    # internals
    # ------------------------------------------------------------------------------------
    def _confirmed(self) -> list[_State]:
        return sorted((s for s in self._states if s.id is not None), key=lambda s: s.id)

    def _assign_iou(self, tracks, dets, pboxes, boxes, fams, threshold) -> dict[int, int]:
        if not tracks or not dets:
            return {}
        iou = iou_matrix(pboxes[tracks], boxes[dets])
        same = np.array([[self._states_family(i) == fams[j] for j in dets] for i in tracks])
        ok = same & (iou >= threshold)
        return self._solve(tracks, dets, np.where(ok, 1.0 - iou, _BIG), ok)

    def _assign_centre(self, tracks, dets, pboxes, boxes, fams, limit: np.ndarray,
                       young: np.ndarray) -> dict[int, int]:
        if not tracks or not dets:
            return {}
        pt, bd = pboxes[tracks], boxes[dets]
        pc = np.stack([(pt[:, 0] + pt[:, 2]) / 2, (pt[:, 1] + pt[:, 3]) / 2], axis=1)
        dc = np.stack([(bd[:, 0] + bd[:, 2]) / 2, (bd[:, 1] + bd[:, 3]) / 2], axis=1)
        dist = np.hypot(pc[:, None, 0] - dc[None, :, 0], pc[:, None, 1] - dc[None, :, 1])
        side_p = np.maximum(pt[:, 2] - pt[:, 0], pt[:, 3] - pt[:, 1])  # the longer side: a lying
        side_d = np.maximum(bd[:, 2] - bd[:, 0], bd[:, 3] - bd[:, 1])  # person's box is wide
        scale = np.maximum(np.maximum(side_p[:, None], side_d[None, :]), 1.0)
        d = dist / scale
        same = np.array([[self._states_family(i) == fams[j] for j in dets] for i in tracks])
        ix = np.clip(np.minimum(pt[:, None, 2], bd[None, :, 2]) - np.maximum(pt[:, None, 0], bd[None, :, 0]), 0, None)
        iy = np.clip(np.minimum(pt[:, None, 3], bd[None, :, 3]) - np.maximum(pt[:, None, 1], bd[None, :, 1]), 0, None)
        area_p = (pt[:, 2] - pt[:, 0]) * (pt[:, 3] - pt[:, 1])
        area_d = (bd[:, 2] - bd[:, 0]) * (bd[:, 3] - bd[:, 1])
        overlap = ix * iy / np.maximum(np.minimum(area_p[:, None], area_d[None, :]), 1e-9)
        ok = same & (d <= limit[:, None]) & (young[:, None] | (overlap >= float(self.params["min_overlap"])))
        return self._solve(tracks, dets, np.where(ok, d, _BIG), ok)

    def _states_family(self, i: int) -> str:
        return self._states[i].family

    @staticmethod
    def _solve(tracks, dets, cost: np.ndarray, ok: np.ndarray) -> dict[int, int]:
        if not ok.any():
            return {}
        rows, cols = linear_sum_assignment(cost)
        return {tracks[r]: dets[c] for r, c in zip(rows, cols) if ok[r, c]}

    def _hit(self, s: _State, det: DetectionLike, t: float) -> None:
        s.vote(str(det.label), float(det.score))
        s.score = float(det.score)
        s.hits += 1
        s.last_seen = t
        x1, _, x2, y2 = (float(v) for v in det.box)
        foot = (0.5 * (x1 + x2), y2, t)
        s.path.append(foot)
        if s.id is None and s.hits >= self.min_hits:
            s.id = self._next_id
            self._next_id += 1
        # velocity over the recent path (robust to jitter), else the filter's
        v = theil_sen_velocity(s.path, float(self.params["velocity_window_s"]))
        s.velocity = v
        # standing still: within stationary_heights box heights of where it is now
        thr = float(self.params["stationary_heights"]) * max(s.f.pos[3], 1.0)
        if s.anchor is None:
            s.anchor = foot
        elif math.hypot(foot[0] - s.anchor[0], foot[1] - s.anchor[1]) > thr:
            since = t
            for px, py, pt in reversed(s.path):
                if math.hypot(px - foot[0], py - foot[1]) > thr:
                    break
                since = pt
            s.anchor = (foot[0], foot[1], since)
        s.stationary_s = t - s.anchor[2]

    def _snapshot(self, s: _State, t: float, box) -> Track:
        if s.velocity is not None:
            vx, vy = s.velocity
        else:
            vx, vy = s.f.vel[0], s.f.vel[1]
        h = max(s.f.pos[3], 1.0)
        speed = math.hypot(vx, vy)
        return Track(
            id=int(s.id), label=s.label, family=s.family,
            box=box if box is not None else s.f.box(),
            score=s.score, first_seen=s.first_seen, last_seen=s.last_seen, hits=s.hits,
            path=tuple(s.path), velocity=(vx, vy), speed=speed, speed_rel=speed / h,
            direction=math.atan2(vy, vx) if speed > 0 else 0.0,
            dwell=t - s.first_seen, stationary_s=s.stationary_s,
            time_since_update=max(0.0, t - s.last_seen),
        )
