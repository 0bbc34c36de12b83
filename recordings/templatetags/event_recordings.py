"""The event page's "Recording" panel reads the camera's recording through this tag: events (below recordings in
the layers, docs/architecture.md) may not import recordings; its template names the tag instead."""

from django import template

from recordings.selectors import event_recording as _event_recording

register = template.Library()


@register.simple_tag
def event_recording(event):
    """The window of the camera's recording around ``event`` (recordings.selectors.event_recording), or None."""
    return _event_recording(event)
