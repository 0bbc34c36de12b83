"""Inference backends by name (like healthchecks' transports): dotted paths to classes.

``BACKENDS`` is the library's own table; a site may pass another (the Django settings
``INFERENCE_DETECTORS``, ``INFERENCE_VLM_BACKENDS``, ``INFERENCE_AGENTS`` start from it, and
``cameras/backends.py`` hands them in). Nothing here imports Django.
"""

import importlib
import json
import logging
from pathlib import Path

from .pool import ResourcePool

log = logging.getLogger(__name__)

BACKENDS: dict[str, dict[str, str]] = {
    "detector": {
        "motion": "inference.detectors.MotionDetector",
        "predict": "inference.learned.PredictionDetector",
        "semantic": "inference.semantic.SemanticDetector",
        "fused": "inference.semantic.FusedDetector",
        "objects": "inference.object_detector.ObjectsDetector",
    },
    "vlm": {
        "none": "inference.vlm.NoVLM",
        "transformers": "inference.vlm.TransformersVLM",
        "openai": "inference.model_servers.OpenAIVLM",
    },
    "agent": {
        "rules": "inference.agent.RulePolicy",
        "llm": "inference.agent.LLMPolicy",
        "openai": "inference.model_servers.OpenAIPolicy",
    },
}


def import_dotted(path: str):
    """The object a dotted path (``package.module.Name``) names."""
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except AttributeError:
        raise ImportError(f"Module '{module}' has no '{name}'") from None


def resolve(kind: str, name: str, table: dict[str, str] | None = None):
    """The backend class registered under ``name`` for ``kind``; ValueError if unknown."""
    registry = BACKENDS[kind] if table is None else table
    try:
        path = registry[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown {kind} backend '{name}'. Known: {', '.join(sorted(registry))}.") from None
    return import_dotted(path)


def make_detector(config: dict, pool=None, *, strict_state: bool = False, table: dict[str, str] | None = None):
    """A fresh detector for one camera (detectors keep per-camera state and are never shared).

    ``table``: the detector names the site knows (default ``BACKENDS["detector"]``). Detector
    classes with ``needs_pool = True`` get ``pool`` (the worker's ResourcePool, or a private one)
    to share their models between cameras. A camera with zones gets its detector wrapped by
    ``inference.zones.ZonedDetector``; a camera with a learned state (``detector_state_path``, a
    JSON file of ``state_dict()``) starts from it; a state that does not load is logged and
    skipped (the camera still runs), or raises with ``strict_state``.
    """
    from .zones import ZonedDetector  # OpenCV: loaded with the first detector, never by a mere import

    params = dict(config.get("detector_params") or {})
    params.setdefault("threshold", config.get("threshold", 0.5))
    cls = resolve("detector", config["detector"], table)
    if getattr(cls, "needs_pool", False):
        params["pool"] = pool if pool is not None else ResourcePool()
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
        detector = ZonedDetector(detector, config["zones"])
    return detector


def load_detector_state(detector, path) -> None:
    """Load a saved ``state_dict()`` (JSON file) into ``detector``; ValueError naming the problem."""
    try:
        state = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"Cannot read the detector state {path}: {exc}") from exc
    detector.load_state_dict(state)
