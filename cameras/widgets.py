"""The zone editor (static/js/zones.js) as the admin's widget for a camera's ``zones``, and what the camera
page's editor shares with it (templates/cameras/_zone_editor.html)."""

import json

from django import forms
from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _

#: The zone kinds as the editor names them (inference/zone_specs.py KINDS).
KIND_LABELS = {"ignore": _("Ignore"), "forbidden": _("Forbidden"), "loiter": _("Loiter"), "line": _("Line")}


def kind_labels_json() -> str:
    return json.dumps({kind: str(label) for kind, label in KIND_LABELS.items()})


def zones_json(zones) -> str:
    """The zones as readable JSON, one zone a line (as the editor writes them)."""
    if not isinstance(zones, list) or not zones:
        return json.dumps(zones if zones is not None else [])
    return "[\n" + ",\n".join("  " + json.dumps(zone, ensure_ascii=False) for zone in zones) + "\n]"


class ZonesWidget(forms.Textarea):
    """The camera's latest picture with the zones drawn over it, editable with the mouse, around the JSON
    textarea (still the form's value: readable, editable by hand, and what is posted). ``picture_url``: the
    camera's ``GET /api/v1/cameras/{id}/picture/`` (none for a camera not created yet)."""

    template_name = "django/forms/widgets/textarea.html"

    class Media:
        js = ("js/zones.js",)
        css = {"all": ("css/zones.css",)}

    def __init__(self, attrs=None, picture_url: str = ""):
        super().__init__({"rows": 8, "cols": 90, "class": "vLargeTextField zone-json-text", **(attrs or {})})
        self.picture_url = picture_url

    def format_value(self, value):
        try:
            parsed = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            return value  # what was typed, as it was: the form says what is wrong with it
        return zones_json(parsed)

    def render(self, name, value, attrs=None, renderer=None):
        textarea = super().render(name, value, attrs, renderer)
        return render_to_string("cameras/_zone_editor.html", {
            "textarea": textarea, "picture_url": self.picture_url, "kind_labels": kind_labels_json(),
            "json_open": True,
        })
