"""Per-camera zones and masks: polygons to ignore, forbidden areas, loitering areas, tripwires.

A camera's ``zones`` (``Camera.zones``, validated by ``inference.zone_specs.validate_zones``) is a list of at
most :data:`MAX_ZONES` objects::

    {"name": "fence",                        # unique per camera, 1..50 characters
     "kind": "ignore" | "forbidden" | "loiter" | "line",
     "points": [[x, y], ...],                # 3..50 vertices, fractions of the frame (0..1);
                                             # a line: exactly 2, its ends
     "loiter_seconds": 30,                   # loiter zones only (default 30)
     "min_area": 0.02,                       # forbidden / loiter only: the fraction of the zone
                                             # that must be occupied (default 0.02)
     "classes": ["person"],                  # forbidden / loiter / line, optional: fire only for
                                             # these objects (the objects detector)
     "direction": "both"}                    # line only: "both" (default), "left" or "right"

* ``ignore``: the camera's detector never sees what happens there (trees in the wind, a
  road); its pixels are replaced by a constant before the detector reads the frame, and
  regions inside ignored areas are dropped. Ignored areas are also cut out of the rule zones.
* ``forbidden``: any presence (moving or newly arrived foreground covering at least
  ``min_area`` of the zone) is an anomaly while it lasts.
* ``loiter``: presence lasting more than ``loiter_seconds`` (frame timestamps, so the live loop
  and ``vad_eval`` agree; gaps up to ``gap_seconds`` do not break it) is an anomaly. When the
  inner detector follows objects (``details["objects"]``, the objects detector), it is measured
  per tracked object: how long one track's feet (its box's bottom centre) stay in the zone, so
  people passing one after another never add up to a loitering; the hit names the track
  (``"track"``, ``"labels": [label]``, ``"seconds"`` of that object). Without objects (motion-only
  detectors, or an objects detector whose model is missing) it is continuous foreground presence.
* ``line``: a tripwire from the first point to the second. It fires once when a tracked object's
  feet cross the segment (between where they were clearly on one side and where they are now
  clearly on the other: ``line_margin``), in the allowed ``direction``; the same track fires
  again only after crossing back and again. Line crossing needs the objects detector (tracks):
  without ``details["objects"]`` a line never fires.

Line directions: stand on the first point and look towards the second; ``"left"`` counts the
crossings from the right-hand side of the line to its left-hand side, ``"right"`` the opposite,
``"both"`` either. On screen (y grows downwards) a foot point ``p`` is on the left of the line
``a -> b`` when ``(b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x) < 0``. Examples: a vertical
line drawn top to bottom, ``[[0.5, 0], [0.5, 1]]``, looks down the screen, so its left is the
screen's right: ``"left"`` = walking from the screen's left half to its right half (west to east);
a horizontal line drawn left to right, ``[[0, 0.5], [1, 0.5]]``: ``"left"`` = walking up the screen
(from the bottom half to the top half). Drawing the line the other way round swaps the two.

:class:`ZonedDetector` wraps any detector (``inference.registry.make_detector`` does it for a
camera with zones); the JSON is parsed and validated by ``inference.zone_specs``. Presence comes from its own cheap foreground model (an approximate running
median background at about 120 px wide), so the rules work whatever the inner detector is.
No Django here.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from .base import Detector, DetectorResult
from .zone_specs import LINE_KINDS, RULE_KINDS, parse_zones

_SHIFT = 4  # fillPoly sub-pixel bits
_K3 = np.ones((3, 3), np.uint8)


def rasterise(points, width: int, height: int) -> np.ndarray:
    """The polygon (frame fractions) as a uint8 0/1 mask of ``height`` x ``width`` pixels."""
    mask = np.zeros((height, width), np.uint8)
    pts = np.array([[x * width - 0.5, y * height - 0.5] for x, y in points]) * (1 << _SHIFT)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    return mask


@dataclass
class _Stay:
    """One tracked object standing in a loiter zone."""
    first: float  # when it started standing there (continuity through short gaps)
    last: float  # the last timestamp its feet were in the zone
    label: str


@dataclass
class _Presence:
    first: float | None = None  # timestamp presence started (continuity through short gaps)
    last: float | None = None  # last timestamp the zone was occupied
    fired: float | None = None  # last timestamp the rule fired
    seconds: float = 0.0  # presence so far when it last fired
    area: float = 0.0
    stays: dict = field(default_factory=dict)  # loiter with objects: track id -> _Stay
    track: object = None  # loiter with objects: the track it last fired for, and its label
    label: str | None = None


@dataclass
class _Side:
    """Where a tracked object was last seen clearly on one side of a line."""
    side: int  # -1: the line's left, +1: its right
    point: tuple[float, float]  # its feet then (frame pixels)
    last: float  # the last timestamp it was seen (on a side or on the line)


@dataclass
class _Crossings:
    sides: dict = field(default_factory=dict)  # track id -> _Side
    fired: float | None = None  # last timestamp the line fired
    hit: dict | None = None  # what it reported then


class ZonedDetector(Detector):
    """A camera's detector behind its zones: ignored areas masked, zone rules scored.

    ``ZonedDetector(inner, zones, **params)``; ``zones`` as :func:`parse_zones` reads them.
    Parameters (defaults in :attr:`DEFAULTS`):

    ``forbidden_score`` (None)  score while a forbidden zone is occupied (None: 1.8 x the
                                camera threshold, 0.9 at the default threshold 0.5)
    ``loiter_score`` (None)     score while someone loiters (None: 1.5 x the threshold, 0.75)
    ``line_score`` (None)       score of the frame a line is crossed (None: as forbidden_score)
    ``line_margin`` (0.01)      feet closer to a line than this fraction of the frame width are
                                on it, on neither side: a box jittering on the line is no crossing
    ``ignore_fill`` (127)       grey level that replaces ignored pixels
    ``fg_width`` (120)          width of the foreground model's image (px)
    ``fg_threshold`` (15)       grey levels from the background that count as foreground
    ``min_blob`` (0.0005)       smaller objects (fraction of the frame) are noise
    ``bg_rate`` (10)            grey levels per second the background follows where it is seen
    ``warmup_seconds`` (3)      seconds of footage the background learns before zones fire
    ``absorb_seconds`` (300)    foreground that stays this long becomes background (at least
                                twice the longest loiter_seconds)
    ``global_change`` (0.6)     foreground over this fraction of the frame is a lighting change
                                or a moved camera: the background restarts
    ``gap_seconds`` (2)         absences this short do not end a presence
    ``max_gap`` (10)            a jump in timestamps longer than this restarts the presence timers
    ``hold_seconds`` (3)        a zone that fired keeps being reported in ``details["zones"]``
                                (``"active": false``, no score) this long, so the episode's peak
                                frame still names it

    Result: ``score = max(inner, zone scores)``; ``regions``: the inner regions not inside
    ignored areas, then a box around the foreground (or the tracked object) in each firing
    zone; ``details``: the inner details plus ``"zones"``: ``[{"name", "kind", "rule" (= kind),
    "seconds", "area", "active"}]`` for zones that fired (``seconds``: presence so far; ``area``:
    the occupied fraction of the zone), with ``"labels"`` (the objects in the zone) when the
    inner detector reports objects, and ``"track"`` (its id) for a loitering tracked object.
    A crossed line: ``{"name", "kind": "line", "rule": "line", "track", "labels": [label],
    "direction": "left" | "right" (the side it crossed to), "active", "seconds": 0, "area": 0}``.
    """

    DEFAULTS = {
        "forbidden_score": None,
        "loiter_score": None,
        "line_score": None,
        "line_margin": 0.01,
        "ignore_fill": 127,
        "fg_width": 120,
        "fg_threshold": 15.0,
        "min_blob": 0.0005,
        "bg_rate": 10.0,
        "warmup_seconds": 3.0,
        "absorb_seconds": 300.0,
        "global_change": 0.6,
        "gap_seconds": 2.0,
        "max_gap": 10.0,
        "hold_seconds": 3.0,
    }

    def __init__(self, inner: Detector, zones, **params):
        unknown = set(params) - set(self.DEFAULTS) - {"threshold"}
        if unknown:
            raise ValueError(f"unknown ZonedDetector parameter(s): {', '.join(sorted(unknown))}")
        merged = {**self.DEFAULTS, **params}
        super().__init__(**merged)
        self.inner = inner
        self.name = getattr(inner, "name", "")
        self.wants_color = bool(getattr(inner, "wants_color", False))
        self.zones = parse_zones(zones)
        self.ignored = [z for z in self.zones if z.kind == "ignore"]
        self.rules = [z for z in self.zones if z.kind in RULE_KINDS]
        self.lines = [z for z in self.zones if z.kind in LINE_KINDS]
        threshold = merged.get("threshold")
        if threshold is None:
            inner_params = getattr(inner, "params", None)
            threshold = inner_params.get("threshold", 0.5) if isinstance(inner_params, dict) else 0.5
        threshold = float(threshold)
        self.scores = {
            "forbidden": float(merged["forbidden_score"]) if merged["forbidden_score"] is not None
            else max(0.9, 1.8 * threshold),
            "loiter": float(merged["loiter_score"]) if merged["loiter_score"] is not None
            else max(0.75, 1.5 * threshold),
        }
        self.scores["line"] = (float(merged["line_score"]) if merged["line_score"] is not None
                               else self.scores["forbidden"])
        longest = max([z.loiter_seconds or 0.0 for z in self.rules] + [0.0])
        self.absorb_seconds = max(float(merged["absorb_seconds"]), 2.0 * longest)
        self._masks: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # input shape -> masking
        self._fg_geom: dict | None = None  # foreground model geometry for one analysis size
        self._bg: np.ndarray | None = None
        self.reset_presence()

    # -- delegation --------------------------------------------------------------------
    def __getattr__(self, name):
        # only called for attributes the wrapper lacks: fit / feedback (with the ignore mask
        # applied to their frames) and whatever else the inner detector offers
        if name.startswith("__") or name == "inner":
            raise AttributeError(name)
        inner = self.__dict__.get("inner")
        if inner is None:
            raise AttributeError(name)
        attr = getattr(inner, name)
        if name in ("fit", "feedback") and callable(attr):
            @functools.wraps(attr)  # the inner signature (callers look for ``fps``)
            def masked(frames, *args, **kwargs):
                return attr(self._masked_frames(frames), *args, **kwargs)

            return masked
        return attr

    def state_dict(self) -> dict:
        """The inner detector's state: zones are settings, not something learned."""
        return self.inner.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state)

    def reset(self) -> None:
        """A cut in the footage: restart the presence timers (the background is kept: same scene)."""
        self.reset_presence()
        if hasattr(self.inner, "reset"):
            self.inner.reset()

    def reset_presence(self) -> None:
        self._prev_t: float | None = None
        self._presence = {z.name: _Presence() for z in self.rules}
        self._crossings = {z.name: _Crossings() for z in self.lines}

    # -- ignore mask -------------------------------------------------------------------
    def _masking(self, shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(keep: 255 where seen, fill: the constant where ignored, ignored: 0/1 mask), per input shape."""
        got = self._masks.get(shape)
        if got is None:
            h, w = shape[:2]
            ignored = np.zeros((h, w), np.uint8)
            for zone in self.ignored:
                ignored |= rasterise(zone.points, w, h)
            keep = np.where(ignored > 0, 0, 255).astype(np.uint8)
            fill = (ignored * np.uint8(int(self.params["ignore_fill"]))).astype(np.uint8)
            if len(shape) == 3:
                keep = np.repeat(keep[:, :, None], shape[2], axis=2)
                fill = np.repeat(fill[:, :, None], shape[2], axis=2)
            got = self._masks[shape] = (keep, fill, ignored)
        return got

    def mask(self, image: np.ndarray) -> np.ndarray:
        """``image`` with the ignored areas replaced by ``ignore_fill`` (a new array), or itself."""
        if not self.ignored:
            return image
        keep, fill, _ = self._masking(image.shape)
        if image.dtype != np.uint8:
            return np.where(keep > 0, image, fill.astype(image.dtype))
        return cv2.bitwise_or(cv2.bitwise_and(image, keep), fill)

    def _mask_item(self, item):
        if item is None:
            return None
        if isinstance(item, np.ndarray):
            if item.ndim == 2 or (item.ndim == 3 and self.wants_color and item.shape[2] in (3, 4)):
                return self.mask(item)
            if item.ndim >= 3:  # a whole clip
                return [self._mask_item(frame) for frame in item]
            return item
        if isinstance(item, (list, tuple)):
            return type(item)(self._mask_item(x) for x in item)
        return item

    def _masked_frames(self, frames):
        if not self.ignored:
            return frames
        if isinstance(frames, np.ndarray) and frames.ndim >= 3 and not (
                frames.ndim == 3 and self.wants_color and frames.shape[2] in (3, 4)):
            return [self._mask_item(f) for f in frames]
        return (self._mask_item(item) for item in frames)

    def _drop_ignored(self, regions, shape) -> list:
        if not self.ignored or not regions:
            return list(regions)
        _, _, ignored = self._masking(shape)
        kept = []
        for region in regions:
            x, y, w, h = (int(v) for v in region[:4])
            patch = ignored[max(0, y):max(0, y + h), max(0, x):max(0, x + w)]
            if patch.size and float(patch.mean()) >= 0.8:
                continue
            kept.append(region)
        return kept

    # -- foreground model --------------------------------------------------------------
    def _geometry(self, h: int, w: int) -> dict:
        geom = self._fg_geom
        if geom is None or geom["shape"] != (h, w):
            fw = max(8, min(int(self.params["fg_width"]), w))
            fh = max(6, int(round(h * fw / w)))
            ignored = np.zeros((fh, fw), np.uint8)
            for zone in self.ignored:
                ignored |= rasterise(zone.points, fw, fh)
            masks = []
            for zone in self.rules:
                m = rasterise(zone.points, fw, fh) & (1 - ignored)
                masks.append(m)
            stack = np.stack(masks).reshape(len(masks), -1).astype(np.float32)
            geom = self._fg_geom = {
                "shape": (h, w), "size": (fw, fh), "masks": masks, "matrix": stack,
                "pixels": np.maximum(stack.sum(axis=1), 1.0), "scale": (w / fw, h / fh),
                "min_blob": max(3, int(round(float(self.params["min_blob"]) * fw * fh))),
            }
            self._bg = None
        return geom

    def _foreground(self, image: np.ndarray, dt: float) -> np.ndarray | None:
        """The foreground (uint8 0/1 at the model's size), or None while the background learns."""
        gray = image
        if gray.ndim == 3:
            gray = cv2.cvtColor(gray, cv2.COLOR_BGRA2GRAY if gray.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
        h, w = gray.shape[:2]
        geom = self._geometry(h, w)
        fw, fh = geom["size"]
        small = gray if (w, h) == (fw, fh) else cv2.resize(gray, (fw, fh), interpolation=cv2.INTER_AREA)
        small = small.astype(np.float32)
        p = self.params
        if self._bg is None:
            self._bg = small.copy()
            self._fg_age = np.zeros_like(small)
            self._bg_age = 0.0
            return None
        diff = small - self._bg
        fg = (np.abs(diff) > float(p["fg_threshold"]))
        young = self._bg_age < float(p["warmup_seconds"])
        if not young and float(fg.mean()) > float(p["global_change"]):
            # lighting change or a moved camera: start again from this frame
            self._bg = small.copy()
            self._fg_age[:] = 0.0
            self._bg_age = 0.0
            for state in self._presence.values():
                state.first = state.last = None
            return None
        self._bg_age += dt
        if young:  # approximate running median, fast: converges in a few seconds
            step = dt * 40.0
            self._bg += np.clip(diff, -step, step)
            return None
        step = dt * float(p["bg_rate"])
        self._bg += np.clip(diff, -step, step) * (~fg)
        # foreground that stays absorb_seconds becomes background (an object left there for good)
        self._fg_age = (self._fg_age + dt) * fg
        absorbed = self._fg_age > self.absorb_seconds
        if absorbed.any():
            self._bg[absorbed] = small[absorbed]
            self._fg_age[absorbed] = 0.0
        return cv2.morphologyEx(fg.view(np.uint8), cv2.MORPH_CLOSE, _K3)  # thin legs hold together

    def _objects(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(``mask`` without specks of noise, the lowest point (x, y) of each object: its feet)."""
        _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        big = stats[1:, cv2.CC_STAT_AREA] >= self._fg_geom["min_blob"]
        if not big.all():
            mask = np.concatenate([[0], big]).astype(np.uint8)[labels]
        x, y, w, h = (stats[1:, i][big] for i in range(4))
        return mask, np.stack([x + w // 2, y + h - 1], axis=1)

    # -- scoring -----------------------------------------------------------------------
    def score(self, frame: np.ndarray, timestamp: float) -> DetectorResult:
        inner = self.inner.score(self.mask(frame), timestamp)
        regions = self._drop_ignored(inner.regions, frame.shape)
        if not self.rules and not self.lines:
            if len(regions) == len(inner.regions):
                return inner
            return DetectorResult(score=inner.score, regions=regions, details=inner.details)

        t = float(timestamp)
        prev = self._prev_t
        if prev is not None and not (0.0 < t - prev <= float(self.params["max_gap"])):
            self.reset_presence()
            prev = None
        dt = 0.0 if prev is None else min(t - prev, 1.0)
        self._prev_t = t
        details = inner.details if isinstance(inner.details, dict) else {}
        objects = details.get("objects")
        if not isinstance(objects, list):
            objects = None
        # tracked objects (id, label, feet, box): loitering per object and lines need them; an objects
        # detector running on motion alone (its model missing) follows nothing: foreground then
        tracks = self._tracks(objects, frame.shape) if objects is not None and not details.get("objects_error") \
            else None
        score = float(inner.score)
        hits: list[dict] = []
        if self.rules:
            score = self._score_rules(frame, t, dt, objects, tracks, score, hits, regions)
        if self.lines:
            score = self._score_lines(frame.shape, t, tracks, score, hits, regions)
        if not hits:
            if len(regions) == len(inner.regions):
                return inner
            return DetectorResult(score=inner.score, regions=regions, details=inner.details)
        return DetectorResult(score=score, regions=regions, details={**inner.details, "zones": hits})

    def _score_rules(self, frame, t, dt, objects, tracks, score, hits, regions) -> float:
        """Forbidden and loiter zones: presence from the foreground (and the tracked objects)."""
        fg = self._foreground(frame, dt)
        geom = self._fg_geom
        areas, feet = np.zeros(len(self.rules)), None
        if fg is not None:
            counts = geom["matrix"] @ fg.reshape(-1).astype(np.float32)
            if counts.max() > 0:  # something in a zone: find the objects (specks of noise out)
                fg, feet = self._objects(fg)
                counts = geom["matrix"] @ fg.reshape(-1).astype(np.float32)
            areas = counts / geom["pixels"]
        gap = float(self.params["gap_seconds"])
        hold = float(self.params["hold_seconds"])
        for k, zone in enumerate(self.rules):
            state = self._presence[zone.name]
            area = float(areas[k])
            present = area >= zone.min_area
            if not present and feet is not None and len(feet):  # someone standing in it (ground zones)
                present = bool(geom["masks"][k][feet[:, 1], feet[:, 0]].any())
            if present:
                if state.last is None or t - state.last > gap:
                    state.first = t
                state.last = t
            elif state.last is not None and t - state.last > gap:
                state.first = state.last = None
            seconds = 0.0 if state.first is None else t - state.first
            inside = self._labels_in(k, objects, frame.shape) if objects is not None else None
            track, label, box = None, None, None
            if zone.kind == "forbidden":
                firing = present
            elif tracks is not None:  # loiter, per tracked object: the one standing there longest
                stay = self._stay(k, zone, state, tracks, t, gap)
                firing = stay is not None
                if firing:
                    track, stay, box = stay
                    seconds, label = t - stay.first, stay.label
            else:  # loiter: continuous presence (short gaps tolerated) beyond loiter_seconds
                firing = state.first is not None and seconds > zone.loiter_seconds
            if firing and track is None and zone.classes and inside is not None and not inside & set(zone.classes):
                firing = False  # something is there, but none of the objects the rule is about
            if firing:
                state.fired, state.seconds, state.area = t, seconds, area
                state.track, state.label = track, label
                score = max(score, self.scores[zone.kind])
                hit = {"name": zone.name, "kind": zone.kind, "rule": zone.kind, "seconds": round(seconds, 1),
                       "area": round(area, 3), "active": True}
                if track is not None:
                    hit["track"], hit["labels"] = track, [label]
                elif inside is not None:
                    hit["labels"] = sorted(inside)
                hits.append(hit)
                if box is None and present:
                    box = self._box(fg, k)
                if box is not None:
                    regions.append(box)
            elif state.fired is not None and t - state.fired <= hold:
                hit = {"name": zone.name, "kind": zone.kind, "rule": zone.kind,
                       "seconds": round(state.seconds, 1), "area": round(state.area, 3), "active": False}
                if state.track is not None:
                    hit["track"], hit["labels"] = state.track, [state.label]
                hits.append(hit)
        return score

    def _stay(self, k: int, zone, state: _Presence, tracks: list, t: float, gap: float):
        """Follow who stands in loiter zone ``k``: (track id, its _Stay, its box now or None) of the
        object there longest when that is beyond ``loiter_seconds``, else None."""
        mask = self._fg_geom["masks"][k]
        for track, label, foot, box in tracks:
            if zone.classes and label not in zone.classes:
                continue
            if not mask[self._cell(foot, mask.shape, self._fg_geom["shape"])]:
                continue
            stay = state.stays.get(track)
            if stay is None or t - stay.last > gap:
                state.stays[track] = _Stay(first=t, last=t, label=label)
            else:
                stay.last, stay.label = t, label
        for track in [tr for tr, stay in state.stays.items() if t - stay.last > gap]:
            del state.stays[track]  # gone (or away) for longer than a short gap: its time is over
        longest = max(state.stays.items(), key=lambda item: t - item[1].first, default=None)
        if longest is None or t - longest[1].first <= zone.loiter_seconds:
            return None
        box = next((b for tr, _, _, b in tracks if tr == longest[0]), None)
        return longest[0], longest[1], box

    def _score_lines(self, shape, t, tracks, score, hits, regions) -> float:
        """Lines (tripwires): a tracked object's feet crossing one, in the allowed direction."""
        h, w = shape[:2]
        margin = float(self.params["line_margin"]) * w
        max_gap = float(self.params["max_gap"])
        hold = float(self.params["hold_seconds"])
        for zone in self.lines:
            state = self._crossings[zone.name]
            (ax, ay), (bx, by) = ((x * w, y * h) for x, y in zone.points)
            dx, dy = bx - ax, by - ay
            length = math.hypot(dx, dy) or 1.0
            crossed = []
            for track, label, (px, py), box in tracks or ():
                distance = (dx * (py - ay) - dy * (px - ax)) / length  # < 0: on the line's left (screen y down)
                side = 0 if abs(distance) <= margin else (-1 if distance < 0 else 1)
                known = state.sides.get(track)
                if known is not None and t - known.last > max_gap:
                    known = None
                if side == 0:  # on the line: wait until it is clearly on one side
                    if known is not None:
                        known.last = t
                    continue
                if known is None:
                    state.sides[track] = _Side(side=side, point=(px, py), last=t)
                    continue
                if side != known.side:
                    # from one side to the other: through the segment, or around one of its ends?
                    qx, qy = known.point
                    rx, ry = px - qx, py - qy
                    denom = dx * ry - dy * rx
                    u = ((qx - ax) * ry - (qy - ay) * rx) / denom if denom else -1.0
                    to = "left" if side < 0 else "right"
                    if (0.0 <= u <= 1.0 and zone.direction in ("both", to)
                            and (not zone.classes or label in zone.classes)):
                        crossed.append((track, label, to, box))
                known.side, known.point, known.last = side, (px, py), t
            for track in [tr for tr, known in state.sides.items() if t - known.last > max_gap]:
                del state.sides[track]
            if crossed:
                track, label, to, box = crossed[0]
                hit = {"name": zone.name, "kind": zone.kind, "rule": zone.kind, "track": track,
                       "labels": sorted({c[1] for c in crossed}), "direction": to, "active": True,
                       "seconds": 0, "area": 0}
                state.fired, state.hit = t, hit
                score = max(score, self.scores["line"])
                hits.append(hit)
                regions.extend(c[3] for c in crossed)
            elif state.fired is not None and t - state.fired <= hold:
                hits.append({**state.hit, "active": False})
        return score

    @staticmethod
    def _tracks(objects: list, shape) -> list:
        """The tracked objects: ``[(id, label, feet (x, y) in frame pixels, box (x, y, w, h))]``."""
        fh, fw = shape[:2]
        found = []
        for obj in objects:
            try:
                track = obj["id"]
                hash(track)
                x1, y1, x2, y2 = (float(v) for v in obj["box"])
            except (KeyError, TypeError, ValueError):
                continue
            if track is None or not all(map(math.isfinite, (x1, y1, x2, y2))):
                continue
            box = (int(math.floor(x1)), int(math.floor(y1)), max(1, int(math.ceil(x2 - x1))),
                   max(1, int(math.ceil(y2 - y1))))
            found.append((track, str(obj.get("label", "")), ((x1 + x2) / 2, y2), box))
        return found

    @staticmethod
    def _cell(foot, mask_shape, shape) -> tuple[int, int]:
        """The (row, column) of a mask of ``mask_shape`` under ``foot`` (frame pixels of ``shape``)."""
        mh, mw = mask_shape[:2]
        fh, fw = shape[:2]
        fx = int(min(mw - 1, max(0.0, foot[0] * mw / fw)))
        fy = int(min(mh - 1, max(0.0, foot[1] * mh / fh - 0.5)))
        return fy, fx

    def _labels_in(self, k: int, objects: list, shape) -> set[str]:
        """The labels of the objects (the inner detector's, frame pixels) standing in zone ``k``."""
        mask = self._fg_geom["masks"][k]
        found = set()
        for obj in objects:
            try:
                x1, _y1, x2, y2 = (float(v) for v in obj["box"])
                cell = self._cell(((x1 + x2) / 2, y2), mask.shape, shape)
            except (KeyError, TypeError, ValueError, ZeroDivisionError):
                continue
            if mask[cell]:
                found.add(str(obj.get("label", "")))
        return found

    def _box(self, fg: np.ndarray, k: int) -> tuple[int, int, int, int] | None:
        """The foreground inside rule zone ``k``, as an analysis-frame box."""
        geom = self._fg_geom
        x, y, w, h = cv2.boundingRect(fg & geom["masks"][k])
        if w == 0 or h == 0:
            return None
        sx, sy = geom["scale"]
        return (int(math.floor(x * sx)), int(math.floor(y * sy)), int(math.ceil(w * sx)), int(math.ceil(h * sy)))
