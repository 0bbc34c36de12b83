"""Inference backends by name, from settings (INFERENCE_DETECTORS, _VLM_BACKENDS, _AGENTS)."""

import logging

from django.conf import settings
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)

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


def make_detector(config: dict, pool=None, *, strict_state: bool = False):
    """A fresh detector for one camera (detectors keep per-camera state and are never shared).

    Detector classes with ``needs_pool = True`` get ``pool`` (the worker's ResourcePool, or a
    private one) to share their models between cameras. A camera with zones gets its
    detector wrapped by ``inference.zones.ZonedDetector``; a camera with a learned state
    (``detector_state_path``, a JSON file of ``state_dict()``) starts from it; a state that does
    not load is logged and skipped (the camera still runs), or raises with ``strict_state``.
    """
    params = dict(config.get("detector_params") or {})
    params.setdefault("threshold", config.get("threshold", 0.5))
    cls = resolve("detector", config["detector"])
    if getattr(cls, "needs_pool", False):
        if pool is None:
            from .pool import ResourcePool

            pool = ResourcePool()
        params["pool"] = pool
    detector = cls(**params)
    state_path = config.get("detector_state_path")
    if state_path:
        try:
            load_detector_state(detector, state_path)
        except ValueError as exc:
            if strict_state:
                raise
            # e.g. the camera's detector parameters changed since the state was learned: the camera
            # still runs, starting from what the parameters give, and says so in the log.
            log.warning("Camera %s starts unlearned: %s", config.get("id"), exc)
    if config.get("zones"):
        from .zones import ZonedDetector

        detector = ZonedDetector(detector, config["zones"])
    return detector


def load_detector_state(detector, path) -> None:
    """Load a saved ``state_dict()`` (JSON file) into ``detector``; ValueError naming the problem."""
    import json
    from pathlib import Path

    try:
        state = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"Cannot read the detector state {path}: {exc}") from exc
    detector.load_state_dict(state)
