"""What a camera's ``zones`` may hold: parsing and validation, with defaults (no OpenCV).

The zone kinds and the JSON shape are described in ``inference.zones``, which runs them.
The web process validates an operator's zones here without loading OpenCV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

KINDS = ("ignore", "forbidden", "loiter", "line")
#: the polygon zones with a rule (scored on presence); ``line`` zones (tripwires) are scored on tracks
RULE_KINDS = ("forbidden", "loiter")
LINE_KINDS = ("line",)
DIRECTIONS = ("both", "left", "right")
MIN_LINE_LENGTH = 0.01  # of the frame (fractions): a line shorter than 1 % of the width is a dot
MAX_ZONES = 20
MIN_POINTS, MAX_POINTS = 3, 50
MAX_NAME = 50
DEFAULT_LOITER_SECONDS = 30.0
DEFAULT_MIN_AREA = 0.02
MIN_POLYGON_AREA = 1e-4  # of the frame: a 1 % x 1 % square
FIELDS = ("name", "kind", "points", "loiter_seconds", "min_area", "classes", "direction")
MAX_CLASSES = 20


@dataclass(frozen=True)
class Zone:
    name: str
    kind: str
    points: tuple[tuple[float, float], ...]
    loiter_seconds: float | None = None
    min_area: float = DEFAULT_MIN_AREA
    #: forbidden / loiter / line: the object labels the rule is about ("person", "car"...); empty: anything
    classes: tuple[str, ...] = ()
    #: line only: which crossings count, "both", "left" or "right" (the side the object crosses to,
    #: seen from the first point looking towards the second; see ``inference.zones``)
    direction: str | None = None


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_zones(value) -> list[Zone]:
    """The zones of ``value`` (a camera's ``zones`` JSON) with defaults applied.

    Raises ValueError naming the zone (``zones[i] 'name'``) and the problem.
    """
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"zones must be a list of zone objects, not {type(value).__name__}")
    if len(value) > MAX_ZONES:
        raise ValueError(f"too many zones ({len(value)}); at most {MAX_ZONES}")
    zones: list[Zone] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(value):
        where = f"zones[{i}]"
        if not isinstance(raw, dict):
            raise ValueError(f"{where} must be an object with name, kind and points, not {type(raw).__name__}")
        name = raw.get("name")
        if isinstance(name, str) and name.strip():
            where = f"{where} {name.strip()!r}"
        unknown = sorted(str(k) for k in raw if k not in FIELDS)
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{where}: needs a name (a non-empty string)")
        name = name.strip()
        if len(name) > MAX_NAME:
            raise ValueError(f"{where}: name is longer than {MAX_NAME} characters")
        if name.lower() in seen:
            raise ValueError(f"{where}: duplicate name (zones[{seen[name.lower()]}] has it already)")
        seen[name.lower()] = i
        kind = raw.get("kind")
        if kind not in KINDS:
            raise ValueError(f"{where}: unknown kind {kind!r}; use one of {', '.join(KINDS)}")
        points = raw.get("points")
        if not isinstance(points, list):
            raise ValueError(f"{where}: points must be a list of [x, y] pairs")
        if kind == "line":
            if len(points) != 2:
                raise ValueError(f"{where}: has {len(points)} point(s); a line needs exactly 2, "
                                 "its two ends [[x1, y1], [x2, y2]]")
        elif not MIN_POINTS <= len(points) <= MAX_POINTS:
            raise ValueError(f"{where}: has {len(points)} point(s); a polygon needs {MIN_POINTS} to {MAX_POINTS}")
        parsed = []
        for j, point in enumerate(points):
            if not (isinstance(point, (list, tuple)) and len(point) == 2 and all(_number(c) for c in point)):
                raise ValueError(f"{where}: point {j} must be [x, y] with two numbers, not {point!r}")
            x, y = float(point[0]), float(point[1])
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ValueError(f"{where}: point {j} {[x, y]} is out of range; x and y are fractions "
                                 "of the frame width and height, from 0 to 1")
            parsed.append((x, y))
        if kind == "line":
            if math.dist(parsed[0], parsed[1]) < MIN_LINE_LENGTH:
                raise ValueError(f"{where}: the line has (almost) no length; its two points must be at least "
                                 f"{MIN_LINE_LENGTH} of the frame apart")
        elif _polygon_area(parsed) < MIN_POLYGON_AREA:
            raise ValueError(f"{where}: the polygon has (almost) no area")
        loiter = raw.get("loiter_seconds")
        if loiter is not None:
            if kind != "loiter":
                raise ValueError(f"{where}: loiter_seconds applies to loiter zones only")
            if not _number(loiter) or not 0 < loiter <= 86400:
                raise ValueError(f"{where}: loiter_seconds must be a number of seconds, above 0 and at most 86400")
        elif kind == "loiter":
            loiter = DEFAULT_LOITER_SECONDS
        min_area = raw.get("min_area")
        if min_area is not None:
            if kind not in RULE_KINDS:
                raise ValueError(f"{where}: min_area applies to forbidden and loiter zones only")
            if not _number(min_area) or not 0 < min_area <= 1:
                raise ValueError(f"{where}: min_area must be a fraction of the zone, above 0 and at most 1")
        else:
            min_area = DEFAULT_MIN_AREA
        classes = raw.get("classes")
        if classes is not None:
            if kind == "ignore":
                raise ValueError(f"{where}: classes apply to forbidden and loiter zones only, and to lines")
            if (not isinstance(classes, list) or not 1 <= len(classes) <= MAX_CLASSES
                    or not all(isinstance(c, str) and c.strip() and len(c) <= 40 for c in classes)):
                raise ValueError(f"{where}: classes must be a list of 1 to {MAX_CLASSES} object labels "
                                 "(person, car, bicycle...)")
            classes = tuple(sorted({c.strip().lower() for c in classes}))
        direction = raw.get("direction")
        if direction is not None:
            if kind != "line":
                raise ValueError(f"{where}: direction applies to line zones only")
            if direction not in DIRECTIONS:
                raise ValueError(f"{where}: direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
        elif kind == "line":
            direction = "both"
        zones.append(Zone(name=name, kind=kind, points=tuple(parsed),
                          loiter_seconds=None if loiter is None else float(loiter), min_area=float(min_area),
                          classes=classes or (), direction=direction))
    return zones


def validate_zones(value) -> None:
    """Raise ValueError naming the zone and the problem when ``value`` is not a valid zones list."""
    parse_zones(value)


def _polygon_area(points) -> float:
    xs = np.array([p[0] for p in points])
    ys = np.array([p[1] for p in points])
    return 0.5 * abs(float(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))))
