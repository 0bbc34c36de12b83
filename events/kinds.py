"""What an event is about: the scene (an anomaly) or the camera itself. The vocabulary events, their
filters and alert rules share.

The worker records the camera's own events with ``details.kind``: ``camera_health`` (covered, blurred,
moved, frozen, dark, blinded: inference/camera_health.py) and ``camera_offline``. Anything else
(no ``details.kind``, or another one) is about the scene.
"""

from django.utils.translation import gettext_noop

#: ``?kind=`` values and alert rule kinds, with their labels (marked for translation, translated where shown).
EVENT_KINDS = {
    "scene": gettext_noop("Scene anomalies"),
    "camera_health": gettext_noop("Camera health (tamper)"),
    "camera_offline": gettext_noop("Camera offline"),
}
#: The kinds about the camera itself (stored as ``details.kind``).
CAMERA_KINDS = ("camera_health", "camera_offline")


def event_kind(details) -> str:
    """The kind of an event from its ``details``: one of EVENT_KINDS."""
    kind = details.get("kind") if isinstance(details, dict) else None
    return kind if kind in CAMERA_KINDS else "scene"

#: The conditions of a ``camera_health`` event (``details.condition``), with their labels.
HEALTH_CONDITIONS = {
    "covered": gettext_noop("Covered"),
    "blurred": gettext_noop("Blurred"),
    "moved": gettext_noop("Moved"),
    "frozen": gettext_noop("Frozen"),
    "dark": gettext_noop("Dark"),
    "blinded": gettext_noop("Blinded"),
}
