"""Inference backends by name, from settings (INFERENCE_DETECTORS, _VLM_BACKENDS, _AGENTS)."""

from django.conf import settings
from django.utils.module_loading import import_string

KINDS = {
    "detector": "INFERENCE_DETECTORS",
    "vlm": "INFERENCE_VLM_BACKENDS",
    "agent": "INFERENCE_AGENTS",
}


def resolve(kind: str, name: str):
    """The backend class registered under ``name`` for ``kind``; ValueError if unknown."""
    registry = getattr(settings, KINDS[kind])
    try:
        return import_string(registry[name])
    except KeyError:
        raise ValueError(f"Unknown {kind} backend '{name}'. Known: {', '.join(sorted(registry))}.") from None


def make_detector(config: dict):
    """A fresh detector for one camera (detectors keep per-camera state and are never shared)."""
    params = dict(config.get("detector_params") or {})
    params.setdefault("threshold", config.get("threshold", 0.5))
    return resolve("detector", config["detector"])(**params)
