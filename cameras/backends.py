"""The inference backends this site knows (settings ``INFERENCE_*``), handed to the inference library.

The web side checks a camera's detector and agent parameters with these; the runtime builds
with them. Importing this module loads no OpenCV or torch: a detector class is imported when
it is resolved.
"""

from django.conf import settings

from inference import registry

SETTINGS = {"detector": "INFERENCE_DETECTORS", "vlm": "INFERENCE_VLM_BACKENDS", "agent": "INFERENCE_AGENTS"}


def backend_names(kind: str) -> dict[str, str]:
    """Name -> dotted path of every ``kind`` backend ("detector", "vlm", "agent") this site knows."""
    return getattr(settings, SETTINGS[kind])


def resolve(kind: str, name: str):
    """The backend class registered under ``name``; ValueError naming the known ones if unknown."""
    return registry.resolve(kind, name, backend_names(kind))


def make_detector(config: dict, pool=None, *, strict_state: bool = False):
    """``inference.registry.make_detector`` with this site's detector names."""
    return registry.make_detector(config, pool, strict_state=strict_state, table=backend_names("detector"))
