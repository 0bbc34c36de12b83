"""The worker's English about an event, in the reader's language.

The worker (``inference/``, no Django) writes its decision reasons, its actions and policy, the inputs
it decided from, and the sentences of the camera's own events (health, offline) in English, once, as
data. Pages and messages show them through this module: each text the worker makes from a known
template is matched and rebuilt with a translated template (the numbers, names and quoted words
kept as they are); a text from no known template (an LLM's own reasons, a model's description) is
shown as it was written. So a Korean operator reads Korean for everything the product says, and the
stored event stays the same for every reader.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from .describe import label_name

_SEVERITY_NAMES = {  # the same words as the severity choices (alerts.models.SEVERITY_CHOICES), lower case here
    "low": gettext_noop("low"),
    "medium": gettext_noop("medium"),
    "high": gettext_noop("high"),
    "critical": gettext_noop("critical"),
}
ACTION_NAMES = {
    "record": gettext_noop("record"),
    "notify": gettext_noop("notify"),
    "alert_now": gettext_noop("alert now"),
    "escalate": gettext_noop("escalate"),
}
POLICY_NAMES = {
    "rules": gettext_noop("rules"),
    "llm": gettext_noop("language model"),
    "openai": gettext_noop("language model (server)"),
    "system": gettext_noop("system"),
}
INPUT_NAMES = {
    "peak_score": gettext_noop("peak score"),
    "mean_score": gettext_noop("mean score"),
    "threshold": gettext_noop("threshold"),
    "duration_s": gettext_noop("duration (s)"),
    "description": gettext_noop("description"),
    "vlm_threat_level": gettext_noop("threat level (VLM)"),
    "vlm_objects": gettext_noop("objects (VLM)"),
    "zones": gettext_noop("zones"),
    "labels": gettext_noop("objects seen"),
}
_ZONE_KINDS = {
    "forbidden": gettext_noop("forbidden"),
    "loiter": gettext_noop("loitering"),
    "line": gettext_noop("line"),
    "ignore": gettext_noop("ignore"),
}
_HEALTH_ENDS = {
    "Camera view no longer covered": gettext_noop("Camera view no longer covered (lasted %(time)s)"),
    "Camera view sharp again": gettext_noop("Camera view sharp again (lasted %(time)s)"),
    "Camera view back on its reference": gettext_noop("Camera view back on its reference (lasted %(time)s)"),
    "Camera image moving again": gettext_noop("Camera image moving again (lasted %(time)s)"),
    "Camera image no longer dark": gettext_noop("Camera image no longer dark (lasted %(time)s)"),
    "Camera no longer blinded": gettext_noop("Camera no longer blinded (lasted %(time)s)"),
}


def severity_name(word: str) -> str:
    return _(_SEVERITY_NAMES[word]) if word in _SEVERITY_NAMES else word


def action_name(action: str) -> str:
    return _(ACTION_NAMES[action]) if action in ACTION_NAMES else action


def policy_name(policy: str) -> str:
    return _(POLICY_NAMES[policy]) if policy in POLICY_NAMES else policy


def input_name(name: str) -> str:
    return _(INPUT_NAMES[name]) if name in INPUT_NAMES else name


def zone_entry(text: str) -> str:
    """A decision input's zone, "fence (forbidden)", with its kind in the reader's language."""
    m = re.fullmatch(r"(?P<name>.*) \((?P<kind>\w+)\)", str(text))
    if m is None or m["kind"] not in _ZONE_KINDS:
        return str(text)
    return f"{m['name']} ({_(_ZONE_KINDS[m['kind']])})"


def _time(text: str) -> str:
    """ "25 s", "2 min 5 s", "1 h 3 min", "3 min" in the reader's units."""
    parts = re.findall(r"([\d.,]+) (h|min|s)\b", text)
    if not parts or " ".join(f"{n} {u}" for n, u in parts) != text.strip():
        return text
    units = {"h": _("%(n)s h"), "min": _("%(n)s min"), "s": _("%(n)s s")}
    return " ".join(units[u] % {"n": n} for n, u in parts)


def _labels(text: str) -> str:
    return ", ".join(label_name(x.strip()) for x in text.split(","))


def _zone_hit(text: str) -> str | None:
    """inference.agent._zone_hit's words, translated; None when ``text`` is not one of them."""
    m = re.fullmatch(r"(?P<what>.+?) in forbidden zone '(?P<zone>[^']*)'(?: for (?P<s>\d+) s)?(?: \((?P<labels>[^)]*)\))?",
                     text)
    if m:
        who = _("presence") if m["what"] == "presence" else label_name(m["what"])
        out = (_("%(who)s in forbidden zone '%(zone)s' for %(time)s") % {"who": who, "zone": m["zone"],
                                                                      "time": _("%(n)s s") % {"n": m["s"]}}
               if m["s"] else _("%(who)s in forbidden zone '%(zone)s'") % {"who": who, "zone": m["zone"]})
        return out + (f" ({_labels(m['labels'])})" if m["labels"] else "")
    m = re.fullmatch(r"loitering (?:(?P<s>\d+) s )?in zone '(?P<zone>[^']*)'(?: \((?P<labels>[^)]*)\))?", text)
    if m:
        out = (_("loitering %(time)s in zone '%(zone)s'") % {"time": _("%(n)s s") % {"n": m["s"]}, "zone": m["zone"]}
               if m["s"] else _("loitering in zone '%(zone)s'") % {"zone": m["zone"]})
        return out + (f" ({_labels(m['labels'])})" if m["labels"] else "")
    m = re.fullmatch(r"line '(?P<zone>[^']*)' crossed(?: to its (?P<side>left|right) side)?(?: \((?P<labels>[^)]*)\))?",
                     text)
    if m:
        out = {None: _("line '%(zone)s' crossed"), "left": _("line '%(zone)s' crossed to its left side"),
               "right": _("line '%(zone)s' crossed to its right side")}[m["side"]] % {"zone": m["zone"]}
        return out + (f" ({_labels(m['labels'])})" if m["labels"] else "")
    return None


def _what(text: str, terms) -> str:
    """The subject of a "-> at least" reason: a zone hit, or an object term's explanation."""
    hit = _zone_hit(text)
    if hit is not None:
        return hit
    for term in terms or ():
        if isinstance(term, dict) and term.get("explain") and str(term["explain"])[:200] == text:
            return term_text(term)
    return text


def term_text(term: dict) -> str:
    """One object anomaly term (``details.object_terms``) in the reader's language; its stored explanation
    when it lacks the numbers to say it again."""
    label, numbers = label_name(str(term.get("label") or "")), term.get("numbers") or {}
    kind, explain = term.get("term"), str(term.get("explain") or "")

    def number(key, fmt="{:.1f}"):
        try:
            return fmt.format(float(numbers[key]))
        except (KeyError, TypeError, ValueError):
            return None

    if kind == "rare_class":
        seen, frames = number("seen", "{:,.0f}"), number("frames", "{:,.0f}")
        if seen is None or frames is None:
            return explain
        return _("%(label)s where this camera rarely sees one (%(seen)s in %(frames)s learned frames)") % {
            "label": label, "seen": seen, "frames": frames}
    if kind == "speed":
        ratio = number("ratio")
        if ratio is None:
            return explain
        return _("%(label)s at %(ratio)s times the usual speed here") % {"label": label, "ratio": ratio}
    if kind == "person_down":
        return _("a person down and not moving")
    if kind == "left_behind":
        return _("%(label)s left behind") % {"label": label}
    if kind == "dwell":
        return _("%(label)s staying much longer than usual") % {"label": label}
    if kind == "direction":
        return _("%(label)s moving in an unusual direction here") % {"label": label}
    if kind == "size":
        return _("%(label)s of an unusual size here") % {"label": label}
    if kind == "shape":
        ratio = number("ratio")
        if ratio is None:
            return explain
        return _("%(label)s %(ratio)s times as wide for its height as usual here") % {"label": label, "ratio": ratio}
    return explain


# (pattern, template): the groups named in the pattern fill the template; a group called ``sev*`` is a
# severity word, ``time`` a duration, ``labels`` a list of object labels, ``what`` a zone hit or object term.
_RULES: list[tuple[re.Pattern, str]] = [(re.compile(p), t) for p, t in (
    (r"peak score (?P<peak>[\d.]+) is (?P<ratio>[\d.]+)x the threshold (?P<threshold>[\d.]+) -> (?P<sev>\w+)",
     gettext_noop("peak score %(peak)s is %(ratio)s times the threshold %(threshold)s → %(sev)s")),
    (r"peak score (?P<peak>[\d.]+) is infinitely many times the threshold (?P<threshold>[\d.]+) -> (?P<sev>\w+)",
     gettext_noop("peak score %(peak)s with a threshold of %(threshold)s → %(sev)s")),
    (r"lasted (?P<s>\d+) s, longer than (?P<long>\d+) s -> (?P<sev>\w+)",
     gettext_noop("lasted %(s)s s, longer than %(long)s s → %(sev)s")),
    (r"lasted (?P<s>\d+) s, longer than (?P<long>\d+) s \(already (?P<sev>\w+), duration raises at most to (?P<sev2>\w+)\)",
     gettext_noop("lasted %(s)s s, longer than %(long)s s (already %(sev)s; duration raises at most to %(sev2)s)")),
    (r"VLM rates the threat (?P<sev>\w+); capped at one level above the score -> (?P<sev2>\w+)",
     gettext_noop("the VLM rates the threat %(sev)s; at most one level above the score → %(sev2)s")),
    (r"VLM rates the threat (?P<sev>\w+) -> (?P<sev2>\w+)",
     gettext_noop("the VLM rates the threat %(sev)s → %(sev2)s")),
    (r"VLM rates the threat (?P<sev>\w+); ignored, more than one level above the score",
     gettext_noop("the VLM rates the threat %(sev)s; ignored, more than one level above the score")),
    (r"VLM rates the threat (?P<sev>\w+); keeps (?P<sev2>\w+)",
     gettext_noop("the VLM rates the threat %(sev)s; stays %(sev2)s")),
    (r"description mentions '(?P<word>[^']*)' -> (?P<sev>\w+)",
     gettext_noop("the description mentions '%(word)s' → %(sev)s")),
    (r"description mentions '(?P<word>[^']*)'; keeps (?P<sev>\w+)",
     gettext_noop("the description mentions '%(word)s'; stays %(sev)s")),
    (r"description says '(?P<word>[^']*)' -> lowered to (?P<sev>\w+)",
     gettext_noop("the description says '%(word)s' → lowered to %(sev)s")),
    (r"description says '(?P<word>[^']*)'; stays low",
     gettext_noop("the description says '%(word)s'; stays low")),
    (r"only (?P<labels>.+) in (?P<kind>\w+) zone '(?P<zone>[^']*)'; not raised",
     gettext_noop("only %(labels)s in %(kind)s zone '%(zone)s'; not raised")),
    (r"(?P<what>.+) -> at least (?P<sev>\w+): (?P<sev2>\w+)",
     gettext_noop("%(what)s → at least %(sev)s: %(sev2)s")),
    (r"(?P<what>.+) \(at least (?P<sev>\w+)\); keeps (?P<sev2>\w+)",
     gettext_noop("%(what)s (at least %(sev)s); stays %(sev2)s")),
    (r"not allowed at (?P<sev>\w+) on this camera, dropped: (?P<dropped>[\w, ]+) \(allowed: (?P<allowed>[\w, ]+)\)",
     gettext_noop("not allowed at %(sev)s on this camera, left out: %(dropped)s (allowed: %(allowed)s)")),
    (r"model chose (?P<sev>\w+) without giving reasons",
     gettext_noop("the model chose %(sev)s without giving reasons")),
    (r"LLM policy: (?P<problem>.+); fell back to the rule policy",
     gettext_noop("language model policy: %(problem)s; the rules decided instead")),
    # The camera's own events (inference/e2e.py, inference/camera_health.py): reasons and descriptions.
    (r"camera (?:went offline|is offline): (?P<cause>.+)",
     gettext_noop("camera offline: %(cause)s")),
    (r"Camera (?P<name>.+) went offline: (?P<cause>.+?)(?: \((?P<how>back online|camera stopped) after (?P<s>\d+) s\))?",
     gettext_noop("Camera %(name)s went offline: %(cause)s")),
    (r"Camera (?P<name>.+) is offline: (?P<cause>.+?)(?: \((?P<how>back online|camera stopped) after (?P<s>\d+) s\))?",
     gettext_noop("Camera %(name)s is offline: %(cause)s")),
    (r"Camera view covered: (?P<n>\d+)% of the image lost its texture",
     gettext_noop("Camera view covered: %(n)s%% of the image lost its texture")),
    (r"Camera view blurred: sharpness at (?P<n>\d+)% of its usual level",
     gettext_noop("Camera view blurred: sharpness at %(n)s%% of its usual level")),
    (r"Camera moved: the view shifted by (?P<shift>[\d.]+)% of its width and turned (?P<deg>[\d.-]+) degrees from its reference",
     gettext_noop("Camera moved: the view shifted by %(shift)s%% of its width and turned %(deg)s degrees "
                  "from its reference")),
    (r"Camera moved: the view no longer matches its reference \((?P<n>\d+) matching points, usually (?P<usual>\d+)\)",
     gettext_noop("Camera moved: the view no longer matches its reference (%(n)s matching points, usually "
                  "%(usual)s)")),
    (r"Camera image frozen: the same picture for (?P<time>.+)",
     gettext_noop("Camera image frozen: the same picture for %(time)s")),
    (r"Camera image dark: brightness fell to (?P<n>\d+)% of the darkest it was learned \((?P<level>\d+) of 255\)",
     gettext_noop("Camera image dark: brightness fell to %(n)s%% of the darkest it was learned (%(level)s of 255)")),
    (r"Camera blinded: (?P<n>\d+)% of the image saturated",
     gettext_noop("Camera blinded: %(n)s%% of the image saturated")),
    (r"(?P<end>Camera view no longer covered|Camera view sharp again|Camera view back on its reference|"
     r"Camera image moving again|Camera image no longer dark|Camera no longer blinded) \(lasted (?P<time>.+)\)", ""),
)]
_OFFLINE_TAIL = {
    "back online": gettext_noop("back online after %(s)s s"),
    "camera stopped": gettext_noop("camera stopped after %(s)s s"),
}


def reason_known(text) -> bool:
    """Whether ``text`` is from a template this module translates (the tests hold the worker to them)."""
    return any(pattern.fullmatch(str(text or "")) for pattern, _template in _RULES)


def reason_text(text, terms=None) -> str:
    """One text the worker wrote (a reason, a system event's description) in the reader's language;
    as written when it is from no known template. ``terms``: the event's object terms, to name them."""
    text = str(text or "")
    for pattern, template in _RULES:
        m = pattern.fullmatch(text)
        if m is None:
            continue
        values = m.groupdict()
        if "end" in values:
            return _(_HEALTH_ENDS[values["end"]]) % {"time": _time(values["time"])}
        for key, value in list(values.items()):
            if value is None:
                values[key] = ""
            elif key.startswith("sev"):
                values[key] = severity_name(value)
            elif key == "time":
                values[key] = _time(value)
            elif key == "labels":
                values[key] = _labels(value)
            elif key == "what":
                values[key] = _what(value, terms)
            elif key == "kind":
                values[key] = _(_ZONE_KINDS[value]) if value in _ZONE_KINDS else value
            elif key in ("dropped", "allowed"):
                values[key] = ", ".join(action_name(a.strip()) for a in value.split(","))
        out = _(template) % values
        if values.get("how") in _OFFLINE_TAIL:
            out += " (" + _(_OFFLINE_TAIL[values["how"]]) % {"s": values["s"]} + ")"
        return out
    return text


def event_description(event) -> str:
    """The event's description as a reader should read it: the camera's own events (health, offline), whose
    sentences the worker made, in the reader's language; a model's description as it was written."""
    text = (getattr(event, "description", "") or "").strip()
    decision = getattr(event, "decision", None)
    if getattr(event, "kind", "scene") != "scene" or (isinstance(decision, dict) and decision.get("policy") == "system"):
        return "\n".join(reason_text(line) for line in text.splitlines())
    return text
