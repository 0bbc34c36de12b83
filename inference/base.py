"""Small interfaces every inference backend implements.

Backends are chosen by name in settings (``INFERENCE_*`` registries), the way
healthchecks chooses its transports. Nothing here imports Django, so the
backends run the same in the live loop, in ``vad_eval`` and in benchmarks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

#: The levels a VLM answer and an agent decision speak, lowest first. The product's event severities
#: (events/severity.py) are the same four words; the runtime stores a decision's level as the event's.
THREAT_LEVELS = ("low", "medium", "high", "critical")


class SourceError(Exception):
    """A frame source cannot be opened or read. The message names the cause."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame. ``image`` is BGR uint8 at the source's resolution."""

    image: np.ndarray
    #: Live sources: wall-clock capture time (unix seconds). Finite sources (files,
    #: the demo renderer): media time, index / native fps, from 0 at open.
    timestamp: float
    index: int
    #: The objects followed when the frame was read (inference.e2e: the latest analysed frame's), with
    #: boxes as fractions of the frame; the live view draws them.
    objects: tuple = ()


class FrameSource(ABC):
    """Where a camera's frames come from (file, stream, device, demo renderer)."""

    #: True when ``read()`` blocks until the next frame arrives (a live stream);
    #: False when frames are available at once (file, demo) and the caller paces.
    is_live: bool = True

    def __init__(self, url: str):
        self.url = url

    @property
    def native_fps(self) -> float | None:
        return None

    @abstractmethod
    def open(self) -> None:
        """Open the source; raise SourceError naming the cause on failure."""

    @abstractmethod
    def read(self) -> Frame | None:
        """The next frame; None at the end of a finite source; SourceError on failure."""

    def skip(self, n: int) -> None:
        """Drop the next ``n`` frames as cheaply as the source allows (no decode if possible)."""
        for _ in range(n):
            if self.read() is None:
                return

    def close(self) -> None:  # pragma: no cover - default does nothing
        pass

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass
class DetectorResult:
    score: float  # anomaly score, comparable with the camera's threshold
    regions: list[tuple[int, int, int, int]] = field(default_factory=list)  # x, y, w, h
    details: dict = field(default_factory=dict)


class Detector(ABC):
    """Scores frames of ONE camera. Instances keep per-camera state; never shared.

    Optional, by duck typing: ``fit(frames)`` learns normal from known-normal footage
    (``frames`` yields analysis frames, and None between separate clips); ``reset()`` forgets
    the frame-to-frame chain (a cut in the footage); ``feedback(frames)`` learns that an
    operator's false alarm was normal, strongly enough that the same situation stops firing.
    """

    name: str = ""
    #: True: ``score`` gets the downscaled BGR frame instead of its grayscale.
    wants_color: bool = False
    #: True: the constructor takes ``pool`` (a ResourcePool) to share models between cameras.
    needs_pool: bool = False

    def __init__(self, **params):
        self.params = params

    @abstractmethod
    def score(self, gray: np.ndarray, timestamp: float) -> DetectorResult:
        """Score one analysis frame: grayscale uint8, already downscaled."""

    def state_dict(self) -> dict:
        """What the detector learned, JSON-serialisable, to persist per camera."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


@dataclass
class VLMAnswer:
    summary: str
    threat_level: str | None = None  # one of THREAT_LEVELS when the model says so
    objects: list[str] = field(default_factory=list)
    raw: str = ""


class VLMBackend(ABC):
    """Describes a key frame. Loaded once per worker and shared between cameras."""

    name: str = ""
    #: How many images one call to describe_batch may take at most.
    max_batch: int = 1

    def __init__(self, **config):
        self.config = config

    def describe(self, image: np.ndarray, prompt: str) -> VLMAnswer | None:
        return self.describe_batch([image], [prompt])[0]

    @abstractmethod
    def describe_batch(self, images: list[np.ndarray], prompts: list[str]) -> list[VLMAnswer | None]:
        """One answer per image (BGR uint8), in order."""


@dataclass
class Decision:
    severity: str
    actions: list[str]
    reasons: list[str]
    policy: str
    #: What the policy decided from (the trace an operator reads): scores, duration, the description,
    #: zones and objects. Filled by ``inference.agent.decision_inputs``.
    inputs: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = {
            "severity": self.severity,
            "actions": list(self.actions),
            "reasons": list(self.reasons),
            "policy": self.policy,
        }
        if self.inputs:
            out["inputs"] = dict(self.inputs)
        return out


@dataclass
class EpisodeSummary:
    """What the agent sees of an anomaly episode."""

    peak_score: float
    mean_score: float
    duration: float  # seconds
    threshold: float
    answer: VLMAnswer | None = None
    details: dict = field(default_factory=dict)


class AgentPolicy(ABC):
    name: str = ""

    def __init__(self, **params):
        self.params = params

    @abstractmethod
    def decide(self, episode: EpisodeSummary) -> Decision:
        """Severity and actions for an episode, with the reasons."""
