"""An event in one sentence, from what the objects detector saw, in the reader's language.

Used where an event has no description of a vision-language model: the pages and the alert
messages (``AnomalyEvent.sentence``). Built at reading time from the event's stored details (the
strongest object term, the labels), so each reader gets it in their own language.
"""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.utils.translation import ngettext

#: The labels the catalogue translates (makemessages reads them from the gettext_noop calls).
_LABEL_NAMES = (
    gettext_noop("person"),
    gettext_noop("bicycle"),
    gettext_noop("car"),
    gettext_noop("motorcycle"),
    gettext_noop("bus"),
    gettext_noop("truck"),
    gettext_noop("dog"),
    gettext_noop("cat"),
    gettext_noop("horse"),
    gettext_noop("backpack"),
    gettext_noop("handbag"),
    gettext_noop("suitcase"),
    gettext_noop("skateboard"),
)


def label_name(label: str) -> str:
    """An object label in the active language (labels the catalogue does not know stay as they are)."""
    return _(label) if label in _LABEL_NAMES else label


def _number(value) -> str:
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "?"


def event_sentence(details) -> str:
    """One sentence about what was seen, or "" when the event has no objects to speak of."""
    details = details if isinstance(details, dict) else {}
    terms = [t for t in details.get("object_terms") or [] if isinstance(t, dict) and t.get("label")]
    objects = [o for o in details.get("objects") or [] if isinstance(o, dict) and o.get("label")]
    if terms:
        top = terms[0]
        label, numbers = label_name(str(top["label"])), top.get("numbers") or {}
        kind = top.get("term")
        if kind == "rare_class":
            text = _("A %(label)s where this camera rarely sees one (%(seen)s in %(frames)s learned frames).") % {
                "label": label, "seen": _number(numbers.get("seen")), "frames": _number(numbers.get("frames"))}
        elif kind == "speed":
            text = _("A %(label)s at %(ratio)s times the usual speed here.") % {
                "label": label, "ratio": f"{float(numbers.get('ratio') or 0):.1f}"}
        elif kind == "person_down":
            text = _("A person down and not moving.")
        elif kind == "left_behind":
            text = _("A %(label)s left behind.") % {"label": label}
        elif kind == "dwell":
            text = _("A %(label)s staying much longer than usual.") % {"label": label}
        elif kind == "shape":
            text = _("A %(label)s %(ratio)s times as wide for its height as usual here (sitting, lying, in a "
                     "wheelchair or beside a bicycle?).") % {"label": label,
                                                             "ratio": f"{float(numbers.get('ratio') or 0):.1f}"}
        else:
            text = _("A %(label)s behaving unusually.") % {"label": label}
        others = sum(1 for o in objects if o["label"] == "person" and o.get("track") != top.get("track"))
        if others:
            text += " " + ngettext("%(n)d person nearby.", "%(n)d people nearby.", others) % {"n": others}
        return text
    labels = sorted({str(o["label"]) for o in objects})
    if labels:
        return _("Unusual motion; in view: %(labels)s.") % {"labels": ", ".join(label_name(x) for x in labels)}
    return ""
