"""What is normal for objects in one camera's view, learned per region and class.

:class:`ObjectNormal` reads the tracks of :class:`inference.tracking.Tracker` (anything with the
same attributes: :class:`TrackLike`) frame by frame and learns, per grid cell (``grid`` columns
x rows over the frame; a track belongs to the cell of its foot point, the middle of its box's
bottom edge) and per class group:

* how many learned frames had an object of that group in the cell. Every learned frame counts
  for every cell, objects or not, so "0 seen there in 2,550 learned frames" is exact;
* the usual speed in body heights per second (``speed_rel``: near and far objects compare):
  running mean and variance (Welford) of ``log(speed_rel + speed_offset)``, per cell and for
  the whole view;
* the usual box height relative to the frame: Welford of ``log(box height / frame height)``;
* the directions it moves in: an 8-bin histogram (soft: each move is shared between the two
  nearest bins) of the moves faster than ``dir_min_speed``;
* the usual outline: Welford of ``log(box width / box height)``, per cell and for the whole view;
* how long objects of the group stay in view: Welford of ``log(duration)`` of the completed
  tracks (a track is complete ``gone_s`` seconds after it was last seen, or at a clip's end in
  :meth:`ObjectNormal.fit`) that were mostly learned.

Class groups merge the labels an object detector confuses (``groups``, default: car / truck /
bus are ``vehicle``; backpack / handbag / suitcase are ``bag``); any other label is its own
group, so a bicycle is not a person and not a car.

The anomaly terms (:meth:`ObjectNormal.score`), per track with at least ``min_hits``
detections. Each has a raw level ``r`` (a z or a log ratio, unbounded) and a value in [0, 1]:

==============  ===========================================================================
``rare_class``  ``rate = (s + 0.5) / (N + 1)`` with ``N`` the learned frames and ``s`` the
                frames that had the group in the cell, or ``neighbour_weight`` (0.5) x the
                most in a neighbouring cell if more (a track on a cell boundary is not rare);
                ``r = ln(rare_rate / rate)``, value ``sigmoid(rare_slope * r)``: 0.5 at a rate
                of ``rare_rate`` (1/1000), 0.9 for 0 seen in 1,500 frames, 0.96 for 0 in 2,550.
                A young model cannot reach 0.5: with none seen, only after 500 learned frames.
``speed``       ``z = (log(speed_rel + 0.1) - m) / sd`` against the group's statistics in the
                cell, shrunk towards a fallback by ``speed_prior`` (20) pseudo-frames: the
                group's statistics over the view, else people's in the cell, else people's
                over the view, else a walking person's ``default_speed`` (0.7 body heights/s,
                sd ``default_speed_sd`` 0.6 in log space); ``sd`` at least
                ``speed_sd_floor`` (0.25). Faster: ``r = z``, value
                ``sigmoid((z - speed_z) / z_scale)`` (2.5, 0.5). Slower counts only for the
                groups of ``slow_groups`` (vehicles, bicycles, motorcycles: stopped where they
                always move) once the track has stood still for ``slow_after`` (5 s), and only
                in a cell where the group's own learned moves carry the statistics (weight at
                least 1/2): before that, or where only people were learned, a stopped car is parked:
                ``r = -z``, value ``slow_weight`` (0.8) x the same sigmoid. People stopping is
                ordinary (standing too long is ``dwell``, lying is ``person_down``).
``direction``   moving faster than ``dir_min_speed`` (0.3 heights/s), the share ``p`` of the
                cell's moves of this group in its direction (Dirichlet(1) smoothed);
                ``r = ln(1 / (8 p)) * T / (T + dir_prior)`` (``T`` the moves learned there,
                ``dir_prior`` 50), value ``sigmoid((r - dir_surprise) / dir_scale)`` (2.5, 0.5).
``size``        ``z = |log(h / H) - m| / sd`` (``sd`` at least 0.2) against the group's box
                heights in the cell once it has ``size_min`` (20) of them; value
                ``sigmoid((z - size_z) / z_scale)`` (3.0, 0.5).
``shape``       a track's outline over its last ``shape_window`` (5) detections (the median
                of ``log(width / height)``: one box that merges two walkers does not count)
                against the group's in the cell, shrunk towards the whole view's by
                ``shape_prior`` (20) boxes, once the view has ``shape_min`` (50);
                ``z = (x - m) / sd``, ``sd`` at least ``shape_sd_floor`` (0.3), value
                ``sigmoid((z - shape_z) / z_scale)`` (3.0, 0.5): 0.5 for a box about 2.5x as
                wide for its height as usual, which an upright person never is (a person in a
                wheelchair, sitting, crawling, or beside a bicycle is). Wider only, unless
                ``shape_wider_only`` is false (narrow boxes are mostly people cut by an
                occlusion or the frame's edge).
``left_behind`` a label of ``left_classes`` (backpack, handbag, suitcase, umbrella) standing
                still for ``s`` seconds: ``r = ln(s / left_seconds)``, value
                ``sigmoid(r / rule_scale)`` (20 s, 0.1): 0.5 at 20 s, 0.9 at 25 s, 0.1 at 16 s.
``person_down`` a person track seen upright (width/height below ``up_ratio`` 0.8) whose box
                turns wide (above ``down_ratio`` 1.2; it stays "down" until below 1.0) and
                stays so and still: ``d = min(time wide, stationary_s)``,
                ``r = ln(d / down_seconds)``, value ``sigmoid(r / rule_scale)`` (3 s): 0.5 at
                3 s, 0.99 at 5 s.
``dwell``       in view for ``D`` seconds, against the group's completed tracks once there are
                ``dwell_min_tracks`` (10): ``z = (log D - m) / sd`` (``sd`` at least
                ``dwell_sd_floor`` 0.5: a track must stay at least e^1.5 = 4.5x the usual time),
                value ``sigmoid((z - dwell_z) / z_scale)`` (3.0, 0.5).
==============  ===========================================================================

Each value is multiplied by its ``weights`` entry (all 1.0). The frame's score is the largest
value (``combine="max"``) or their noisy-OR (``combine="noisy_or"``: ``1 - prod(1 - v)``).

Calibration, with the defaults: every value crosses 0.5 where its term starts to be an
anomaly, and on footage like the learned (same classes in the same places at the same speeds)
every term stays near 0 (z of normal variation below 1, rare rates far above 1/1000), so normal
frames score below 0.3 (the tests hold it: people walking where people were learned walking
score under 0.3; a bicycle where only people were seen, a person at 3x the speed, a backpack
left 25 s and a person lying 5 s each score above 0.5). ``learn_below`` (0.4, 0.8 x the 0.5
threshold) is the gate of :meth:`ObjectNormal.update`'s online learning.

Operator feedback (:meth:`ObjectNormal.feedback`, like ``MotionDetector.feedback``): the clip of
a false alarm is scored as live, and every (term, group, cell) that fired in it (value above
``feedback_level``, 0.3) gets an accepted level: the highest raw level it showed. From then on
a term up to its accepted level does not count, above it counts more and more, and in full once
it is ``feedback_margin`` (1.0, raw units: z or log ratio) stronger: the same situation stops
firing, a clearly stronger one there still does, and other cells, groups and terms keep their
full sensitivity. ``feedback_spread`` (0) widens each accepted cell to its neighbours. The clip
is also learned as normal footage. Accepted levels only grow and are part of the state.

No Django, no OpenCV: numpy only. The state (:meth:`ObjectNormal.state_dict`) is JSON.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Iterable, Protocol, Sequence

import numpy as np

STATE_VERSION = 1
N_DIR = 8
TERMS = ("rare_class", "speed", "direction", "size", "left_behind", "person_down", "dwell", "shape")

#: Statistics added after STATE_VERSION 1 was first saved: a saved state without them loads, unlearned there.
ADDED_LATER = frozenset({"shape_n", "shape_mean", "shape_m2", "shape_all"})

#: Labels the detector confuses, counted as one group (any other label is its own group).
DEFAULT_GROUPS = {"car": "vehicle", "truck": "vehicle", "bus": "vehicle",
                  "backpack": "bag", "handbag": "bag", "suitcase": "bag"}
_PLURALS = {"person": "people", "bus": "buses", "sheep": "sheep", "skis": "skis", "mouse": "mice",
            "knife": "knives", "bench": "benches", "couch": "couches", "toothbrush": "toothbrushes",
            "wine glass": "wine glasses", "sandwich": "sandwiches", "hot dog": "hot dogs"}
_COMPASS = ("right", "down-right", "down", "down-left", "left", "up-left", "up", "up-right")


class TrackLike(Protocol):
    """What :class:`ObjectNormal` reads from a track (:class:`inference.tracking.Track` has it;
    ``time_since_update`` is optional: a track coasting on its prediction teaches nothing)."""

    id: int
    label: str
    box: tuple[float, float, float, float]
    hits: int
    path: Sequence
    first_seen: float
    last_seen: float
    speed_rel: float
    direction: float
    dwell: float
    stationary_s: float


def plural(name: str) -> str:
    """English plural of a class or group name ("people", "bicycles", "buses")."""
    if name in _PLURALS:
        return _PLURALS[name]
    return name + ("es" if name.endswith(("s", "sh", "ch", "x")) else "s")


def duration(seconds: float) -> str:
    """Seconds for people: "25 s", "2 min 5 s", "1 h 3 min"."""
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{max(0.0, seconds):.1f} s" if seconds < 10 and abs(seconds - s) > 0.05 else f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    return f"{s // 3600:,} h {s % 3600 // 60} min" if s % 3600 // 60 else f"{s // 3600:,} h"


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _log_aspect(box) -> float | None:
    """``log(width / height)`` of a box (x1, y1, x2, y2); None for a box without area."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if x2 <= x1 or y2 <= y1:
        return None
    return math.log((x2 - x1) / (y2 - y1))


@dataclass
class _Memo:
    """What the model remembers of one live track between frames."""

    first_seen: float
    last_seen: float
    group: str
    frames: int = 0
    learned: int = 0
    last_t: float | None = None
    learned_t: float | None = None
    upright: bool = False
    wide_since: float | None = None
    aspects: list = field(default_factory=list)  # log(width / height) of the last detections


class ObjectNormal:
    """Learns where, how fast, which way and how long each class of object is normally seen in
    one camera's view, and scores tracks against it (see the module docstring).

    ``ObjectNormal(grid=(8, 6), **params)``; ``grid`` is (columns, rows) over the frame, and every
    parameter is in :attr:`DEFAULTS`.
    """

    name = "object_normal"

    DEFAULTS = {
        "threshold": 0.5,
        "learn_below": None,  # None: 0.8 x threshold
        "groups": DEFAULT_GROUPS,
        "min_hits": 3,
        "gate_level": 0.1,
        "gated_rate": 0.1,
        "min_points": 3,
        "gone_s": 2.0,
        "combine": "max",
        "report_min": 0.05,
        "weights": {k: 1.0 for k in TERMS},
        # rare_class
        "rare_rate": 0.001,
        "rare_slope": 2.0,
        "neighbour_weight": 0.5,
        # speed (and the z-like terms)
        "speed_offset": 0.1,
        "speed_sd_floor": 0.25,
        "speed_prior": 20.0,
        "default_speed": 0.7,
        "default_speed_sd": 0.6,
        "speed_z": 2.5,
        "z_scale": 0.5,
        "slow_after": 5.0,
        "slow_groups": ("vehicle", "bicycle", "motorcycle"),
        "speed_skip": (),  # groups whose speed is not scored (the objects detector leaves people's to motion)
        "slow_weight": 0.8,
        # direction
        "dir_min_speed": 0.3,
        "dir_prior": 50.0,
        "dir_surprise": 2.5,
        "dir_scale": 0.5,
        # size
        "size_min": 20,
        "size_sd_floor": 0.2,
        "size_z": 3.0,
        # shape
        "shape_min": 50,
        "shape_prior": 20.0,
        "shape_sd_floor": 0.3,
        "shape_z": 3.0,
        "shape_wider_only": True,
        "shape_window": 5,
        # rules
        "left_classes": ("backpack", "handbag", "suitcase", "umbrella"),
        "left_seconds": 20.0,
        "down_seconds": 3.0,
        "down_ratio": 1.2,
        "up_ratio": 0.8,
        "rule_scale": 0.1,
        # dwell
        "dwell_min_tracks": 10,
        "dwell_sd_floor": 0.5,
        "dwell_z": 3.0,
        # feedback
        "feedback_level": 0.3,
        "feedback_margin": 1.0,
        "feedback_spread": 0,
    }

    def __init__(self, grid: tuple[int, int] = (8, 6), **params):
        unknown = set(params) - set(self.DEFAULTS)
        if unknown:
            raise ValueError(f"unknown ObjectNormal parameter(s): {', '.join(sorted(unknown))}")
        merged = {**self.DEFAULTS, **params}
        merged["weights"] = {**self.DEFAULTS["weights"], **(params.get("weights") or {})}
        bad = set(merged["weights"]) - set(TERMS)
        if bad:
            raise ValueError(f"unknown weight(s): {', '.join(sorted(bad))} (known: {', '.join(TERMS)})")
        if merged["combine"] not in ("max", "noisy_or"):
            raise ValueError("combine must be 'max' or 'noisy_or'")
        if not isinstance(merged["shape_window"], int) or merged["shape_window"] < 1:
            raise ValueError("shape_window must be a whole number of detections, at least 1")
        if merged["learn_below"] is None:
            merged["learn_below"] = 0.8 * float(merged["threshold"])
        gw, gh = (int(v) for v in grid)
        if gw < 1 or gh < 1:
            raise ValueError(f"grid must be at least 1 x 1 cells, not {grid!r}")
        self.grid = (gw, gh)
        self.params = merged
        self.groups = dict(merged["groups"])
        self.weights = {k: float(v) for k, v in merged["weights"].items()}
        self.left_classes = frozenset(merged["left_classes"])
        self.frames_learned = 0
        self._stats: dict[str, dict[str, np.ndarray]] = {}
        self._accepted: dict[tuple[str, str], np.ndarray] = {}
        self._learn_dwell = True
        self.reset()

    # ------------------------------------------------------------------------------------
    # bookkeeping
    # ------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the live tracks (what the model remembers between frames); keep what was learned."""
        self._memos: dict[int, _Memo] = {}
        self._t: float | None = None

    def group(self, label: str) -> str:
        """The class group of a detector label."""
        return self.groups.get(label, label)

    def _blank(self) -> dict[str, np.ndarray]:
        gw, gh = self.grid
        z = lambda: np.zeros((gh, gw), np.float64)  # noqa: E731
        return {
            "count": z(),  # learned frames with the group in the cell
            "speed_n": z(), "speed_mean": z(), "speed_m2": z(),  # log(speed_rel + offset)
            "size_n": z(), "size_mean": z(), "size_m2": z(),  # log(box height / frame height)
            "shape_n": z(), "shape_mean": z(), "shape_m2": z(),  # log(box width / box height)
            "shape_all": np.zeros(3),  # (n, mean, m2) of log(width / height) over the whole view
            "dir": np.zeros((N_DIR, gh, gw), np.float64),  # soft direction histogram
            "speed_all": np.zeros(3),  # (n, mean, m2) over the whole view
            "dwell": np.zeros(3),  # (n, mean, m2) of log(duration) of completed tracks
        }

    def _group_stats(self, group: str) -> dict[str, np.ndarray]:
        if group not in self._stats:
            self._stats[group] = self._blank()
        return self._stats[group]

    def _cell(self, box, width: float, height: float) -> tuple[int, int]:
        """(column, row) of a box's foot point."""
        x1, _, x2, y2 = (float(v) for v in box)
        gw, gh = self.grid
        col = int(math.floor(0.5 * (x1 + x2) / max(float(width), 1e-9) * gw))
        row = int(math.floor(y2 / max(float(height), 1e-9) * gh))
        return min(max(col, 0), gw - 1), min(max(row, 0), gh - 1)

    @staticmethod
    def _welford(n: float, mean: float, m2: float, x: float) -> tuple[float, float, float]:
        n += 1.0
        d = x - mean
        mean += d / n
        return n, mean, m2 + d * (x - mean)

    @staticmethod
    def _var(n: float, m2: float) -> float:
        return m2 / max(n - 1.0, 1.0)

    def _remember(self, tracks: Sequence[TrackLike], t: float) -> None:
        """Advance the per-track memory to frame ``t`` (once per timestamp, whichever of
        :meth:`score` and :meth:`observe` comes first)."""
        if self._t is not None and t < self._t:  # back in time: a new clip
            self._flush()
        self._t = t
        p = self.params
        for tr in tracks:
            memo = self._memos.get(tr.id)
            if memo is not None and abs(memo.first_seen - float(tr.first_seen)) > 1e-9:
                self._complete(memo)  # the id was reused (a new tracker)
                memo = None
            if memo is None:
                memo = self._memos[tr.id] = _Memo(float(tr.first_seen), float(tr.last_seen), self.group(tr.label))
            memo.last_seen = float(tr.last_seen)
            memo.group = self.group(tr.label)
            if memo.last_t == t:
                continue
            memo.last_t = t
            memo.frames += 1
            if self._observed(tr):
                shape = _log_aspect(tr.box)
                if shape is not None:
                    memo.aspects.append(shape)
                    del memo.aspects[:-int(p["shape_window"])]
            if tr.label == "person":
                x1, y1, x2, y2 = (float(v) for v in tr.box)
                aspect = (x2 - x1) / max(y2 - y1, 1e-6)
                if aspect < float(p["up_ratio"]):
                    memo.upright = True
                if memo.wide_since is None:
                    if memo.upright and aspect > float(p["down_ratio"]):
                        memo.wide_since = t
                elif aspect < 1.0:
                    memo.wide_since = None
        gone = float(p["gone_s"])
        for key in [k for k, m in self._memos.items() if t - m.last_seen > gone]:
            self._complete(self._memos.pop(key))

    def _complete(self, memo: _Memo) -> None:
        """A track has ended: learn its duration when it was mostly learned."""
        if not self._learn_dwell or memo.frames < 2 or memo.learned < 0.5 * memo.frames:
            return
        d = self._group_stats(memo.group)["dwell"]
        x = math.log(max(memo.last_seen - memo.first_seen, 0.5))
        d[0], d[1], d[2] = self._welford(d[0], d[1], d[2], x)

    def _flush(self) -> None:
        for memo in self._memos.values():
            self._complete(memo)
        self.reset()

    @staticmethod
    def _observed(tr: TrackLike) -> bool:
        return float(getattr(tr, "time_since_update", 0.0) or 0.0) <= 0.0

    # ------------------------------------------------------------------------------------
    # learning
    # ------------------------------------------------------------------------------------
    def observe(self, tracks: Sequence[TrackLike], width: float, height: float, timestamp: float,
                *, learn: bool, known_normal: bool = False) -> None:
        """Take in one analysed frame's tracks; with ``learn`` (the frame's fused score below the
        camera's learning gate) add it to the statistics.

        Every learned frame counts for every cell. Tracks with fewer than ``min_hits``
        detections, or coasting on a prediction, teach nothing (they are not scored either).
        Unless ``known_normal`` (as in :meth:`fit`), a track whose own ``rare_class`` value is at
        least ``gate_level`` counts ``gated_rate`` of a frame in its cell: a frame that scores
        low overall must not teach a rare object to be normal within seconds, while a class that
        comes every day becomes normal in the end.
        """
        t = float(timestamp)
        self._remember(tracks, t)
        if not learn:
            return
        p = self.params
        self.frames_learned += 1
        present: dict[tuple[str, int, int], float] = {}
        off = float(p["speed_offset"])
        for tr in tracks:
            if not self._observed(tr) or int(tr.hits) < int(p["min_hits"]):
                continue
            g = self.group(tr.label)
            col, row = self._cell(tr.box, width, height)
            weight = 1.0
            if not known_normal:
                rare = _sigmoid(float(p["rare_slope"]) * self._rare(g, row, col)[0])
                if rare >= float(p["gate_level"]):
                    weight = float(p["gated_rate"])
            present[(g, col, row)] = max(present.get((g, col, row), 0.0), weight)
            S = self._group_stats(g)
            memo = self._memos.get(tr.id)
            if memo is not None and memo.learned_t != t:
                memo.learned_t = t
                memo.learned += 1
            h = float(tr.box[3]) - float(tr.box[1])
            if h > 0:
                S["size_n"][row, col], S["size_mean"][row, col], S["size_m2"][row, col] = self._welford(
                    S["size_n"][row, col], S["size_mean"][row, col], S["size_m2"][row, col],
                    math.log(h / max(float(height), 1e-9)))
            x = _log_aspect(tr.box)
            if x is not None:
                S["shape_n"][row, col], S["shape_mean"][row, col], S["shape_m2"][row, col] = self._welford(
                    S["shape_n"][row, col], S["shape_mean"][row, col], S["shape_m2"][row, col], x)
                a = S["shape_all"]
                a[0], a[1], a[2] = self._welford(a[0], a[1], a[2], x)
            if len(tr.path) < int(p["min_points"]):
                continue
            sr = max(float(tr.speed_rel), 0.0)
            x = math.log(sr + off)
            S["speed_n"][row, col], S["speed_mean"][row, col], S["speed_m2"][row, col] = self._welford(
                S["speed_n"][row, col], S["speed_mean"][row, col], S["speed_m2"][row, col], x)
            a = S["speed_all"]
            a[0], a[1], a[2] = self._welford(a[0], a[1], a[2], x)
            if sr >= float(p["dir_min_speed"]):
                b0, b1, f = self._bins(float(tr.direction))
                S["dir"][b0, row, col] += 1.0 - f
                S["dir"][b1, row, col] += f
        for (g, col, row), weight in present.items():
            self._group_stats(g)["count"][row, col] += weight

    def fit(self, frames: Iterable) -> "ObjectNormal":
        """Learn from known-normal footage: ``frames`` yields ``(tracks, width, height,
        timestamp)``; None (or a timestamp earlier than the previous) ends a clip, whose tracks
        are then complete. Every frame is learned (no score gate)."""
        for item in frames:
            if item is None:
                self._flush()
                continue
            tracks, width, height, timestamp = item
            self.observe(tracks, width, height, timestamp, learn=True, known_normal=True)
        self._flush()
        return self

    def update(self, tracks: Sequence[TrackLike], width: float, height: float,
               timestamp: float) -> tuple[float, list[dict]]:
        """Score the frame, then learn it when it scores below ``learn_below`` (online learning
        on this model's own score; a loop with a fused score calls :meth:`score` and
        :meth:`observe` itself)."""
        s, terms = self.score(tracks, width, height, timestamp)
        self.observe(tracks, width, height, timestamp, learn=s < float(self.params["learn_below"]))
        return s, terms

    # ------------------------------------------------------------------------------------
    # scoring
    # ------------------------------------------------------------------------------------
    @staticmethod
    def _bins(direction: float) -> tuple[int, int, float]:
        """The two nearest direction bins and the share of the second."""
        pos = (direction % (2 * math.pi)) / (2 * math.pi / N_DIR)
        b0 = int(math.floor(pos)) % N_DIR
        return b0, (b0 + 1) % N_DIR, pos - math.floor(pos)

    def score(self, tracks: Sequence[TrackLike], width: float, height: float,
              timestamp: float) -> tuple[float, list[dict]]:
        """Score one analysed frame's tracks: (score in [0, 1], anomaly terms, strongest first).

        Each term: ``{"term", "track", "label", "value", "explain", "numbers", "cell", "box"}``
        (``cell`` is [column, row] of the track's foot point). Terms below ``report_min`` are
        left out; the score is computed from all of them.
        """
        t = float(timestamp)
        self._remember(tracks, t)
        values, terms = [], []
        report = float(self.params["report_min"])
        for tr in sorted(tracks, key=lambda tr: tr.id):
            for term in self._track_terms(tr, width, height, t):
                term.pop("_r")
                v = term["value"]
                values.append(v)
                if v >= report:
                    terms.append(term)
        terms.sort(key=lambda d: (-d["value"], d["track"], TERMS.index(d["term"])))
        return self._combine(values), terms

    def _combine(self, values: list[float]) -> float:
        if not values:
            return 0.0
        if self.params["combine"] == "noisy_or":
            return float(1.0 - np.prod([1.0 - min(max(v, 0.0), 1.0) for v in values]))
        return float(min(max(max(values), 0.0), 1.0))

    def _track_terms(self, tr: TrackLike, width: float, height: float, t: float) -> list[dict]:
        """Every term of one track: dicts with the raw level under ``_r`` (accepted levels already
        applied to ``value``)."""
        p = self.params
        if int(tr.hits) < int(p["min_hits"]):
            return []
        col, row = self._cell(tr.box, width, height)
        g = self.group(tr.label)
        out: list[dict] = []

        def add(term: str, r: float, value: float, explain: str, numbers: dict) -> None:
            value *= self.weights[term]
            level = self._accepted.get((term, g))
            if level is not None and np.isfinite(level[row, col]):
                margin = max(float(p["feedback_margin"]), 1e-6)
                value *= min(max((r - float(level[row, col])) / margin, 0.0), 1.0)
            out.append({"term": term, "track": int(tr.id), "label": tr.label, "value": float(value),
                        "explain": explain, "numbers": numbers, "cell": [col, row],
                        "box": [round(float(v), 1) for v in tr.box], "_r": float(r)})

        S = self._stats.get(g)
        moving = len(tr.path) >= int(p["min_points"])
        sr = max(float(tr.speed_rel), 0.0)
        label = tr.label

        # rare_class: a group rarely or never seen in this cell
        n_frames = self.frames_learned
        if n_frames > 0:
            r, seen, s, rate = self._rare(g, row, col)
            what = "were" if int(round(seen)) != 1 else "was"
            noun = "" if g == label else f" {plural(g) if int(round(seen)) != 1 else g}"
            add("rare_class", r, _sigmoid(float(p["rare_slope"]) * r),
                f"{label} on a spot where {int(round(seen)):,}{noun} {what} seen in {n_frames:,} learned frames",
                {"seen": int(round(seen)), "frames": int(n_frames), "nearby": round(s, 3), "rate": rate})

        # speed: faster (or, standing still long enough, slower) than this group here
        if moving and g not in p["speed_skip"]:
            m, sd, source = self._speed_stats(g, row, col)
            off = float(p["speed_offset"])
            z = (math.log(sr + off) - m) / sd
            usual = max(math.exp(m) - off, 0.01)
            ratio = sr / usual
            fast = _sigmoid((z - float(p["speed_z"])) / float(p["z_scale"]))
            numbers = {"ratio": round(ratio, 3), "speed_rel": round(sr, 3), "usual": round(usual, 3),
                       "z": round(z, 3), "source": source}
            if (z >= 0 or g not in p["slow_groups"] or float(tr.stationary_s) < float(p["slow_after"])
                    or not self._moves_here(g, row, col)):
                add("speed", z, fast if z >= 0 else 0.0,
                    f"{label} at {ratio:.1f}x the usual speed of {source}", numbers)
            else:
                slow = float(p["slow_weight"]) * _sigmoid((-z - float(p["speed_z"])) / float(p["z_scale"]))
                add("speed", -z, slow, f"{label} still for {duration(float(tr.stationary_s))}, "
                    f"at {ratio:.1f}x the usual speed of {source}", numbers)

        # direction: a way this group rarely moves in this cell
        if moving and S is not None and sr >= float(p["dir_min_speed"]):
            hist = S["dir"][:, row, col]
            total = float(hist.sum())
            if total > 0:
                b0, b1, f = self._bins(float(tr.direction))
                share = (hist[b0] * (1 - f) + hist[b1] * f + 1.0) / (total + N_DIR)
                r = math.log(1.0 / (N_DIR * share)) * total / (total + float(p["dir_prior"]))
                way = _COMPASS[int(round(((float(tr.direction) % (2 * math.pi)) / (2 * math.pi / N_DIR)))) % N_DIR]
                add("direction", r, _sigmoid((r - float(p["dir_surprise"])) / float(p["dir_scale"])),
                    f"{label} moving {way} where {share:.1%} of {plural(g)} moving here go that way",
                    {"share": round(float(share), 5), "moves": round(total, 1),
                     "direction": round(float(tr.direction), 3)})

        # size: a box much taller or smaller than this group's here
        h = float(tr.box[3]) - float(tr.box[1])
        if S is not None and h > 0 and S["size_n"][row, col] >= float(p["size_min"]):
            n = S["size_n"][row, col]
            m = float(S["size_mean"][row, col])
            sd = max(math.sqrt(self._var(n, S["size_m2"][row, col])), float(p["size_sd_floor"]))
            x = math.log(h / max(float(height), 1e-9))
            z = abs(x - m) / sd
            ratio = math.exp(x - m)
            add("size", z, _sigmoid((z - float(p["size_z"])) / float(p["z_scale"])),
                f"{label} {ratio:.1f}x the usual height of {plural(g)} here",
                {"ratio": round(ratio, 3), "z": round(float(z), 3)})

        # shape: a box much wider for its height than this group's here
        memo = self._memos.get(tr.id)
        if (S is not None and h > 0 and S["shape_all"][0] >= float(p["shape_min"]) and memo is not None
                and len(memo.aspects) >= int(p["shape_window"])):
            n_all, m_all, m2_all = (float(v) for v in S["shape_all"])
            n = float(S["shape_n"][row, col])
            w = n / (n + float(p["shape_prior"]))
            m = w * float(S["shape_mean"][row, col]) + (1 - w) * m_all
            v = w * self._var(n, S["shape_m2"][row, col]) + (1 - w) * self._var(n_all, m2_all)
            sd = max(math.sqrt(v), float(p["shape_sd_floor"]))
            x = statistics.median(memo.aspects)  # the track's own shape over its last detections (a few values)
            z = (x - m) / sd
            r = z if p["shape_wider_only"] else abs(z)
            ratio = math.exp(x - m)
            add("shape", r, _sigmoid((r - float(p["shape_z"])) / float(p["z_scale"])),
                f"{label} {ratio:.1f}x as wide for its height as {plural(g)} here",
                {"ratio": round(ratio, 3), "z": round(float(z), 3)})

        # left_behind: a carried object standing still
        if label in self.left_classes:
            still = float(tr.stationary_s)
            left = float(p["left_seconds"])
            r = math.log(still / left) if still > 0 else -50.0
            add("left_behind", r, _sigmoid(r / float(p["rule_scale"])),
                f"{label} left unattended for {duration(still)}",
                {"seconds": round(still, 2), "limit": left})

        # person_down: upright before, now wide and still
        memo = self._memos.get(tr.id)
        if label == "person" and memo is not None and memo.wide_since is not None:
            down = min(t - memo.wide_since, float(tr.stationary_s))
            limit = float(p["down_seconds"])
            r = math.log(down / limit) if down > 0 else -50.0
            x1, y1, x2, y2 = (float(v) for v in tr.box)
            aspect = (x2 - x1) / max(y2 - y1, 1e-6)
            add("person_down", r, _sigmoid(r / float(p["rule_scale"])),
                f"person lying down for {duration(max(down, 0.0))} (box {aspect:.1f}x wider than tall)",
                {"seconds": round(max(down, 0.0), 2), "aspect": round(aspect, 3), "limit": limit})

        # dwell: in view much longer than this group usually stays
        if S is not None and S["dwell"][0] >= float(p["dwell_min_tracks"]):
            n, m, m2 = (float(v) for v in S["dwell"])
            sd = max(math.sqrt(self._var(n, m2)), float(p["dwell_sd_floor"]))
            stay = max(float(tr.dwell), 0.5)
            z = (math.log(stay) - m) / sd
            add("dwell", z, _sigmoid((z - float(p["dwell_z"])) / float(p["z_scale"])),
                f"{label} in view for {duration(stay)}; {plural(g)} usually stay {duration(math.exp(m))}",
                {"seconds": round(stay, 2), "usual": round(math.exp(m), 2), "z": round(z, 3),
                 "tracks": int(n)})
        return out

    def _rare(self, g: str, row: int, col: int) -> tuple[float, float, float, float]:
        """rare_class's raw level for group ``g`` in a cell: (r, frames seen in the cell, the
        count used (the neighbours' weighted if more), the smoothed rate)."""
        S = self._stats.get(g)
        seen = near = 0.0
        if S is not None:
            count = S["count"]
            seen = float(count[row, col])
            r0, r1 = max(row - 1, 0), min(row + 2, self.grid[1])
            c0, c1 = max(col - 1, 0), min(col + 2, self.grid[0])
            near = float(self.params["neighbour_weight"]) * float(count[r0:r1, c0:c1].max())
        s = max(seen, near)
        rate = (s + 0.5) / (self.frames_learned + 1.0)
        return math.log(float(self.params["rare_rate"]) / rate), seen, s, rate

    def _moves_here(self, g: str, row: int, col: int) -> bool:
        """Whether this cell's statistics of group ``g`` are mostly its own learned moves (their
        weight in ``_speed_stats`` at least 1/2): only then is a vehicle standing still here unusual.
        Anywhere else (nothing learned yet, or only people's speeds) a stopped car is parked."""
        S = self._stats.get(g)
        if S is None:
            return False
        n = float(S["speed_n"][row, col])
        return n / (n + float(self.params["speed_prior"])) >= 0.5

    def _speed_stats(self, g: str, row: int, col: int) -> tuple[float, float, str]:
        """(mean, sd) of log(speed_rel + offset) for group ``g`` in a cell, shrunk towards the
        fallback chain, and whose statistics they mostly are (for the explanation)."""
        p = self.params
        k = float(p["speed_prior"])
        floor = float(p["speed_sd_floor"])
        off = float(p["speed_offset"])
        chain = []
        S = self._stats.get(g)
        if S is not None:
            a = S["speed_all"]
            chain.append((a[0], a[1], self._var(a[0], a[2]), f"{plural(g)} in this view"))
        if g != "person" and "person" in self._stats:
            P = self._stats["person"]
            n = P["speed_n"][row, col]
            chain.append((n, P["speed_mean"][row, col], self._var(n, P["speed_m2"][row, col]), "people here"))
            a = P["speed_all"]
            chain.append((a[0], a[1], self._var(a[0], a[2]), "people in this view"))
        m_f = math.log(float(p["default_speed"]) + off)
        v_f = float(p["default_speed_sd"]) ** 2
        name = "a walking person"
        for n, m, v, label in reversed(chain):  # each level shrunk towards the next
            w = n / (n + k)
            m_f, v_f = w * m + (1 - w) * m_f, w * v + (1 - w) * v_f
            if w >= 0.5:
                name = label
        if S is not None:
            n = S["speed_n"][row, col]
            w = n / (n + k)
            m_f = w * S["speed_mean"][row, col] + (1 - w) * m_f
            v_f = w * self._var(n, S["speed_m2"][row, col]) + (1 - w) * v_f
            if w >= 0.5:
                name = f"{plural(g)} here"
        return float(m_f), max(math.sqrt(v_f), floor), name

    def explain(self, terms: Sequence[dict], place: str | None = None) -> str:
        """The strongest term's explanation, for an event ("" when there is none). With
        ``place`` (a zone's name, say "the walkway") a rare class reads "bicycle on the walkway:
        0 seen there in 2,550 learned frames"."""
        if not terms:
            return ""
        top = max(terms, key=lambda d: d["value"])
        if place:
            if top["term"] == "rare_class":
                n = top["numbers"]
                return f"{top['label']} on {place}: {n['seen']:,} seen there in {n['frames']:,} learned frames"
            return f"{top['explain']} on {place}"
        return top["explain"]

    # ------------------------------------------------------------------------------------
    # operator feedback
    # ------------------------------------------------------------------------------------
    def feedback(self, frames: Iterable) -> dict:
        """An operator marked this clip a false alarm: accept what fired in it as normal.

        ``frames`` yields ``(tracks, width, height, timestamp)`` like :meth:`fit` (None
        separates clips). The clip is scored as live with a memory of its own (the live tracks'
        memory is left as it was); every (term, group, cell) whose value rose above
        ``feedback_level`` gets its highest raw level there as accepted level (only ever
        raised), widened by ``feedback_spread`` cells. The frames are then learned as normal
        footage (durations excepted: a clip cuts its tracks short).

        Returns ``{"frames": frames measured, "terms": {term: (group, cell) levels raised}}``.
        """
        items = list(frames)
        p = self.params
        memory = (self._memos, self._t)
        level = float(p["feedback_level"])
        spread = max(0, int(p["feedback_spread"]))
        gw, gh = self.grid
        found: dict[tuple[str, str], np.ndarray] = {}
        measured = 0
        self._learn_dwell = False
        try:
            self.reset()
            for item in items:
                if item is None:
                    self.reset()
                    continue
                tracks, width, height, timestamp = item
                t = float(timestamp)
                self._remember(tracks, t)
                measured += 1
                for tr in tracks:
                    for term in self._track_terms(tr, width, height, t):
                        if term["value"] < level:
                            continue
                        key = (term["term"], self.group(tr.label))
                        arr = found.setdefault(key, np.full((gh, gw), -np.inf))
                        col, row = term["cell"]
                        r0, r1 = max(row - spread, 0), min(row + spread + 1, gh)
                        c0, c1 = max(col - spread, 0), min(col + spread + 1, gw)
                        arr[r0:r1, c0:c1] = np.maximum(arr[r0:r1, c0:c1], term["_r"])
            self.reset()
            for item in items:  # known normal now, as in fit()
                if item is None:
                    self.reset()
                    continue
                tracks, width, height, timestamp = item
                self.observe(tracks, width, height, timestamp, learn=True, known_normal=True)
        finally:
            self._learn_dwell = True
            self._memos, self._t = memory
        raised = {k: 0 for k in TERMS}
        for key, arr in sorted(found.items()):
            old = self._accepted.get(key)
            new = arr if old is None else np.maximum(old, arr)
            raised[key[0]] += int((new > (old if old is not None else -np.inf)).sum())
            self._accepted[key] = new
        return {"frames": measured, "terms": raised}

    # ------------------------------------------------------------------------------------
    # persistence
    # ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """What was learned, JSON-serialisable (floats kept exact: a round trip scores the same)."""
        return {
            "version": STATE_VERSION,
            "name": self.name,
            "grid": list(self.grid),
            "frames_learned": int(self.frames_learned),
            "groups": {g: {k: v.tolist() for k, v in S.items()} for g, S in sorted(self._stats.items())},
            "accepted": [
                [term, g, int(c), int(r), float(arr[r, c])]
                for (term, g), arr in sorted(self._accepted.items())
                for r, c in zip(*np.nonzero(np.isfinite(arr)))
            ],
        }

    def load_state_dict(self, state: dict) -> None:
        """Load a :meth:`state_dict`; a wrong version, grid or array shape raises ValueError naming
        the problem and changes nothing. The live tracks' memory is forgotten."""
        if not isinstance(state, dict):
            raise ValueError(f"ObjectNormal state must be a dict, not {type(state).__name__}")
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported ObjectNormal state version {state.get('version')!r} "
                             f"(this code reads version {STATE_VERSION})")
        if list(state.get("grid") or []) != list(self.grid):
            raise ValueError(f"state was learned on a {state.get('grid')!r} grid, this model has {list(self.grid)}")
        try:
            frames = int(state["frames_learned"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("state 'frames_learned' is missing or not a number") from None
        if frames < 0:
            raise ValueError("state 'frames_learned' must not be negative")
        groups = state.get("groups")
        if not isinstance(groups, dict):
            raise ValueError("state 'groups' must be a dict of group statistics")
        blank = self._blank()
        stats: dict[str, dict[str, np.ndarray]] = {}
        for g, arrays in groups.items():
            if not isinstance(arrays, dict):
                raise ValueError(f"state group {g!r} must be a dict of arrays")
            one = {}
            for key, ref in blank.items():
                if key not in arrays and key in ADDED_LATER:
                    one[key] = ref.copy()  # a state saved before this statistic existed: not learned yet
                    continue
                if key not in arrays:
                    raise ValueError(f"state group {g!r} is missing {key!r}")
                try:
                    arr = np.asarray(arrays[key], dtype=np.float64)
                except (TypeError, ValueError):
                    raise ValueError(f"state array '{g}.{key}' is not numeric") from None
                if arr.shape != ref.shape:
                    raise ValueError(f"state array '{g}.{key}' has shape {arr.shape}, expected {ref.shape}")
                if not np.isfinite(arr).all():
                    raise ValueError(f"state array '{g}.{key}' holds a value that is not finite")
                one[key] = arr
            stats[str(g)] = one
        accepted: dict[tuple[str, str], np.ndarray] = {}
        gw, gh = self.grid
        for i, entry in enumerate(state.get("accepted") or []):
            try:
                term, g, c, r, level = entry
                c, r, level = int(c), int(r), float(level)
            except (TypeError, ValueError):
                raise ValueError(f"state 'accepted[{i}]' must be [term, group, column, row, level]") from None
            if term not in TERMS:
                raise ValueError(f"state 'accepted[{i}]' names an unknown term {term!r} (known: {', '.join(TERMS)})")
            if not (0 <= c < gw and 0 <= r < gh):
                raise ValueError(f"state 'accepted[{i}]' cell ({c}, {r}) is outside the {gw} x {gh} grid")
            if not math.isfinite(level):
                raise ValueError(f"state 'accepted[{i}]' level is not finite")
            arr = accepted.setdefault((str(term), str(g)), np.full((gh, gw), -np.inf))
            arr[r, c] = max(arr[r, c], level)
        self._stats = stats
        self._accepted = accepted
        self.frames_learned = frames
        self.reset()
