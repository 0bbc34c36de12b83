"""Template tags of the dashboard's arming badge and switch (templates/arming/_tile.html, static/js/arming.js).

The dashboard page (events/views.py) lies below arming in the layers (docs/architecture.md): it does not import
arming; its template loads these tags, which read through arming.selectors.
"""

from django import template
from django.conf import settings
from django.utils.translation import gettext

from ..selectors import arming_dashboard, arming_mode_choices, arming_source_labels

register = template.Library()


@register.simple_tag
def arming_states(cameras, user) -> dict:
    """{camera id: its arming for a tile} for the cameras (which the user may view), in a fixed number of queries."""
    return arming_dashboard(user, cameras)


@register.inclusion_tag("arming/_tile.html", takes_context=True)
def arming_tile(context, camera, states):
    return {"camera": camera, "arming": (states or {}).get(camera.pk), "csrf_token": context.get("csrf_token"),
            "refresh_seconds": settings.ARMING_REFRESH_SECONDS}


@register.inclusion_tag("arming/_labels.html")
def arming_labels():
    return {"labels": {"modes": {m["value"]: m["label"] for m in arming_mode_choices()},
                       "sources": arming_source_labels(),
                       "network": gettext("Could not switch the mode: the server did not answer.")}}
