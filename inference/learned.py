"""A learned anomaly detector: per-camera motion-from-appearance prediction in torch.

:class:`PredictionDetector` (``"predict"``) trains a small network on ONE camera's normal
footage. For every analysis frame the network sees the frame's appearance (its grayscale at a
reduced resolution, plus two channels of x/y image coordinates) and predicts the motion that
is normal there: per pixel, how fast things that look like this, at this place, usually move
horizontally and vertically. The truth is measured with dense optical flow (OpenCV DIS, as in
:mod:`inference.detectors`) between the previous analysis frame and this one.

Why this rather than predicting the next frame's pixels: a small future-frame U-Net that fits
the CPU budget (see ``docs/detection.md``) scored no better than the plain frame difference on
UCSD Ped1 (frame AUC 0.74), while this motion-from-appearance model (the idea of Nguyen &
Meunier, "Anomaly Detection in Video Sequence with Appearance-Motion Correspondence", ICCV
2019, made small) reached 0.84 with the same training time. Pedestrians look like pedestrians
and move at walking speed where people walk; a cyclist, a skater, a cart or a car moves
faster than what its appearance and place predict, and anything moving where nothing ever
moves is unexpected too.

Per frame:

* target: ``log1p(speed / 2 %-of-frame-width per second)`` of ``|u|`` and ``|v|``, averaged over
  the network's output pixels (half the input resolution); speeds are per second, so scores
  barely depend on the analysis fps;
* residual: how much FASTER the motion is than predicted (the positive part, summed over the two
  axes); standing still where people usually walk is not an anomaly;
* per grid cell (``cell_size`` output pixels): the mean residual, calibrated against the
  residuals the trained model leaves on held-out normal footage of the camera:
  ``z = (r - mean) / (sd + floor * global mean)``; the floor keeps quiet cells (grass, walls)
  from alarming on flow noise;
* each cell's z is smoothed causally (time constant ``smoothing`` seconds); the frame's raw
  score is the mean of the ``top_cells`` strongest cells, mapped by a logistic curve so that
  ``raw == z_threshold`` gives 0.5, the camera's default threshold. ``z_threshold`` is learned:
  the ``calib_quantile`` of the held-out normal frames' raw scores (smoothed the same way),
  raised by ``1 + 1/sqrt(held-out runs)`` when little footage was held out.

Learning (:meth:`PredictionDetector.fit`): frames (and None between clips) are turned into
(appearance, motion) samples; every fifth chunk of ``CHUNK`` samples is held out for
calibration; the network is trained with Adam and a cosine learning rate until
``max_train_seconds`` or ``max_epochs``; then the calibration statistics are computed on the
held-out samples (so a camera that learned from two minutes of footage is not judged by errors
it memorised). :meth:`~PredictionDetector.feedback` fine-tunes on an operator's false alarm
(mixed with a small replay of normal samples kept in the state) and raises the calibration of
the cells that fired, so the same situation stops firing while other cells stay as sensitive.

Inference is batched ACROSS CAMERAS: every camera has its own weights, but the detectors of a
worker submit to one :class:`PredictRunner` (``pool.shared("predict-runner", ...)``), which
gathers up to ``max_batch`` requests arriving within a few milliseconds and runs one forward
pass for all those whose networks have the same shapes (``torch.func.stack_module_state`` +
``torch.vmap`` over ``functional_call``).
"""

from __future__ import annotations

import base64
import io
import logging
import math
import os
import threading
import time
import weakref
from typing import Iterable

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import Detector, DetectorResult
from .modelfiles import resolve_device
from .pool import Batcher

log = logging.getLogger(__name__)

__all__ = ["MotionPredictor", "PredictRunner", "PredictionDetector", "STATE_VERSION"]

STATE_VERSION = 1
#: Speeds are measured in percent of the frame width per second and divided by this unit
#: before ``log1p`` (walkers in the UCSD scenes move at about 2 to 5 %/s).
SPEED_UNIT = 2.0
#: Held-out calibration data is taken in chunks of this many consecutive samples (adjacent
#: frames are near duplicates: holding out single frames would not test generalisation).
CHUNK = 20
#: One chunk in HOLDOUT_EVERY is held out for calibration (when there are at least 2 chunks).
HOLDOUT_EVERY = 5


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return image


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.1),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.1))


class MotionPredictor(nn.Module):
    """A small U-Net: (gray, x, y) at H x W -> expected (|u|, |v|) motion at H/2 x W/2.

    Three encoder levels (``channels``, 2x, 4x), one decoder level with a skip connection; no
    normalisation layers, so a batch of one camera and a vmapped batch of many give the same
    numbers. About 25k parameters at ``channels=8``.
    """

    def __init__(self, channels: int = 8):
        super().__init__()
        c = int(channels)
        self.channels = c
        self.enc1 = _block(3, c)
        self.enc2 = _block(c, 2 * c)
        self.enc3 = _block(2 * c, 4 * c)
        self.dec2 = _block(6 * c, 2 * c)
        self.out = nn.Conv2d(2 * c, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.enc1(x)
        b = self.enc2(F.avg_pool2d(a, 2))
        c = self.enc3(F.avg_pool2d(b, 2))
        d = self.dec2(torch.cat([F.interpolate(c, scale_factor=2.0, mode="nearest"), b], 1))
        return self.out(d)


def _signature(model: nn.Module, x: torch.Tensor) -> tuple:
    """Requests with equal signatures can share one vmapped forward pass."""
    return (type(model), tuple((k, tuple(v.shape), v.dtype) for k, v in model.state_dict().items()),
            tuple(x.shape))


# ------------------------------------------------------------------------------------------------
# the shared, batching runner
# ------------------------------------------------------------------------------------------------
class PredictRunner:
    """Runs the networks of many cameras, one forward pass per group of equal shapes.

    One per worker and device (``pool.shared("predict-runner", {"device": ...}, PredictRunner)``).
    :meth:`predict` is called from each camera's thread; a :class:`~inference.pool.Batcher`
    gathers up to ``max_batch`` requests that arrive within ``max_wait`` seconds of the first.
    While at most one detector is attached, requests run at once in the caller's thread (no
    waiting for company that cannot come).
    """

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        self.device = torch.device(resolve_device(config.get("device", "auto")))
        self.max_batch = max(1, int(config.get("max_batch", 16)))
        self.max_wait = float(config.get("max_wait", 0.004))
        self.batcher = Batcher(self._run_batch, max_batch=self.max_batch, max_wait=self.max_wait,
                               name=f"predict-runner:{self.device}")
        self._clients: weakref.WeakSet = weakref.WeakSet()
        self._lock = threading.Lock()
        #: None: batch when more than one detector is attached; True / False: always / never
        self.batching: bool | None = None
        #: forward passes run, requests served, the largest group run in one pass
        self.forward_passes = 0
        self.requests = 0
        self.largest_group = 0

    def attach(self, detector) -> None:
        with self._lock:
            self._clients.add(detector)

    def detach(self, detector) -> None:
        with self._lock:
            self._clients.discard(detector)

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def predict(self, model: nn.Module, x: torch.Tensor, *, batch: bool | None = None) -> np.ndarray:
        """The network's output for one input ``x`` (C, H, W), as a float32 numpy array.

        ``batch`` True goes through the batcher, False runs at once in this thread; None (the
        default) follows :attr:`batching`, whose None batches when more than one detector is
        attached.
        """
        if batch is None:
            batch = self.clients > 1 if self.batching is None else self.batching
        if batch and not self.batcher.closed:
            return self.batcher((model, x))
        return self._run_batch([(model, x)])[0]

    @torch.no_grad()
    def _run_batch(self, items: list) -> list:
        groups: dict[tuple, list[int]] = {}
        for i, (model, x) in enumerate(items):
            groups.setdefault(_signature(model, x), []).append(i)
        out: list = [None] * len(items)
        for idxs in groups.values():
            models = [items[i][0] for i in idxs]
            x = torch.stack([items[i][1] for i in idxs]).to(self.device, torch.float32)
            if len(idxs) == 1:
                y = models[0](x)
            else:
                params, buffers = torch.func.stack_module_state(models)
                base = models[0]

                def one(p, b, xi):
                    return torch.func.functional_call(base, (p, b), (xi.unsqueeze(0),)).squeeze(0)

                y = torch.vmap(one)(params, buffers, x)
            y = y.float().cpu().numpy()
            for j, i in enumerate(idxs):
                out[i] = y[j]
            with self._lock:
                self.forward_passes += 1
                self.requests += len(idxs)
                self.largest_group = max(self.largest_group, len(idxs))
        return out

    def stats(self) -> dict:
        with self._lock:
            return {"device": str(self.device), "clients": len(self._clients), "forward_passes": self.forward_passes,
                    "requests": self.requests, "largest_group": self.largest_group, "batcher": self.batcher.stats()}

    def close(self) -> None:
        self.batcher.close()

    def __repr__(self) -> str:
        return f"<PredictRunner {self.device}>"


# ------------------------------------------------------------------------------------------------
# serialisation helpers
# ------------------------------------------------------------------------------------------------
def _b64_torch(obj) -> str:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _b64_npz(**arrays) -> str:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _decode(text, what: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError(f"state {what} must be a base64 string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"state {what} is not valid base64: {exc}") from exc


# ------------------------------------------------------------------------------------------------
# the detector
# ------------------------------------------------------------------------------------------------
class PredictionDetector(Detector):
    """Learns per camera which motion each place and appearance has, and scores faster motion.

    Parameters (all optional, ``PredictionDetector(pool=..., **params)``; :attr:`DEFAULTS`):

    ``device`` ("auto")          torch device: "auto" (cuda when available, else cpu), "cpu", "cuda:0"
    ``threshold`` (0.5)          the camera threshold the scores are calibrated for
    ``input_width`` (128)        network input width; height keeps the frame's aspect (multiple of 4)
    ``channels`` (8)             width of the network's first level (2x and 4x below it)
    ``cell_size`` (8)            grid cell side in network output pixels (128 wide -> 8 columns)
    ``flow_width`` (360)         width of the working image for optical flow (at most 2x upscale)
    ``top_cells`` (3)            the raw score is the mean of this many strongest cells
    ``smoothing`` (0.3)          time constant (s) of each cell's causal smoothing
    ``floor`` (2.0)              z denominator floor, in units of the mean calibration residual
    ``calib_quantile`` (0.99)    quantile of held-out normal frames' raw scores that maps to 0.5
    ``z_scale`` (0.25)           logistic slope, as a fraction of that learned threshold
    ``max_train_seconds`` (420)  wall-clock budget of one fit's optimisation
    ``max_epochs`` (40)          at most this many passes over the training samples
    ``batch_size`` (16)          training minibatch
    ``learning_rate`` (0.003)    Adam learning rate (cosine decay over the budget)
    ``quantile`` (0.5)           the quantile of normal motion the network predicts (0.5: the
                                 median, an L1 loss; higher: only faster-than-usual counts)
    ``max_train_frames`` (20000) samples kept for training (beyond: every other one, and so on)
    ``train_threads`` (1)        torch threads while training (0: all cores), restored after; small convolutions
                                 gain little from a second thread (measured: slower on 2 cores)
    ``feedback_steps`` (30)      fine-tuning steps per feedback
    ``feedback_lr`` (0.001)      their learning rate
    ``feedback_margin`` (0.8)    fed-back frames end at most this fraction of the threshold
    ``replay_samples`` (32)      normal samples kept in the state to mix into feedback
    ``max_gap`` (2.0)            seconds between frames beyond which the motion chain restarts
    ``max_regions`` (4)          regions returned at most
    ``seed`` (0)                 seed of initialisation and sampling (fits are repeatable)
    ``max_batch`` (16), ``max_wait`` (0.004)  the shared runner's batch size and wait

    Results: ``score`` in [0, 1] (0 with ``details["untrained"]`` before any fit); ``regions``
    boxes (x, y, w, h, analysis-frame pixels) around the cells that drive the score; ``details``
    with ``raw``, ``z_threshold`` and ``top_cells`` (cell, box, z, residual, observed and
    expected speed in % of the frame width per second).
    """

    name = "predict"
    needs_pool = True

    DEFAULTS = {
        "device": "auto",
        "threshold": 0.5,
        "input_width": 128,
        "channels": 8,
        "cell_size": 8,
        "flow_width": 360,
        "top_cells": 3,
        "smoothing": 0.3,
        "floor": 2.0,
        "calib_quantile": 0.99,
        "z_scale": 0.25,
        "max_train_seconds": 420.0,
        "max_epochs": 40,
        "batch_size": 16,
        "learning_rate": 0.003,
        "quantile": 0.5,
        "max_train_frames": 20000,
        "train_threads": 1,
        "feedback_steps": 30,
        "feedback_lr": 0.001,
        "feedback_margin": 0.8,
        "replay_samples": 32,
        "max_gap": 2.0,
        "max_regions": 4,
        "seed": 0,
        "max_batch": 16,
        "max_wait": 0.004,
    }

    def __init__(self, pool=None, **params):
        unknown = set(params) - set(self.DEFAULTS)
        if unknown:
            raise ValueError(f"unknown PredictionDetector parameter(s): {', '.join(sorted(unknown))}")
        merged = {**self.DEFAULTS, **params}
        for key in ("input_width", "channels", "cell_size", "top_cells", "batch_size", "max_epochs",
                    "max_train_frames", "feedback_steps", "flow_width"):
            if int(merged[key]) < 1:
                raise ValueError(f"{key} must be a positive integer")
        if int(merged["input_width"]) < 16:
            raise ValueError("input_width must be at least 16 pixels")
        if not 0.0 < float(merged["quantile"]) < 1.0:
            raise ValueError("quantile must be between 0 and 1")
        if not 0.5 <= float(merged["calib_quantile"]) <= 1.0:
            raise ValueError("calib_quantile must be between 0.5 and 1")
        super().__init__(**merged)
        p = self.params
        self.device = torch.device(resolve_device(p["device"]))
        self.threshold = float(p["threshold"])
        runner_config = {"device": str(self.device), "max_batch": int(p["max_batch"]), "max_wait": float(p["max_wait"])}
        if pool is not None:
            self.runner: PredictRunner = pool.shared("predict-runner", runner_config, PredictRunner)
        else:  # used alone (scripts, some tests): a private runner
            self.runner = PredictRunner(runner_config)
        self.runner.attach(self)
        self._flow = None
        self._model: MotionPredictor | None = None
        self._calib: dict | None = None
        self._replay: tuple[np.ndarray, np.ndarray] | None = None
        self.input_size: tuple[int, int] | None = None  # network input (W, H)
        self.grid: tuple[int, int] | None = None  # cells (columns, rows)
        self.info: dict = {}  # what the last fit / feedback did (fps, frames, seconds, epochs)
        self.reset()

    # --------------------------------------------------------------------------------------------
    # geometry and per-frame features
    # --------------------------------------------------------------------------------------------
    @property
    def trained(self) -> bool:
        return self._model is not None and self._calib is not None

    def _geometry_for(self, shape: tuple[int, int]) -> tuple[int, int]:
        h, w = int(shape[0]), int(shape[1])
        width = int(self.params["input_width"])
        height = max(8, int(round(width * h / float(w) / 4.0)) * 4)
        return width, height

    def _set_geometry(self, input_size: tuple[int, int], cell_size: int) -> None:
        self.input_size = (int(input_size[0]), int(input_size[1]))
        ow, oh = self.input_size[0] // 2, self.input_size[1] // 2
        self.cell_size = int(cell_size)
        self.grid = (max(1, int(round(ow / self.cell_size))), max(1, int(round(oh / self.cell_size))))
        w, h = self.input_size
        yy, xx = np.meshgrid(np.linspace(-1, 1, h, dtype=np.float32), np.linspace(-1, 1, w, dtype=np.float32),
                             indexing="ij")
        self._coords = np.stack([xx, yy])

    def _prepare(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(network-size uint8 image, blurred flow working image) of one analysis frame."""
        h, w = gray.shape
        small = cv2.resize(gray, self.input_size, interpolation=cv2.INTER_AREA)
        scale = min(2.0, float(self.params["flow_width"]) / w)
        fw, fh = max(8, int(round(w * scale))), max(8, int(round(h * scale)))
        work = gray if (fw, fh) == (w, h) else cv2.resize(
            gray, (fw, fh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        work = cv2.GaussianBlur(work, (5, 5), 1.0)
        return small, work

    def _motion(self, prev: np.ndarray, work: np.ndarray, dt: float) -> np.ndarray:
        """Target (2, H/2, W/2): log1p of |u|, |v| in SPEED_UNITs (% of frame width per second)."""
        if self._flow is None:
            self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        flow = np.abs(self._flow.calc(prev, work, None))
        ow, oh = self.input_size[0] // 2, self.input_size[1] // 2
        pooled = cv2.resize(flow, (ow, oh), interpolation=cv2.INTER_AREA)  # (oh, ow, 2), working px/frame
        pct_per_s = pooled * (100.0 / (work.shape[1] * max(dt, 1e-3)))
        return np.log1p(pct_per_s / SPEED_UNIT).transpose(2, 0, 1).astype(np.float32)

    def _input(self, small: np.ndarray) -> torch.Tensor:
        image = small.astype(np.float32) * (2.0 / 255.0) - 1.0
        return torch.from_numpy(np.concatenate([image[None], self._coords]))

    def _inputs(self, smalls: np.ndarray) -> torch.Tensor:
        image = torch.from_numpy(smalls).float().mul_(2.0 / 255.0).sub_(1.0).unsqueeze(1)
        coords = torch.from_numpy(self._coords).expand(len(smalls), 2, *self._coords.shape[1:])
        return torch.cat([image, coords], 1)

    def _cells(self, residual: np.ndarray) -> np.ndarray:
        """(..., 2, oh, ow) signed residuals -> (..., rows, cols) mean positive residual per cell."""
        pos = np.maximum(residual, 0.0).sum(axis=-3).astype(np.float32)
        gw, gh = self.grid
        if pos.ndim == 2:
            return cv2.resize(pos, (gw, gh), interpolation=cv2.INTER_AREA).astype(np.float64)
        return np.stack([cv2.resize(p, (gw, gh), interpolation=cv2.INTER_AREA) for p in pos]).astype(np.float64)

    def _z(self, cells: np.ndarray) -> np.ndarray:
        c = self._calib
        return (cells - c["mean"]) / (c["sd"] + float(self.params["floor"]) * c["scale"])

    def _raw(self, z: np.ndarray) -> np.ndarray:
        """Mean of the ``top_cells`` largest cells of each (rows, cols) map in ``z``."""
        top = min(int(self.params["top_cells"]), z.shape[-1] * z.shape[-2])
        flat = np.sort(z.reshape(*z.shape[:-2], -1), axis=-1)
        return flat[..., -top:].mean(axis=-1)

    # --------------------------------------------------------------------------------------------
    # scoring
    # --------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the frame history (previous frame, smoothing); keep what was learned."""
        self._prev = None
        self._prev_t = None
        self._cell_state = None

    def score(self, gray: np.ndarray, timestamp: float) -> DetectorResult:
        """Score one analysis frame (grayscale uint8; BGR is converted) taken at ``timestamp``."""
        if not self.trained:
            return DetectorResult(score=0.0, details={"untrained": True})
        gray = _gray(gray)
        small, work = self._prepare(gray)
        timestamp = float(timestamp)
        prev, prev_t = self._prev, self._prev_t
        if prev is not None and (not (0.0 < timestamp - prev_t <= float(self.params["max_gap"]))
                                 or prev.shape != work.shape):
            self.reset()  # a gap, time going back, a new clip or another frame size
            prev = None
        self._prev, self._prev_t = work, timestamp
        if prev is None:
            return DetectorResult(score=0.0, details={"warmup": True, "reason": "no previous frame"})
        dt = timestamp - prev_t
        target = self._motion(prev, work, dt)
        predicted = self.runner.predict(self._model, self._input(small))
        residual = target - predicted
        z = self._z(self._cells(residual))
        tau = float(self.params["smoothing"])
        alpha = 1.0 if tau <= 0 else 1.0 - math.exp(-dt / tau)
        if self._cell_state is None:
            self._cell_state = z.copy()
        else:
            self._cell_state += alpha * (z - self._cell_state)
        cell = self._cell_state
        raw = float(self._raw(cell))
        zt = float(self._calib["z_threshold"])
        score = _sigmoid((raw - zt) / (float(self.params["z_scale"]) * zt))
        details = {"raw": round(raw, 4), "z_threshold": round(zt, 4),
                   "top_cells": self._top_cells(cell, target, predicted, gray.shape)}
        return DetectorResult(score=float(score), regions=self._regions(cell, gray.shape), details=details)

    def _cell_box(self, col: int, row: int, shape, cols: int = 1, rows: int = 1) -> tuple[int, int, int, int]:
        h, w = shape
        gw, gh = self.grid
        x0, x1 = int(round(col * w / gw)), int(round((col + cols) * w / gw))
        y0, y1 = int(round(row * h / gh)), int(round((row + rows) * h / gh))
        return x0, y0, x1 - x0, y1 - y0

    def _regions(self, cell: np.ndarray, shape) -> list[tuple[int, int, int, int]]:
        """Boxes (analysis-frame pixels) around the groups of cells that drive the score."""
        zt = float(self._calib["z_threshold"])
        peak = float(cell.max())
        if peak < 0.6 * zt:
            return []
        mask = (cell >= max(0.6 * zt, 0.5 * peak)).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        found = []
        for i in range(1, n):
            cx, cy, cw, ch, _ = stats[i]
            found.append((float(cell[labels == i].max()), self._cell_box(int(cx), int(cy), shape, int(cw), int(ch))))
        found.sort(key=lambda item: -item[0])
        return [box for _, box in found[: int(self.params["max_regions"])]]

    def _top_cells(self, cell, target, predicted, shape, k: int = 3) -> list[dict]:
        gw, gh = self.grid
        speed = lambda a: cv2.resize(np.expm1(a).sum(0).astype(np.float32) * SPEED_UNIT, (gw, gh),  # noqa: E731
                                     interpolation=cv2.INTER_AREA)
        seen, usual = speed(target), speed(np.maximum(predicted, 0.0))
        out = []
        for idx in np.argsort(cell, axis=None)[::-1][:k]:
            row, col = (int(v) for v in np.unravel_index(idx, cell.shape))
            out.append({"cell": [col, row], "box": list(self._cell_box(col, row, shape)),
                        "z": round(float(cell[row, col]), 3),
                        "speed": round(float(seen[row, col]), 2), "expected_speed": round(float(usual[row, col]), 2)})
        return out

    # --------------------------------------------------------------------------------------------
    # learning
    # --------------------------------------------------------------------------------------------
    def _samples(self, frames: Iterable, fps: float, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """(inputs uint8 (N, H, W), targets float16 (N, 2, H/2, W/2), clip number of each, frames read).

        ``frames``: gray (or BGR) frames; None or a whole clip (3-D array / list) marks a cut.
        Beyond ``limit`` samples every other one is dropped and the stride doubles (uniform
        thinning of long footage, in order).
        """
        dt = 1.0 / float(fps)
        smalls: list[np.ndarray] = []
        targets: list[np.ndarray] = []
        clips: list[int] = []
        stride, seen, read, clip = 1, 0, 0, 0
        prev = None

        def one(frame):
            nonlocal prev, seen, stride, read, smalls, targets, clips
            frame = _gray(np.asarray(frame))
            read += 1
            if self.input_size is None:
                self._set_geometry(self._geometry_for(frame.shape), int(self.params["cell_size"]))
            small, work = self._prepare(frame)
            if prev is not None and prev.shape == work.shape:
                if seen % stride == 0:
                    smalls.append(small)
                    targets.append(self._motion(prev, work, dt).astype(np.float16))
                    clips.append(clip)
                    if len(smalls) > limit:
                        smalls, targets, clips = smalls[::2], targets[::2], clips[::2]
                        stride *= 2
                seen += 1
            prev = work

        for item in frames:
            if item is None:
                prev, clip = None, clip + 1
            elif isinstance(item, np.ndarray) and (item.ndim == 2 or (item.ndim == 3 and item.shape[-1] in (3, 4))):
                one(item)  # one frame (gray, or BGR / BGRA)
            else:  # a whole clip
                prev, clip = None, clip + 1
                for frame in item:
                    one(frame)
                prev, clip = None, clip + 1
        self._stride = stride
        if not smalls:
            return np.zeros((0, 1, 1), np.uint8), np.zeros((0, 2, 1, 1), np.float16), np.zeros(0, int), read
        return np.stack(smalls), np.stack(targets), np.asarray(clips), read

    def _threads(self, n: int):
        """Context: torch intra-op threads set to ``n`` (0: all cores) on CPU, then restored."""
        detector = self

        class _Ctx:
            def __enter__(self):
                self.before = torch.get_num_threads()
                if detector.device.type == "cpu":
                    torch.set_num_threads(n if n > 0 else (os.cpu_count() or 1))

            def __exit__(self, *exc):
                torch.set_num_threads(self.before)

        return _Ctx()

    def _train(self, inputs: np.ndarray, targets: np.ndarray, *, steps: int, seconds: float, lr: float,
               replay: tuple[np.ndarray, np.ndarray] | None = None) -> int:
        """Adam with cosine decay over max(step, time) progress; returns the steps taken."""
        model = self._model
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        rng = np.random.default_rng(int(self.params["seed"]) + self.info.get("feedback_rounds", 0))
        bs = int(self.params["batch_size"])
        q = float(self.params["quantile"])
        started = time.perf_counter()
        done = 0
        for step in range(steps):
            progress = max(step / steps, (time.perf_counter() - started) / seconds if seconds > 0 else 0.0)
            if progress >= 1.0:
                break
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * progress))
            pick = rng.integers(0, len(inputs), min(bs, len(inputs)) if replay is not None else bs)
            x, y = inputs[pick], targets[pick]
            if replay is not None and len(replay[0]):
                more = rng.integers(0, len(replay[0]), bs)
                x, y = np.concatenate([x, replay[0][more]]), np.concatenate([y, replay[1][more]])
            xt = self._inputs(x).to(self.device)
            yt = torch.from_numpy(y.astype(np.float32)).to(self.device)
            diff = yt - model(xt)  # pinball loss: the network predicts the q-quantile of normal motion
            loss = torch.maximum(q * diff, (q - 1.0) * diff).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
        model.eval()
        return done

    @torch.no_grad()
    def _residual_cells(self, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """(N, rows, cols) positive residual per cell of the current network on samples."""
        out = []
        for i in range(0, len(inputs), 64):
            pred = self._model(self._inputs(inputs[i:i + 64]).to(self.device)).float().cpu().numpy()
            out.append(self._cells(targets[i:i + 64].astype(np.float32) - pred))
        return np.concatenate(out) if out else np.zeros((0, *self.grid[::-1]))

    def _calibrate(self, cells: np.ndarray, starts: np.ndarray, dt: float) -> dict:
        """Per-cell statistics of held-out residuals, and the raw score that maps to 0.5.

        ``starts`` marks the first sample of each contiguous held-out run: the threshold is the
        ``calib_quantile`` of raw scores smoothed exactly as :meth:`score` smooths them.
        """
        mean = cells.mean(axis=0)
        sd = cells.std(axis=0)
        scale = max(float(cells.mean()), 1e-4)
        calib = {"mean": mean, "sd": sd, "scale": scale, "samples": int(len(cells))}
        self._calib = {**calib, "z_threshold": 1.0}
        z = self._z(cells)
        tau = float(self.params["smoothing"])
        alpha = 1.0 if tau <= 0 else 1.0 - math.exp(-dt / tau)
        smoothed = np.empty_like(z)
        for i in range(len(z)):
            smoothed[i] = z[i] if starts[i] else smoothed[i - 1] + alpha * (z[i] - smoothed[i - 1])
        raw = self._raw(smoothed)
        # little held-out footage (a few minutes of a new camera) says little about the tail of
        # normal: inflate the threshold by 1 + 1/sqrt(runs) (x1.12 for UCSD Ped1, x1.6 for 3 runs)
        inflate = 1.0 + 1.0 / math.sqrt(max(1, int(starts.sum())))
        quantile = float(np.quantile(raw, float(self.params["calib_quantile"])))
        calib["z_threshold"] = max(0.25, quantile * inflate)
        return calib

    def fit(self, frames: Iterable, fps: float = 10.0, *, from_scratch: bool = False) -> "PredictionDetector":
        """Learn this camera's normal from known-normal footage (gray frames at ``fps``).

        ``frames`` yields analysis frames, and None between clips (a 3-D array or list of frames
        is taken as one clip). A trained detector continues from its weights unless
        ``from_scratch``; the calibration is always recomputed.
        """
        p = self.params
        started = time.perf_counter()
        cpu_started = time.process_time()
        if from_scratch or not self.trained:
            self._model, self._calib, self.input_size = None, None, None
        inputs, targets, clips, read = self._samples(frames, fps, int(p["max_train_frames"]))
        if len(inputs) < 2:
            raise ValueError(f"not enough footage to learn from: {read} frames gave {len(inputs)} motion samples")
        n = len(inputs)
        chunk = np.arange(n) // CHUNK
        if chunk.max() >= 1:
            held = chunk % HOLDOUT_EVERY == HOLDOUT_EVERY - 1
            if not held.any():
                held = chunk == chunk.max()
        else:  # one short chunk: hold out its last fifth
            held = np.arange(n) >= n - max(1, n // HOLDOUT_EVERY)
        train_idx, held_idx = np.flatnonzero(~held), np.flatnonzero(held)
        torch.manual_seed(int(p["seed"]))
        if self._model is None:
            self._model = MotionPredictor(int(p["channels"])).to(self.device)
        steps = max(1, int(math.ceil(int(p["max_epochs"]) * len(train_idx) / int(p["batch_size"]))))
        with self._threads(int(p["train_threads"])):
            done = self._train(inputs[train_idx], targets[train_idx], steps=steps,
                               seconds=float(p["max_train_seconds"]), lr=float(p["learning_rate"]))
            starts = np.r_[True, (np.diff(held_idx) != 1) | (np.diff(clips[held_idx]) != 0)]
            self._calib = self._calibrate(self._residual_cells(inputs[held_idx], targets[held_idx]), starts,
                                          self._stride / float(fps))
        keep = np.random.default_rng(int(p["seed"])).choice(n, min(n, int(p["replay_samples"])), replace=False)
        self._replay = (inputs[keep], targets[keep])
        self.info = {"fps": float(fps), "frames": int(read), "samples": int(n), "held_out": int(len(held_idx)),
                     "steps": int(done), "epochs": round(done * int(p["batch_size"]) / max(1, len(train_idx)), 2),
                     "train_seconds": round(time.perf_counter() - started, 2),
                     "train_cpu_seconds": round(time.process_time() - cpu_started, 2), "feedback_rounds": 0}
        log.info("predict detector trained: %s", self.info)
        self.reset()
        return self

    def feedback(self, frames: Iterable, fps: float = 10.0) -> "PredictionDetector":
        """An operator said these frames were normal (a false alarm): learn them, stop firing on them.

        Fine-tunes the network for ``feedback_steps`` on the clip's samples mixed half and half
        with the replay of normal samples, then raises the calibration of each cell just enough
        that every fed frame stays below ``feedback_margin`` times the threshold in that cell.
        """
        if not self.trained:
            raise ValueError("the predict detector has not learned this camera yet: fit it before feedback")
        p = self.params
        inputs, targets, _, read = self._samples(frames, fps, int(p["max_train_frames"]))
        if len(inputs) == 0:
            raise ValueError(f"no motion samples in the feedback footage ({read} frames)")
        self.info["feedback_rounds"] = int(self.info.get("feedback_rounds", 0)) + 1
        with self._threads(int(p["train_threads"])):
            self._train(inputs, targets, steps=int(p["feedback_steps"]), seconds=0.0, lr=float(p["feedback_lr"]),
                        replay=self._replay)
            cells = self._residual_cells(inputs, targets)
        c = self._calib
        denom = c["sd"] + float(p["floor"]) * c["scale"]
        worst = ((cells - c["mean"]) / denom).max(axis=0)
        limit = float(p["feedback_margin"]) * float(c["z_threshold"])
        c["mean"] = c["mean"] + np.maximum(0.0, worst - limit) * denom
        self.info["feedback_frames"] = int(self.info.get("feedback_frames", 0)) + int(read)
        self.reset()
        return self

    # --------------------------------------------------------------------------------------------
    # persistence
    # --------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """What was learned, JSON-serialisable: weights (base64 of ``torch.save``), calibration,
        geometry, a small replay of normal samples (base64 npz) and how it was learned."""
        if not self.trained:
            return {"version": STATE_VERSION, "name": self.name, "trained": False}
        c = self._calib
        state = {
            "version": STATE_VERSION,
            "name": self.name,
            "trained": True,
            "input_size": list(self.input_size),
            "channels": int(self._model.channels),
            "cell_size": int(self.cell_size),
            "grid": list(self.grid),
            "weights": _b64_torch({k: v.detach().cpu() for k, v in self._model.state_dict().items()}),
            "calibration": {"mean": np.round(c["mean"], 6).tolist(), "sd": np.round(c["sd"], 6).tolist(),
                            "scale": float(c["scale"]), "z_threshold": float(c["z_threshold"]),
                            "samples": int(c["samples"])},
            "info": dict(self.info),
        }
        if self._replay is not None and len(self._replay[0]):
            state["replay"] = _b64_npz(inputs=self._replay[0], targets=self._replay[1])
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`; ValueError naming the problem (nothing changes then)."""
        if not isinstance(state, dict):
            raise ValueError("predict detector state must be a JSON object")
        if state.get("name", self.name) != self.name:
            raise ValueError(f"state is for the {state.get('name')!r} detector, not {self.name!r}")
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported predict detector state version {state.get('version')!r} "
                             f"(this code reads version {STATE_VERSION})")
        if not state.get("trained"):
            self._model, self._calib, self._replay, self.input_size, self.grid = None, None, None, None, None
            self.info = {}
            self.reset()
            return
        for key in ("input_size", "channels", "cell_size", "grid", "weights", "calibration"):
            if key not in state:
                raise ValueError(f"predict detector state is missing {key!r}")
        try:
            w, h = (int(v) for v in state["input_size"])
            channels, cell_size = int(state["channels"]), int(state["cell_size"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"state input_size/channels/cell_size are not integers: {exc}") from exc
        if w < 16 or h < 8 or w % 4 or h % 4 or channels < 1 or cell_size < 1:
            raise ValueError(f"state geometry is invalid (input_size {w}x{h}, channels {channels}, cell {cell_size})")
        model = MotionPredictor(channels)
        try:
            weights = torch.load(io.BytesIO(_decode(state["weights"], "weights")), map_location="cpu",
                                 weights_only=True)
            model.load_state_dict(weights)
        except ValueError:
            raise
        except Exception as exc:  # noqa: BLE001 - any unreadable or mismatched checkpoint
            raise ValueError(f"state weights do not load into a {channels}-channel network: {exc}") from exc
        old_geometry = (self.input_size, getattr(self, "cell_size", None), self.grid,
                        getattr(self, "_coords", None))
        self._set_geometry((w, h), cell_size)
        try:
            if list(self.grid) != [int(v) for v in state["grid"]]:
                raise ValueError(f"state grid {state['grid']} does not match input_size {w}x{h} with cell_size "
                                 f"{cell_size} (grid {list(self.grid)})")
            calib = state["calibration"]
            if not isinstance(calib, dict):
                raise ValueError("state calibration must be an object")
            mean = np.asarray(calib.get("mean"), dtype=np.float64)
            sd = np.asarray(calib.get("sd"), dtype=np.float64)
            expected = self.grid[::-1]
            if mean.shape != expected or sd.shape != expected:
                raise ValueError(f"state calibration arrays have shapes {mean.shape} and {sd.shape}, "
                                 f"expected {expected}")
            scale, zt = float(calib["scale"]), float(calib["z_threshold"])
            if not (np.isfinite(mean).all() and np.isfinite(sd).all() and (sd >= 0).all()
                    and scale > 0 and zt > 0 and math.isfinite(scale) and math.isfinite(zt)):
                raise ValueError("state calibration has negative or non-finite values")
            replay = None
            if state.get("replay"):
                try:
                    with np.load(io.BytesIO(_decode(state["replay"], "replay")), allow_pickle=False) as data:
                        replay = (data["inputs"].astype(np.uint8), data["targets"].astype(np.float16))
                except ValueError:
                    raise
                except Exception as exc:  # noqa: BLE001
                    raise ValueError(f"state replay is unreadable: {exc}") from exc
                if replay[0].shape[1:] != (h, w) or replay[1].shape[1:] != (2, h // 2, w // 2):
                    raise ValueError("state replay samples do not match input_size")
        except (KeyError, TypeError) as exc:
            self.input_size, self.cell_size, self.grid, self._coords = old_geometry
            raise ValueError(f"state calibration is malformed: {exc}") from exc
        except ValueError:
            self.input_size, self.cell_size, self.grid, self._coords = old_geometry
            raise
        self._model = model.to(self.device).eval()
        self._calib = {"mean": mean, "sd": sd, "scale": scale, "z_threshold": zt,
                       "samples": int(calib.get("samples", 0))}
        self._replay = replay
        self.info = dict(state.get("info") or {})
        self.reset()
