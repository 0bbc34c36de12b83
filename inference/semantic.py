"""Zero-shot semantic detection with a local CLIP model, alone or fused with the motion detector.

* ``SemanticDetector`` (``"semantic"``): scores colour analysis frames against the camera's own
  text prompts, what is ABNORMAL at this camera ("a person lying on the ground", "fire", ...)
  versus what is NORMAL there ("people walking", "an empty street"). No training: the prompts
  are the camera's definition of normal.
* ``FusedDetector`` (``"fused"``): the motion detector and the semantic detector side by side;
  the frame's score is their maximum (or a weighted mean).
* ``ClipScorer``: the loaded CLIP model (``CLIPModel`` + its tokenizer + the pillow image
  processor, from a local folder, never the network). ONE per worker process, shared by every
  camera through ``ResourcePool.shared("clip", {"model_path", "device"}, ClipScorer)``; image
  embeddings of all cameras go through one ``Batcher``, so concurrent cameras share one forward
  pass (up to 16 images, or whatever arrived within a few ms).

Score (see ``SemanticDetector``): the softmax of the CLIP logits over all the camera's prompts
gives the probability mass on the abnormal prompts, ``m``. It is calibrated for the shipped
threshold 0.5 by removing the prompt-count prior: an image that favours no prompt has
``m = n_abnormal / (n_abnormal + n_normal)``, and that maps to 0.5::

    calibrated = sigmoid(logit(m) - log(n_abnormal / n_normal) - bias)
               = sigmoid(logmeanexp(abnormal logits) - logmeanexp(normal logits) - bias)

so a score above 0.5 means the abnormal prompts are, on average per prompt, more likely than
the normal ones (``bias`` > 0 asks for a clearer margin). The calibrated value is smoothed
causally (exponential, time constant ``smoothing`` seconds of frame time).

No Django imports here: the detectors run the same in the live loop, in ``vad_eval`` and in
benchmarks.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .base import Detector, DetectorResult
from .detectors import MotionDetector
from .pool import Batcher, ResourcePool
from .images import gray, to_pil_rgb
from .modelfiles import check_model_dir, pil_image_processor, read_json, resolve_device, resolve_dtype

# There is no network: never let a load try the hub first.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

logger = logging.getLogger(__name__)

__all__ = ["CLIP_MODEL_TYPES", "ClipScorer", "FusedDetector", "SemanticDetector", "calibrated_score"]

#: ``model_type`` values (config.json) this backend loads with ``CLIPModel``.
CLIP_MODEL_TYPES = ("clip",)


# --------------------------------------------------------------------------- the shared model


def _clip_model_dir(model_path) -> Path:
    """The model folder, or ValueError naming what is wrong with it."""
    try:
        path = check_model_dir(model_path, "semantic detector")
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None
    config = read_json(path / "config.json")
    model_type = config.get("model_type")
    if model_type not in CLIP_MODEL_TYPES:
        raise ValueError(
            f"semantic detector: model_path {str(path)!r} holds a {model_type or 'unknown'!r} model, not a CLIP "
            f"model (config.json model_type must be one of {', '.join(CLIP_MODEL_TYPES)}: a CLIPModel with "
            "text and vision towers, saved with save_pretrained)"
        )
    return path


class ClipScorer:
    """A CLIP model loaded once and shared by the cameras of a worker.

    Config: ``model_path`` (a local folder: config.json, weights, tokenizer and image-processor
    files, as ``save_pretrained`` writes them), ``device`` ("auto": cuda when available),
    optionally ``max_batch`` (16) and ``max_wait`` (0.002 s) for the image batcher.

    ``embed_image`` may be called from many camera threads at once: the images are preprocessed
    on the caller's thread and embedded together, one forward pass per batch, on the batcher's
    thread. Text embeddings are computed once per distinct list of prompts and cached.
    Embeddings are L2-normalised float32 numpy vectors.
    """

    MAX_BATCH = 16
    MAX_WAIT = 0.002

    def __init__(self, config: dict):
        import torch
        from transformers import AutoTokenizer, CLIPModel

        config = dict(config or {})
        self.config = config
        self.model_path = _clip_model_dir(config.get("model_path"))
        self.device = resolve_device(config.get("device", "auto"))
        self.dtype = resolve_dtype("auto", self.device)  # float32 on the CPU, 16-bit on cuda
        path = str(self.model_path)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except Exception as exc:
            raise ValueError(f"semantic detector: cannot load the CLIP tokenizer from {path!r}: {exc}") from exc
        try:
            self.image_processor = pil_image_processor(self.model_path)
        except Exception as exc:
            raise ValueError(f"semantic detector: cannot load the CLIP image processor from {path!r}: {exc}") from exc
        try:
            model = CLIPModel.from_pretrained(path, local_files_only=True, dtype=self.dtype)
        except Exception as exc:
            raise ValueError(f"semantic detector: cannot load the CLIP model from {path!r}: {exc}") from exc
        self.model = model.to(self.device).eval()
        with torch.no_grad():
            # CLIP clamps its learned temperature at 100
            self.logit_scale = float(min(100.0, float(self.model.logit_scale.detach().float().exp())))
        self.max_length = int(getattr(self.model.config.text_config, "max_position_embeddings", 77) or 77)
        self._lock = threading.Lock()  # one forward pass at a time (text and images)
        self._texts: dict[tuple[str, ...], np.ndarray] = {}
        #: image forward passes and images embedded (batches formed by the batcher).
        self.image_calls = 0
        self.images_embedded = 0
        self.batcher = Batcher(
            self._embed_batch,
            max_batch=int(config.get("max_batch", self.MAX_BATCH)),
            max_wait=float(config.get("max_wait", self.MAX_WAIT)),
            name=f"clip:{self.model_path.name}",
        )

    @staticmethod
    def _features(output):
        """``get_*_features`` returns a tensor in older transformers, an output with
        ``pooler_output`` (the projected embedding) in newer ones."""
        return output if not hasattr(output, "pooler_output") else output.pooler_output

    # -- text

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) normalised text embeddings; computed once per list of texts."""
        import torch

        key = tuple(texts)
        cached = self._texts.get(key)
        if cached is not None:
            return cached
        inputs = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="pt")
        with self._lock, torch.inference_mode():
            inputs = {k: v.to(self.device) for k, v in inputs.items() if k in ("input_ids", "attention_mask")}
            features = self._features(self.model.get_text_features(**inputs)).float()
            features = torch.nn.functional.normalize(features, dim=-1).cpu().numpy()
        self._texts[key] = features
        return features

    # -- images

    def preprocess(self, image: np.ndarray):
        """A BGR (or gray) uint8 frame -> pixel tensor (1, 3, H, W), on the caller's thread."""
        pil = to_pil_rgb(image)
        if pil is None:
            raise ValueError(f"semantic detector: not an image (shape {getattr(image, 'shape', None)})")
        return self.image_processor(images=[pil], return_tensors="pt")["pixel_values"]

    def _embed_batch(self, pixels: list) -> list[np.ndarray]:
        import torch

        with self._lock, torch.inference_mode():
            batch = torch.cat(list(pixels), dim=0).to(self.device, dtype=self.dtype)
            features = self._features(self.model.get_image_features(pixel_values=batch)).float()
            features = torch.nn.functional.normalize(features, dim=-1).cpu().numpy()
            self.image_calls += 1
            self.images_embedded += len(pixels)
        return list(features)

    def embed_image(self, image: np.ndarray) -> np.ndarray:
        """The normalised embedding of one frame, batched with the other cameras' frames."""
        return self.batcher(self.preprocess(image))

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        return np.stack(self.batcher.map([self.preprocess(image) for image in images]))

    def stats(self) -> dict:
        return {**self.batcher.stats(), "image_calls": self.image_calls, "images": self.images_embedded,
                "text_sets": len(self._texts), "device": self.device}

    def close(self) -> None:
        self.batcher.close()

    def __repr__(self) -> str:
        return f"<ClipScorer {self.model_path} on {self.device}>"


# --------------------------------------------------------------------------- scoring


def _logmeanexp(values: np.ndarray) -> float:
    top = float(values.max())
    return top + math.log(float(np.mean(np.exp(values - top))))


def calibrated_score(logits: np.ndarray, n_abnormal: int, bias: float = 0.0) -> float:
    """sigmoid(logmeanexp(abnormal logits) - logmeanexp(normal logits) - bias).

    ``logits``: the image's CLIP logits, the ``n_abnormal`` abnormal prompts first. Equal to
    ``sigmoid(logit(m) - log(n_abnormal / n_normal) - bias)`` with ``m`` the softmax mass on the
    abnormal prompts: 0.5 when the image favours no prompt, whatever the number of prompts.
    """
    x = _logmeanexp(logits[:n_abnormal]) - _logmeanexp(logits[n_abnormal:]) - float(bias)
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _prompt_list(value, what: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"semantic detector: '{what}' must be a list of text prompts")
    prompts = [" ".join(str(p).split()) for p in value if isinstance(p, str)]
    if len(prompts) != len(value) or not all(prompts):
        raise ValueError(f"semantic detector: every '{what}' prompt must be a non-empty string")
    if not prompts:
        raise ValueError(f"semantic detector: '{what}' needs at least one prompt")
    return prompts


class SemanticDetector(Detector):
    """Zero-shot: a local CLIP model scores colour frames against the camera's text prompts.

    Parameters:

    ``model_path`` (required)   local folder of a CLIP model (``CLIPModel``, tokenizer, image
                                processor, as ``save_pretrained`` writes them)
    ``device`` ("auto")         "auto" (cuda when available, else cpu), "cpu", "cuda", "cuda:1"
    ``abnormal``                what is abnormal at this camera (:attr:`DEFAULT_ABNORMAL`)
    ``normal``                  what is normal there (:attr:`DEFAULT_NORMAL`)
    ``template`` ("a photo of {}.")  wraps every prompt ("{}" alone: prompts as written)
    ``interval`` (1.0)          run the model at most every this many seconds of frame time;
                                frames in between reuse the last score (live and vad_eval use
                                the frames' timestamps, so they agree)
    ``smoothing`` (2.0)         time constant (s) of the causal exponential smoothing of the
                                calibrated score (0: none)
    ``bias`` (0.0)              logit offset of the calibration: > 0 needs a clearer margin of
                                the abnormal prompts over the normal ones before 0.5
    ``top_k`` (3)               prompts reported in ``details["top"]``
    ``threshold`` (0.5)         the camera threshold (scores are calibrated for 0.5); frames
                                at or above it get the whole frame as their region

    ``score(image, timestamp)`` reads the BGR analysis frame (``wants_color``); a grayscale frame
    is accepted too (replicated to three channels). ``details``: ``top`` (the most probable
    prompts, with softmax probability and whether they are abnormal), ``abnormal_mass`` (the
    softmax mass on the abnormal prompts), ``calibrated`` (before smoothing), ``fresh`` (whether
    the model ran on this frame) and ``age`` (seconds since it last ran).
    """

    name = "semantic"
    wants_color = True
    needs_pool = True

    DEFAULT_ABNORMAL = (
        "a person lying on the ground",
        "fire",
        "smoke",
        "a person climbing a fence",
        "a fight",
        "a vehicle on a footpath",
    )
    DEFAULT_NORMAL = (
        "people walking",
        "an empty street",
        "people standing",
        "a car driving on a road",
    )
    DEFAULTS = {
        "model_path": None,
        "device": "auto",
        "abnormal": list(DEFAULT_ABNORMAL),
        "normal": list(DEFAULT_NORMAL),
        "template": "a photo of {}.",
        "interval": 1.0,
        "smoothing": 2.0,
        "bias": 0.0,
        "top_k": 3,
        "threshold": 0.5,
    }

    def __init__(self, pool=None, **params):
        unknown = set(params) - set(self.DEFAULTS)
        if unknown:
            raise ValueError(
                f"unknown SemanticDetector parameter(s): {', '.join(sorted(unknown))} "
                f"(known: {', '.join(sorted(self.DEFAULTS))})"
            )
        merged = {**self.DEFAULTS, **params}
        if not merged["model_path"]:
            raise ValueError(
                "semantic detector: 'model_path' is required: a local folder holding a CLIP model "
                "saved with save_pretrained (for example CLIP ViT-B/32)"
            )
        merged["abnormal"] = _prompt_list(merged["abnormal"], "abnormal")
        merged["normal"] = _prompt_list(merged["normal"], "normal")
        template = str(merged["template"] or "{}")
        if "{}" not in template:
            raise ValueError("semantic detector: 'template' must contain {} where the prompt goes")
        try:
            self.interval = float(merged["interval"])
            self.smoothing = float(merged["smoothing"])
            self.bias = float(merged["bias"])
            self.threshold = float(merged["threshold"])
            self.top_k = int(merged["top_k"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"semantic detector: interval, smoothing, bias, threshold and top_k are numbers: {exc}") \
                from None
        if self.interval < 0 or self.smoothing < 0:
            raise ValueError("semantic detector: 'interval' and 'smoothing' must not be negative")
        super().__init__(**merged)
        self.prompts = merged["abnormal"] + merged["normal"]
        self.n_abnormal = len(merged["abnormal"])
        self.template = template
        if pool is None:
            pool = ResourcePool()
        self.pool = pool
        model_path = os.path.expanduser(str(merged["model_path"]))
        # An absolute folder normalised (one model per folder); a relative one kept as given, so that a pool
        # with model roots (a worker) refuses it rather than read it relative to wherever the process runs.
        model_path = os.path.abspath(model_path) if os.path.isabs(model_path) else model_path
        device = resolve_device(merged["device"])
        # one model per worker for every camera with the same folder and device
        self.scorer: ClipScorer = pool.shared("clip", {"model_path": model_path, "device": device}, ClipScorer)
        # the camera's prompts, embedded once
        self.text_features = self.scorer.embed_texts([template.format(p) for p in self.prompts])
        self.model_runs = 0
        self.reset()

    def reset(self) -> None:
        """Forget the smoothing and the last model run (a cut in the footage)."""
        self._last_run: float | None = None
        self._smoothed: float | None = None
        self._details: dict = {}

    def logits(self, image: np.ndarray) -> np.ndarray:
        """The image's CLIP logits against the camera's prompts (abnormal first)."""
        embedding = self.scorer.embed_image(image)
        return self.scorer.logit_scale * (self.text_features @ embedding)

    def _run(self, image: np.ndarray, timestamp: float) -> None:
        logits = self.logits(image).astype(np.float64)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        calibrated = calibrated_score(logits, self.n_abnormal, self.bias)
        if self._smoothed is None or self.smoothing <= 0:
            self._smoothed = calibrated
        else:
            alpha = 1.0 - math.exp(-max(0.0, timestamp - self._last_run) / self.smoothing)
            self._smoothed += alpha * (calibrated - self._smoothed)
        order = np.argsort(-probs)[: max(0, self.top_k)]
        self._details = {
            "top": [{"prompt": self.prompts[i], "p": round(float(probs[i]), 4), "abnormal": bool(i < self.n_abnormal)}
                    for i in order],
            "abnormal_mass": round(float(probs[: self.n_abnormal].sum()), 4),
            "calibrated": round(calibrated, 4),
        }
        self._last_run = timestamp
        self.model_runs += 1

    def score(self, image: np.ndarray, timestamp: float) -> DetectorResult:
        t = float(timestamp)
        if self._last_run is not None and t < self._last_run:
            self.reset()  # time went back: a new clip
        fresh = self._last_run is None or t - self._last_run >= self.interval - 1e-6
        if fresh:
            self._run(image, t)
        score = float(self._smoothed)
        regions = []
        if score >= self.threshold:
            h, w = image.shape[:2]
            regions = [(0, 0, int(w), int(h))]
        details = {**self._details, "fresh": fresh, "age": round(t - self._last_run, 3)}
        return DetectorResult(score=score, regions=regions, details=details)


# --------------------------------------------------------------------------- fusion


def _gray_items(item):
    """Colour frames -> grayscale, anywhere in ``item`` (a frame, None, a clip, a tuple)."""
    if isinstance(item, np.ndarray):
        if item.ndim == 4:  # a clip of colour frames
            return [gray(f) for f in item]
        return gray(item)
    if isinstance(item, list):
        return [_gray_items(x) for x in item]
    if isinstance(item, tuple):
        return tuple(_gray_items(x) for x in item)
    return item


def _gray_stream(frames: Iterable):
    for item in frames:
        yield _gray_items(item)


class FusedDetector(Detector):
    """The motion detector and the semantic detector together.

    Parameters:

    ``motion`` ({})            ``MotionDetector`` parameters
    ``semantic`` ({})          ``SemanticDetector`` parameters (``model_path`` required)
    ``mode`` ("max")           "max": the larger score; "weighted": the weighted mean
    ``weights``                {"motion": 0.5, "semantic": 0.5} for "weighted"
    ``threshold`` (0.5)        the camera threshold, passed to both parts

    It reads the colour analysis frame (``wants_color``): the semantic part gets it as is, the
    motion part its grayscale. Both parts are calibrated for 0.5, so their scores are comparable.
    ``fit``/``reset``/``state_dict``/``load_state_dict``/``feedback`` are the motion part's
    (the semantic part learns nothing; ``reset`` resets both). ``details``: ``fired`` (the parts
    at or above the threshold), ``driver`` (the part that set the score), ``mode`` and each
    part's ``score`` and ``details``; ``regions``: the motion part's boxes, or the whole frame
    when only the semantic part fired.
    """

    name = "fused"
    wants_color = True
    needs_pool = True

    MODES = ("max", "weighted")
    DEFAULTS = {"motion": {}, "semantic": {}, "mode": "max", "weights": {"motion": 0.5, "semantic": 0.5},
                "threshold": 0.5}

    def __init__(self, pool=None, **params):
        unknown = set(params) - set(self.DEFAULTS)
        if unknown:
            raise ValueError(
                f"unknown FusedDetector parameter(s): {', '.join(sorted(unknown))} "
                f"(known: {', '.join(sorted(self.DEFAULTS))}; the parts' own parameters go under "
                "'motion' and 'semantic')"
            )
        merged = {**self.DEFAULTS, **params}
        for part in ("motion", "semantic"):
            if not isinstance(merged[part] or {}, dict):
                raise ValueError(f"fused detector: '{part}' must be an object of {part} detector parameters")
        if merged["mode"] not in self.MODES:
            raise ValueError(f"fused detector: mode {merged['mode']!r} is not one of {', '.join(self.MODES)}")
        weights = {**self.DEFAULTS["weights"], **(merged["weights"] or {})}
        if set(weights) != {"motion", "semantic"}:
            raise ValueError("fused detector: 'weights' has keys 'motion' and 'semantic' only")
        try:
            weights = {k: float(v) for k, v in weights.items()}
        except (TypeError, ValueError):
            raise ValueError("fused detector: 'weights' must be numbers") from None
        if min(weights.values()) < 0 or sum(weights.values()) <= 0:
            raise ValueError("fused detector: 'weights' must be non-negative and not all zero")
        merged["weights"] = weights
        super().__init__(**merged)
        self.mode = merged["mode"]
        self.weights = weights
        self.threshold = float(merged["threshold"])
        self.motion = MotionDetector(**{"threshold": self.threshold, **(merged["motion"] or {})})
        self.semantic = SemanticDetector(pool=pool, **{"threshold": self.threshold, **(merged["semantic"] or {})})

    def score(self, image: np.ndarray, timestamp: float) -> DetectorResult:
        m = self.motion.score(gray(image), timestamp)
        s = self.semantic.score(image, timestamp)
        if self.mode == "max":
            score = max(m.score, s.score)
            driver = "motion" if m.score >= s.score else "semantic"
        else:
            wm, ws = self.weights["motion"], self.weights["semantic"]
            score = (wm * m.score + ws * s.score) / (wm + ws)
            driver = "motion" if wm * m.score >= ws * s.score else "semantic"
        fired = [name for name, r in (("motion", m), ("semantic", s)) if r.score >= self.threshold]
        if "motion" in fired or "semantic" not in fired:
            regions = list(m.regions)
        else:
            regions = list(s.regions)
        details = {
            "mode": self.mode,
            "fired": fired,
            "driver": driver,
            "motion": {"score": round(float(m.score), 4), "details": m.details},
            "semantic": {"score": round(float(s.score), 4), "details": s.details},
        }
        return DetectorResult(score=float(score), regions=regions, details=details)

    # -- delegated to the motion part

    def fit(self, frames: Iterable, fps: float = 10.0, **kwargs) -> "FusedDetector":
        """Learn normal motion from known-normal footage (colour or gray frames, None between clips)."""
        self.motion.fit(_gray_stream(frames), fps=fps, **kwargs)
        self.semantic.reset()
        return self

    def reset(self) -> None:
        self.motion.reset()
        self.semantic.reset()

    def state_dict(self) -> dict:
        return self.motion.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.motion.load_state_dict(state)

    @property
    def feedback(self):
        """The motion part's ``feedback`` (colour frames converted); absent when it has none."""
        fn = getattr(self.motion, "feedback", None)
        if fn is None:
            raise AttributeError("the motion part of the fused detector has no feedback()")

        def feedback(frames, fps: float = 10.0, **kwargs):
            if not isinstance(frames, (list, tuple, np.ndarray)) and frames is not None:
                frames = _gray_stream(frames)
            else:
                frames = _gray_items(frames)
            return fn(frames, fps=fps, **kwargs)

        return feedback
