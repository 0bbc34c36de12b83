"""The zone checker's English (inference/zone_specs.py, no Django) in the reader's language.

``zone_specs.validate_zones`` names the zone and the problem in English, once; the admin, the API and
the zone editor show its message through :func:`zone_error_text`, which rebuilds each known message with a
translated template (the numbers and names kept) and leaves any other text as it was.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

_WHERE = re.compile(r"zones\[(?P<i>\d+)\](?: '(?P<name>[^']*)')?")

# (pattern of the problem after "<where>: ", template); named groups fill the template. The English templates
# are zone_specs' own words, so an English reader reads exactly what the checker wrote.
_PROBLEMS: list[tuple[re.Pattern, str]] = [(re.compile(p), t) for p, t in (
    (r"unknown field\(s\) (?P<fields>.+); known: (?P<known>.+)",
     gettext_noop("unknown field(s) %(fields)s; known: %(known)s")),
    (r"needs a name \(a non-empty string\)", gettext_noop("needs a name (a non-empty string)")),
    (r"name is longer than (?P<n>\d+) characters", gettext_noop("name is longer than %(n)s characters")),
    (r"duplicate name \(zones\[(?P<other>\d+)\] has it already\)",
     gettext_noop("duplicate name (zones[%(other)s] has it already)")),
    (r"unknown kind (?P<kind>.+); use one of (?P<kinds>.+)", gettext_noop("unknown kind %(kind)s; use one of %(kinds)s")),
    (r"points must be a list of \[x, y\] pairs", gettext_noop("points must be a list of [x, y] pairs")),
    (r"has (?P<n>\d+) point\(s\); a line needs exactly 2, its two ends \[\[x1, y1\], \[x2, y2\]\]",
     gettext_noop("has %(n)s point(s); a line needs exactly 2, its two ends [[x1, y1], [x2, y2]]")),
    (r"has (?P<n>\d+) point\(s\); a polygon needs (?P<min>\d+) to (?P<max>\d+)",
     gettext_noop("has %(n)s point(s); a polygon needs %(min)s to %(max)s")),
    (r"point (?P<j>\d+) must be \[x, y\] with two numbers, not (?P<value>.+)",
     gettext_noop("point %(j)s must be [x, y] with two numbers, not %(value)s")),
    (r"point (?P<j>\d+) (?P<value>\[.+\]) is out of range; x and y are fractions of the frame width and height, from 0 to 1",
     gettext_noop("point %(j)s %(value)s is out of range; x and y are fractions of the frame width and height, "
                  "from 0 to 1")),
    (r"the line has \(almost\) no length; its two points must be at least (?P<min>[\d.]+) of the frame apart",
     gettext_noop("the line has (almost) no length; its two points must be at least %(min)s of the frame apart")),
    (r"the polygon has \(almost\) no area", gettext_noop("the polygon has (almost) no area")),
    (r"loiter_seconds applies to loiter zones only", gettext_noop("loiter_seconds applies to loiter zones only")),
    (r"loiter_seconds must be a number of seconds, above 0 and at most 86400",
     gettext_noop("loiter_seconds must be a number of seconds, above 0 and at most 86400")),
    (r"min_area applies to forbidden and loiter zones only",
     gettext_noop("min_area applies to forbidden and loiter zones only")),
    (r"min_area must be a fraction of the zone, above 0 and at most 1",
     gettext_noop("min_area must be a fraction of the zone, above 0 and at most 1")),
    (r"classes apply to forbidden and loiter zones only, and to lines",
     gettext_noop("classes apply to forbidden and loiter zones only, and to lines")),
    (r"classes must be a list of 1 to (?P<n>\d+) object labels \(person, car, bicycle\.\.\.\)",
     gettext_noop("classes must be a list of 1 to %(n)s object labels (person, car, bicycle...)")),
    (r"direction applies to line zones only", gettext_noop("direction applies to line zones only")),
    (r"direction must be one of (?P<choices>.+), not (?P<value>.+)",
     gettext_noop("direction must be one of %(choices)s, not %(value)s")),
)]
_WHOLE: list[tuple[re.Pattern, str]] = [(re.compile(p), t) for p, t in (
    (r"zones must be a list of zone objects, not (?P<type>\w+)",
     gettext_noop("zones must be a list of zone objects, not %(type)s")),
    (r"too many zones \((?P<n>\d+)\); at most (?P<max>\d+)", gettext_noop("too many zones (%(n)s); at most %(max)s")),
    (r"zones\[(?P<i>\d+)\] must be an object with name, kind and points, not (?P<type>\w+)",
     gettext_noop("zones[%(i)s] must be an object with name, kind and points, not %(type)s")),
)]


def _translate(message: str) -> str | None:
    for pattern, template in _WHOLE:
        m = pattern.fullmatch(message)
        if m:
            return _(template) % m.groupdict()
    where, sep, problem = message.partition(": ")
    w = _WHERE.fullmatch(where) if sep else None
    if w is None:
        return None
    for pattern, template in _PROBLEMS:
        m = pattern.fullmatch(problem)
        if m:
            # the zone as zone_specs names it, zones[i] 'name' (the editor finds the zone by its index)
            zone = (_("zones[%(i)s] '%(name)s'") % {"i": w["i"], "name": w["name"]} if w["name"] is not None
                    else _("zones[%(i)s]") % {"i": w["i"]})
            return f"{zone}: {_(template) % m.groupdict()}"
    return None


def zone_error_text(message) -> str:
    """A message of ``zone_specs.validate_zones`` in the active language; as it was when it is unknown."""
    message = str(message)
    translated = _translate(message)
    return message if translated is None else translated


def zone_error_known(message) -> bool:
    """Whether the message is one this module translates (the tests hold zone_specs to them)."""
    return _translate(str(message)) is not None
