"""Anomaly detectors that score one camera's analysis frames.

:class:`MotionDetector` (``"motion"``) needs no weights: it learns the camera's NORMAL motion
from its own footage, per grid cell, and scores how far each new frame departs from it.

Per frame (grayscale uint8 analysis frame, typically <= 360 px wide) it works on a copy about
``work_width`` px wide, lightly blurred (small frames are upscaled: dense flow needs enough
pixels per person; on UCSD Ped1 this alone is worth about +0.07 AUC):

* dense optical flow (OpenCV DIS, ultra-fast preset), kept only where the frame changed,
  converted to analysis-frame pixels per SECOND so scores barely depend on the analysis fps;
* a slowly adapting background (approximate running median, half resolution): its
  foreground, and per pixel a "dwell" time, how long foreground that arrived by moving has
  stayed there without motion.

Per grid cell the normal model keeps: how often the cell moves and how often it holds
foreground (counts of rare events, long memory), the running mean and variance of the log
speed of what moves, a histogram of motion directions, and a running high quantile of the
dwell time. A cell's anomaly is the strongest of these z-like terms (``weights``):

* ``speed``      faster than this cell's usual motion (running, bicycles, vehicles),
* ``direction``  a direction this cell rarely sees (a fall, going the wrong way, crossing),
* ``novelty``    motion in a cell that rarely moves (walking on the grass, a forbidden area),
* ``area``       foreground in a cell that is rarely occupied (someone standing where
                 nobody goes, an object left there),
* ``dwell``      a still, wide blob (wider than tall: someone lying down, an object on the
                 ground) staying longer than this cell ever sees. People standing still are
                 tall and not counted; dwell needs ``dwell_after`` seconds of continuous
                 footage so that start-up ghosts of the background do not count.

Each cell's anomaly is smoothed over ``cell_smoothing`` seconds; the frame's raw score is the
mean of the ``top_cells`` strongest cells, mapped by a logistic curve into [0, 1] so that
``raw == z_threshold`` gives 0.5: the default camera threshold of 0.5 separates normal from
anomalous.

Learning: cells with little data borrow speed statistics from their neighbourhood
(perspective changes smoothly); every term is damped while the model is young
(``confidence_frames``) and activity starts from a weak prior (``novelty_prior``), so a new
camera does not alarm just because it has not seen much yet. Online, the model learns only
from frames scoring below ``learn_below`` so anomalies do not become normal, and inside such
frames a cell whose own novelty / occupancy / direction / dwell term is high learns at
``gated_rate`` only: a path used once stays novel, a path used every day becomes normal.
``fit()`` learns from known-normal footage through the same code path (without the gates).

Operator feedback: ``feedback(frames)`` takes the clip of an event an operator marked false
alarm and gives the (cell, term) pairs that made it fire an accepted level, the fewest pairs
that keep every frame of the clip clearly below the threshold; a term up to its cell's accepted
level no longer counts (a clearly stronger one still does), so the same situation stops firing
while every other cell and term keeps its sensitivity. Accepted levels are part of the state.
"""

from __future__ import annotations

import logging
import math
from typing import Iterable

import cv2
import numpy as np

from .base import Detector, DetectorResult

log = logging.getLogger(__name__)

STATE_VERSION = 3  # 3: + operator feedback (accepted levels); 2 still loads
N_DIR = 8
COMPONENTS = ("speed", "direction", "novelty", "dwell", "area")
_COUNT_MEMORY = 10.0  # activity / occupancy statistics remember this many times longer
_LOG_SPEED_OFFSET = 5.0  # px/s added before the log: slow jitter does not look "fast"


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


class MotionDetector(Detector):
    """Learns per-cell normal motion online and scores deviations from it (no weights).

    Parameters (all optional, ``MotionDetector(**params)``; defaults in :attr:`DEFAULTS`):

    ``work_width`` (360)        width of the internal working image (at most 2x the input)
    ``cell_size`` (24)          grid cell side in working pixels (360 px wide -> 15 columns)
    ``warmup_frames`` (50)      frames that only learn (score 0)
    ``threshold`` (0.5)         the camera threshold the scores are calibrated for
    ``learn_below`` (None)      learn online only from frames scoring below this
                                (None: 0.8 * threshold)
    ``learning_rate`` (0.001)   slowest per-frame learning rate (memory about 1/rate frames);
                                before that, statistics are plain running averages
    ``z_threshold`` (2.4)       raw (z-like) score that maps to 0.5
    ``z_scale`` (0.4)           logistic slope of that mapping
    ``blur`` (1.0)              Gaussian sigma (working px) against sensor noise and aliasing
    ``diff_threshold`` (10)     grey levels of frame difference that count as change
    ``fg_threshold`` (22)       grey levels from the background that count as foreground
    ``min_flow`` (0.25)         flow (working px per frame) below which a pixel is still
    ``active_fraction`` (0.04)  moving fraction of a cell that makes it "active"
    ``prior_frames`` (50)       strength of the neighbourhood prior for a cell, in frames
    ``novelty_prior`` (500)     frames of prior belief that a cell is active 1% of the time
    ``confidence_frames`` (100) frames learned before the terms reach half weight
    ``cell_smoothing`` (0.3)    time constant (s) of each cell's causal smoothing
    ``dwell_quantile`` (0.99)   the dwell quantile a cell considers normal
    ``dwell_after`` (20)        seconds of continuous footage before dwell counts (the
                                background must be mature, free of start-up ghosts)
    ``gated_rate`` (0.1)        learning rate factor for cells whose own novelty, occupancy,
                                direction or dwell term is high (a path used once stays novel,
                                a path used every day becomes normal)
    ``weights``                 per-component weights, see :data:`COMPONENTS` (all 1.0)
    ``max_gap`` (2.0)           seconds between frames beyond which the motion chain restarts
    ``max_regions`` (4)         regions returned at most
    ``top_cells`` (2)           the raw score is the mean of this many strongest cells
    ``spatial_pool`` (1)        >1: each cell also takes the max of its k x k neighbourhood
                                before smoothing (follows fast objects across cells)
    ``feedback_level`` (0.85)   :meth:`feedback` accepts until no frame of the clip has a raw
                                score above this x ``z_threshold`` (0.85: a score of about 0.3)
    ``feedback_margin`` (1.0)   how much stronger than its accepted level (z units) a term must
                                be to count in full again (linear ramp from the level)
    ``feedback_spread`` (0)     cells around each accepted cell that get the same level (0: only
                                the cells that fired; more generalises to nearby positions)

    Results: ``score`` in [0, 1]; ``regions`` boxes (x, y, w, h, analysis-frame pixels) around
    the cells that drive the score; ``details`` with ``raw``, ``warmup``, ``confidence``,
    ``learned`` (whether this frame updated the model), ``components`` (each term's strongest
    weighted cell) and ``top_cells`` (cell, box, score, main term and every term's contribution).
    """

    name = "motion"

    DEFAULTS = {
        "work_width": 360,
        "cell_size": 24,
        "warmup_frames": 50,
        "threshold": 0.5,
        "learn_below": None,
        "learning_rate": 0.001,
        "z_threshold": 2.4,
        "z_scale": 0.4,
        "diff_threshold": 10.0,
        "fg_threshold": 22.0,
        "min_flow": 0.25,
        "active_fraction": 0.04,
        "prior_frames": 50.0,
        "novelty_prior": 500.0,
        "confidence_frames": 100.0,
        "cell_smoothing": 0.3,
        "dwell_quantile": 0.99,
        "dwell_after": 20.0,
        "gated_rate": 0.1,
        "weights": {"speed": 1.0, "direction": 1.0, "novelty": 1.0, "dwell": 1.0, "area": 1.0},
        "max_gap": 2.0,
        "max_regions": 4,
        "top_cells": 2,
        "spatial_pool": 1,
        "blur": 1.0,
        "feedback_level": 0.85,
        "feedback_spread": 0,
        "feedback_margin": 1.0,
    }

    def __init__(self, **params):
        unknown = set(params) - set(self.DEFAULTS)
        if unknown:
            raise ValueError(f"unknown MotionDetector parameter(s): {', '.join(sorted(unknown))}")
        merged = {**self.DEFAULTS, **params}
        merged["weights"] = {**self.DEFAULTS["weights"], **(params.get("weights") or {})}
        bad = set(merged["weights"]) - set(COMPONENTS)
        if bad:
            raise ValueError(f"unknown weight(s): {', '.join(sorted(bad))} (known: {', '.join(COMPONENTS)})")
        if merged["learn_below"] is None:
            merged["learn_below"] = 0.8 * float(merged["threshold"])
        if int(merged["cell_size"]) < 4:
            raise ValueError("cell_size must be at least 4 pixels")
        if not 0 < float(merged["learning_rate"]) < 1:
            raise ValueError("learning_rate must be between 0 and 1")
        super().__init__(**merged)
        p = self.params
        self.work_width = int(p["work_width"])
        self.cell_size = int(p["cell_size"])
        self.warmup_frames = int(p["warmup_frames"])
        self.threshold = float(p["threshold"])
        self.learn_below = float(p["learn_below"])
        self.lr_min = float(p["learning_rate"])
        self.z_threshold = float(p["z_threshold"])
        self.z_scale = float(p["z_scale"])
        self.weights = {k: float(v) for k, v in p["weights"].items()}
        self._flow = None
        self._model: dict[str, np.ndarray] | None = None
        #: operator feedback: per component, the per-cell level of that term accepted as normal
        self._accepted: dict[str, np.ndarray] | None = None
        self.shape: tuple[int, int] | None = None  # analysis frame (H, W) the model is for
        self.frames_seen = 0  # frames scored with a previous frame (warm-up counts these)
        self.frames_learned = 0.0
        self.reset()

    # ------------------------------------------------------------------------------------
    # geometry / model
    # ------------------------------------------------------------------------------------
    def _init_geometry(self, shape: tuple[int, int]) -> None:
        h, w = int(shape[0]), int(shape[1])
        self.shape = (h, w)
        scale = min(2.0, self.work_width / float(w))
        c = self.cell_size
        # the working image is a whole number of cells (cell statistics are exact, fast
        # block averages); the aspect ratio changes by less than half a cell
        gw, gh = max(1, int(round(w * scale / c))), max(1, int(round(h * scale / c)))
        self.grid = (gw, gh)
        self.work_size = (gw * c, gh * c)  # (W, H)
        self.work_scale = self.work_size[0] / float(w)  # working px per analysis px (x)
        self.bg_block = max(1, c // 2)  # background pixels per cell side (half resolution)
        self.bg_size = (gw * self.bg_block, gh * self.bg_block)

    def _init_model(self) -> None:
        gw, gh = self.grid
        z = lambda: np.zeros((gh, gw), np.float64)  # noqa: E731
        self._model = {
            "n": z(),  # effective number of frames learned per cell
            "p_act": z(),  # P(cell active)
            "n_act": z(),  # effective number of active frames
            "m_speed": z(), "v_speed": z(),  # log(speed + 5 px/s) while active
            "p_occ": z(), "n_occ": z(),  # P(cell occupied by foreground), frames with a settled background
            "q_dwell": z(),  # running dwell_quantile of log(1 + dwell seconds)
            "dir": np.zeros((N_DIR, gh, gw), np.float64),  # direction histogram (effective counts)
        }
        self._accepted = None

    def reset(self) -> None:
        """Forget the motion chain (previous frame, background, smoothing); keep what was learned."""
        self._prev = None
        self._prev_t = None
        self._bg = None
        self._bg_age = 0.0
        self._dwell = None
        self._arrived = None
        self._cell_state = None

    def _ensure(self, gray: np.ndarray) -> np.ndarray:
        if gray.ndim == 3:
            gray = cv2.cvtColor(gray, cv2.COLOR_BGRA2GRAY if gray.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
        if gray.dtype != np.uint8:
            gray = np.clip(gray, 0, 255).astype(np.uint8)
        h, w = gray.shape[:2]
        if self.shape is None:
            self._init_geometry((h, w))
            self._init_model()
        elif (h, w) != self.shape:
            mh, mw = self.shape
            if abs(w / h - mw / mh) < 0.03 * (mw / mh):
                gray = cv2.resize(gray, (mw, mh), interpolation=cv2.INTER_AREA)
            else:
                log.warning("analysis frame changed from %sx%s to %sx%s: relearning", mw, mh, w, h)
                self._init_geometry((h, w))
                self._init_model()
                self.frames_seen = 0
                self.frames_learned = 0.0
                self.reset()
        if self._model is None:
            self._init_model()
        return gray

    # ------------------------------------------------------------------------------------
    # features
    # ------------------------------------------------------------------------------------
    def _features(self, prev: np.ndarray, work: np.ndarray, dt: float) -> dict[str, np.ndarray]:
        p = self.params
        gw, gh = self.grid
        if self._flow is None:
            self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        flow = self._flow.calc(prev, work, None)
        fx, fy = cv2.split(flow)
        mag = cv2.magnitude(fx, fy)
        # moving = changed since the previous frame (dilated a pixel) and a visible flow
        _, changed = cv2.threshold(cv2.absdiff(work, prev), float(p["diff_threshold"]), 1.0, cv2.THRESH_BINARY)
        changed = cv2.dilate(changed, None)
        _, flowing = cv2.threshold(mag, float(p["min_flow"]), 1.0, cv2.THRESH_BINARY)
        mov = cv2.multiply(changed.astype(np.float32), flowing)  # 1.0 where moving

        def cells(a: np.ndarray) -> np.ndarray:  # exact block means (whole cells)
            return cv2.resize(a, (gw, gh), interpolation=cv2.INTER_AREA).astype(np.float64)

        to_px_s = 1.0 / (self.work_scale * dt)  # working px/frame -> analysis px/s
        move_frac = cells(mov)
        denom = np.maximum(move_frac, 1e-6)
        speed = cells(cv2.multiply(mag, mov)) / denom * to_px_s
        vx = cells(cv2.multiply(fx, mov)) / denom * to_px_s
        vy = cells(cv2.multiply(fy, mov)) / denom * to_px_s

        # background (approximate running median at half resolution) and dwell
        bw, bh = self.bg_size
        small = cv2.resize(work, (bw, bh), interpolation=cv2.INTER_AREA).astype(np.float32)
        moved = cv2.resize(mov, (bw, bh), interpolation=cv2.INTER_AREA) > 0
        if self._bg is None:
            self._bg = small.copy()
            self._dwell = np.zeros_like(small)
            self._arrived = np.zeros(small.shape, bool)
        diff = small - self._bg
        fg = np.abs(diff) > p["fg_threshold"]
        self._bg_age += dt
        young = self._bg_age < 8.0
        step = dt * (4.0 + 40.0 * math.exp(-self._bg_age / 3.0))  # grey levels per frame
        if young:  # converging: every pixel follows the median quickly
            self._bg += np.clip(diff, -step, step)
        else:  # foreground adapts slowly, so a still object stays visible for a while
            self._bg += np.clip(diff, -step, step) * np.where(fg, 0.25, 1.0).astype(np.float32)
        near_motion = cv2.dilate(moved.view(np.uint8), np.ones((3, 3), np.uint8)) > 0
        still = fg & ~near_motion
        # dwell needs a mature background (no start-up ghosts): dwell_after seconds of footage
        mature = self._bg_age >= float(p["dwell_after"])
        if mature:  # still foreground accumulates; motion over it (passers-by) only pauses it
            # only foreground that arrived by moving counts (not a background edge that
            # flickers, never moved, and differs from the model all the time)
            self._arrived = fg & (self._arrived | moved)
            self._dwell = np.where(self._arrived, self._dwell + dt * still, 0.0).astype(np.float32)
        else:
            self._dwell = np.zeros_like(small)
        dwell = np.zeros((gh, gw), np.float64)
        if mature and float(self._dwell.max()) > 1.0:
            # only still blobs wider than tall count (someone lying down, an object left on
            # the ground); people standing still are tall and normal in most scenes
            still_mask = cv2.morphologyEx((self._dwell > 1.0).view(np.uint8), cv2.MORPH_CLOSE,
                                          np.ones((3, 3), np.uint8))
            n_lab, labels, stats, _ = cv2.connectedComponentsWithStats(still_mask, connectivity=8)
            aspect = stats[:, cv2.CC_STAT_WIDTH] / np.maximum(stats[:, cv2.CC_STAT_HEIGHT], 1)
            weight = np.clip((aspect - 1.2) / 0.8, 0.0, 1.0).astype(np.float32)
            weight[0] = 0.0
            # at least ~8% of a cell
            min_area = max(4.0, 0.08 * self.bg_block ** 2)
            weight[stats[:, cv2.CC_STAT_AREA] < min_area] = 0.0
            if weight.any():
                wide = self._dwell * weight[labels]
                b = self.bg_block  # the longest dwell in each cell
                dwell = wide.reshape(gh, b, gw, b).max(axis=(1, 3)).astype(np.float64)
        fgf = cv2.resize(fg.astype(np.float32), (gw, gh), interpolation=cv2.INTER_AREA).astype(np.float64)

        coherence = np.hypot(vx, vy) / np.maximum(speed, 1e-6)
        dbin = np.round(np.arctan2(vy, vx) / (2 * np.pi / N_DIR)).astype(np.int64) % N_DIR
        return {
            "move": move_frac,
            "active": move_frac > p["active_fraction"],
            "speed": speed,
            "dir": dbin,
            "coherent": coherence > 0.5,
            "fg": fgf,
            "dwell": dwell,
            "bg_mature": mature,
            "bg_settled": not young,
        }

    # ------------------------------------------------------------------------------------
    # normal model
    # ------------------------------------------------------------------------------------
    @staticmethod
    def _neigh(values: np.ndarray, weights: np.ndarray, default: float) -> np.ndarray:
        """Weighted mean over a 5x5 neighbourhood, else over the frame, else ``default``."""
        num = cv2.blur(values * weights, (5, 5), borderType=cv2.BORDER_REPLICATE)
        den = cv2.blur(weights, (5, 5), borderType=cv2.BORDER_REPLICATE)
        total_w = float(weights.sum())
        glob = float((values * weights).sum() / total_w) if total_w > 1.0 else default
        return np.where(den > 0.05, num / np.maximum(den, 1e-12), glob)

    def _shrunk(self, mean, var, count, default_mean, default_var, var_floor):
        """Mean and sd shrunk towards the neighbourhood by ``prior_frames`` pseudo-counts."""
        k = float(self.params["prior_frames"])
        pm = self._neigh(mean, count, default_mean)
        pv = self._neigh(var + (mean - pm) ** 2, count, default_var)
        w = count / (count + k)
        m = w * mean + (1 - w) * pm
        v = w * var + (1 - w) * pv
        return m, np.sqrt(v + var_floor)

    def _cell_scores(self, feat: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        M = self._model
        active = feat["active"]
        strength = np.clip(feat["move"] / (2 * self.params["active_fraction"]), 0.0, 1.0)

        ls = np.log(feat["speed"] + _LOG_SPEED_OFFSET)
        m, sd = self._shrunk(M["m_speed"], M["v_speed"], M["n_act"], math.log(30.0), 0.5 ** 2, 0.01)
        z_speed = np.where(active, np.maximum(0.0, (ls - m) / sd), 0.0)

        # direction: Dirichlet(1) posterior of the dominant direction's bin, coherent motion only
        hist = M["dir"]
        total = hist.sum(axis=0)
        count = np.take_along_axis(hist, feat["dir"][None], axis=0)[0]
        p_dir = (count + 1.0) / (total + N_DIR)
        dsur = np.maximum(0.0, np.log(1.0 / (N_DIR * p_dir)) - 0.5)
        z_dir = np.where(active & feat["coherent"], np.sqrt(2.0 * dsur) * strength, 0.0)

        # novelty: activity probability with a weak prior (1% active, worth novelty_prior frames):
        # a cell must have been watched a while before motion there is surprising
        k = float(self.params["novelty_prior"])
        p_act = (M["p_act"] * M["n"] + 0.01 * k + 0.5) / (M["n"] + k + 1.0)
        z_nov = np.where(active, np.maximum(0.0, np.log(0.05 / p_act)), 0.0) * strength

        # dwell above what this cell usually sees (a running high quantile)
        usual = np.maximum(np.expm1(M["q_dwell"]), 1.0)  # seconds
        z_dwell = np.maximum(0.0, feat["dwell"] - usual) / 1.0

        # occupancy: foreground (moving or not) in a cell that is rarely occupied
        if feat["bg_settled"]:
            p_occ = (M["p_occ"] * M["n_occ"] + 0.01 * k + 0.5) / (M["n_occ"] + k + 1.0)
            occ_strength = np.clip(feat["fg"] / 0.2, 0.0, 1.0)
            z_area = np.maximum(0.0, np.log(0.05 / p_occ)) * occ_strength
        else:
            z_area = np.zeros_like(z_speed)
        return {"speed": z_speed, "direction": z_dir, "novelty": z_nov, "dwell": z_dwell, "area": z_area}

    def _learn(self, feat: dict[str, np.ndarray], comps: dict[str, np.ndarray] | None = None,
               force: bool = False) -> None:
        """Update the normal model. Unless ``force`` (known-normal footage), a cell whose own
        novelty / occupancy / direction term is high keeps those counts: one long novel event
        must not teach itself to be normal within seconds."""
        M = self._model
        gate = 0.8 * self.z_threshold
        slow = float(self.params["gated_rate"])
        keep = {k: np.ones(self.grid[::-1]) for k in ("novelty", "area", "direction", "dwell")}
        if comps is not None and not force:  # 1 where the cell learns fully, gated_rate where gated
            keep = {k: np.where(self.weights[k] * comps[k] < gate, 1.0, slow) for k in keep}
        n = M["n"]
        # activity and occupancy are counts of rare events: they remember 10x longer
        lr = np.maximum(1.0 / (n + 1.0), self.lr_min / _COUNT_MEMORY)

        def ema(mkey, vkey, x, rate):
            d = x - M[mkey]
            M[mkey] += rate * d
            M[vkey] = (1 - rate) * (M[vkey] + rate * d * d)

        active = feat["active"]
        M["p_act"] += keep["novelty"] * lr * (active - M["p_act"])
        if feat["bg_settled"]:
            no = M["n_occ"]
            lro = np.maximum(1.0 / (no + 1.0), self.lr_min / _COUNT_MEMORY)
            M["p_occ"] += keep["area"] * lro * ((feat["fg"] > 0.1) - M["p_occ"])
            M["n_occ"] = np.minimum(no + 1.0, _COUNT_MEMORY / self.lr_min)
        if feat["bg_mature"]:
            tau = float(self.params["dwell_quantile"])
            x = np.log1p(feat["dwell"])
            eta = np.maximum(2.0 / (n + 1.0), 5 * self.lr_min)  # stochastic quantile tracking
            step = keep["dwell"] * eta * (tau - (x <= M["q_dwell"]))
            M["q_dwell"] = np.maximum(M["q_dwell"] + step, 0.0)
        M["n"] = np.minimum(n + 1.0, _COUNT_MEMORY / self.lr_min)

        na = M["n_act"]
        lra = np.where(active, np.maximum(1.0 / (na + 1.0), self.lr_min), 0.0)
        ema("m_speed", "v_speed", np.log(feat["speed"] + _LOG_SPEED_OFFSET), lra)
        d_upd = (active & feat["coherent"]) * keep["direction"]  # 0, gated_rate or 1
        M["dir"] *= (1.0 - self.lr_min * d_upd)[None]
        onehot = np.zeros_like(M["dir"])
        np.put_along_axis(onehot, feat["dir"][None], 1.0, axis=0)
        M["dir"] += onehot * d_upd[None]
        M["n_act"] = np.where(active, np.minimum(na + 1.0, 1.0 / self.lr_min), na)
        self.frames_learned += 1

    # ------------------------------------------------------------------------------------
    # scoring
    # ------------------------------------------------------------------------------------
    def _work(self, gray: np.ndarray) -> np.ndarray:
        """The working image of an analysis frame: resized to whole cells, lightly blurred."""
        gray = self._ensure(gray)
        work = gray if self.work_size == (gray.shape[1], gray.shape[0]) else cv2.resize(
            gray, self.work_size, interpolation=cv2.INTER_AREA if self.work_scale < 1 else cv2.INTER_LINEAR)
        if float(self.params["blur"]) > 0:  # sensor noise and aliasing make spurious motion
            sigma = float(self.params["blur"])
            k = 2 * int(math.ceil(2 * sigma)) + 1
            work = cv2.GaussianBlur(work, (k, k), sigma)
        return work

    def _step(self, gray: np.ndarray, timestamp: float, force_learn: bool) -> DetectorResult:
        work = self._work(gray)
        timestamp = float(timestamp)
        prev, prev_t = self._prev, self._prev_t
        if prev is not None and not (0.0 < timestamp - prev_t <= float(self.params["max_gap"])):
            self.reset()  # a gap, a jump back in time or a new clip: restart the motion chain
            prev = None
        self._prev, self._prev_t = work, timestamp
        if prev is None:
            return DetectorResult(score=0.0, details={"warmup": self.frames_seen < self.warmup_frames,
                                                      "reason": "no previous frame"})
        dt = timestamp - prev_t
        feat = self._features(prev, work, dt)
        self.frames_seen += 1
        in_warmup = self.frames_seen <= self.warmup_frames

        comps = self._cell_scores(feat)
        if self._accepted is not None:  # operator feedback: a term up to its accepted level is normal
            comps = self._accept(comps)
        conf = self.frames_learned / (self.frames_learned + float(self.params["confidence_frames"]))
        weighted = {k: self.weights[k] * v * conf for k, v in comps.items()}
        cell_now = np.max(np.stack(list(weighted.values())), axis=0)
        tau = float(self.params["cell_smoothing"])
        alpha = 1.0 if tau <= 0 else 1.0 - math.exp(-dt / tau)
        if self._cell_state is None:
            self._cell_state = np.zeros_like(cell_now)
        if int(self.params["spatial_pool"]) > 1:  # follow objects into neighbouring cells
            k = int(self.params["spatial_pool"])
            cell_now = cv2.dilate(cell_now.astype(np.float32), np.ones((k, k), np.uint8)).astype(np.float64)
        self._cell_state += alpha * (cell_now - self._cell_state)
        cell = self._cell_state
        top = int(self.params["top_cells"])
        flat = np.sort(cell, axis=None)
        raw = float(flat[-top:].mean())
        score = 0.0 if in_warmup else _sigmoid((raw - self.z_threshold) / self.z_scale)

        if force_learn or in_warmup or score < self.learn_below:
            self._learn(feat, comps, force=force_learn)

        details: dict = {"warmup": in_warmup, "raw": round(raw, 4), "confidence": round(conf, 4),
                         "learned": bool(force_learn or in_warmup or score < self.learn_below),
                         "active_cells": int(feat["active"].sum())}  # where something moves now
        regions: list[tuple[int, int, int, int]] = []
        if not in_warmup:
            regions = self._regions(cell, raw)
            details["components"] = {k: round(float(v.max()), 4) for k, v in weighted.items()}
            details["top_cells"] = self._top_cells(cell, weighted)
        return DetectorResult(score=float(score), regions=regions, details=details)

    def _cell_box(self, col: int, row: int, cols: int = 1, rows: int = 1) -> tuple[int, int, int, int]:
        h, w = self.shape
        gw, gh = self.grid
        x0, x1 = int(round(col * w / gw)), int(round((col + cols) * w / gw))
        y0, y1 = int(round(row * h / gh)), int(round((row + rows) * h / gh))
        return x0, y0, x1 - x0, y1 - y0

    def _regions(self, cell: np.ndarray, raw: float) -> list[tuple[int, int, int, int]]:
        """Boxes (analysis-frame pixels) around the groups of cells that drive the score."""
        peak = float(cell.max())
        if peak < 0.6 * self.z_threshold:
            return []
        level = max(0.6 * self.z_threshold, 0.5 * peak)
        mask = (cell >= level).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        found = []
        for i in range(1, n):
            cx, cy, cw, ch, _ = stats[i]
            found.append((float(cell[labels == i].max()), self._cell_box(int(cx), int(cy), int(cw), int(ch))))
        found.sort(key=lambda item: -item[0])
        return [box for _, box in found[: int(self.params["max_regions"])]]

    def _top_cells(self, cell: np.ndarray, weighted: dict[str, np.ndarray], k: int = 3) -> list[dict]:
        out = []
        for idx in np.argsort(cell, axis=None)[::-1][:k]:
            row, col = (int(v) for v in np.unravel_index(idx, cell.shape))
            if cell[row, col] <= 0:
                break
            contrib = {name: round(float(weighted[name][row, col]), 3) for name in COMPONENTS}
            out.append({"cell": [col, row], "box": list(self._cell_box(col, row)),
                        "score": round(float(cell[row, col]), 3),
                        "top": max(contrib, key=contrib.get), "contributions": contrib})
        return out

    # ------------------------------------------------------------------------------------
    # Detector API
    # ------------------------------------------------------------------------------------
    def score(self, gray: np.ndarray, timestamp: float) -> DetectorResult:
        """Score one analysis frame (grayscale uint8) taken at ``timestamp`` seconds."""
        return self._step(gray, timestamp, force_learn=False)

    def fit(self, frames: Iterable, fps: float = 10.0) -> "MotionDetector":
        """Learn from normal footage in bulk (the same code path as online learning).

        ``frames``: gray uint8 frames at ``fps``. An item that is None, or a whole clip
        (a 3-D array or a list of frames), marks a clip boundary so that motion is never
        measured across clips. Every frame is learned (no score gate): it is known normal.
        """
        gap = 10.0 * float(self.params["max_gap"])
        t = 0.0 if self._prev_t is None else self._prev_t + gap
        dt = 1.0 / float(fps)

        def one(frame):
            nonlocal t
            self._step(frame, t, force_learn=True)
            t += dt

        for item in frames:
            if item is None:
                t += gap
            elif isinstance(item, np.ndarray) and item.ndim == 2:
                one(item)
            else:
                t += gap
                for frame in item:
                    one(frame)
                t += gap
        self.reset()
        return self

    def feedback(self, frames: Iterable, fps: float = 10.0) -> dict:
        """An operator marked these frames a false alarm: accept what fired in them as normal.

        ``frames``: the analysis frames of the false alarm (gray uint8, like :meth:`fit`'s input)
        at ``fps``; None, or a whole clip (a 3-D array or a list of frames), separates clips.

        A false alarm is a few seconds of footage against a normal model with a memory of hours,
        so learning it the ordinary way would barely move anything. Instead each clip is scored
        as live, and the terms that made it fire are given an accepted level per cell: the value
        of that term in that cell while it fired. A term up to its accepted level no longer
        counts, and a term above it counts more and more, in full once it is ``feedback_margin``
        stronger: a clearly stronger event there still fires. (Cell, term) pairs are taken
        greedily, the one driving the strongest remaining frame first, until no frame of the clip
        scores above ``feedback_level`` x ``z_threshold`` (0.85 x 2.4: a score of about 0.3, below
        ``learn_below``) any more, so the situation stops firing with as few pairs as possible,
        optionally widened to ``feedback_spread`` neighbouring cells: other cells, and the other
        terms of the same cells, keep their full sensitivity. Accepted
        levels only grow (feedback accumulates) and are saved in :meth:`state_dict`. The frames
        are also learned as normal footage (as in :meth:`fit`), so the gates of online learning
        treat the situation as normal from then on.

        Each clip is measured against a background taken from the clip itself (its per-pixel
        median), so the area and dwell terms count even in a clip of a few seconds. The live
        motion chain (previous frame, background, smoothing) is left as it was.

        Returns a summary: frames measured, clips that fired (to this model), and per term the
        number of cells whose accepted level rose.
        """
        target = float(self.params["feedback_level"]) * self.z_threshold
        spread = max(0, int(self.params["feedback_spread"]))
        dt = 1.0 / float(fps)
        chain = (self._prev, self._prev_t, self._bg, self._bg_age, self._dwell, self._arrived, self._cell_state)
        accepted = None if self._accepted is None else {k: v.copy() for k, v in self._accepted.items()}
        measured = fired = 0
        try:
            for clip in self._feedback_clips(frames):
                works = [self._work(self._check_feedback_frame(f)) for f in clip]
                if len(works) < 2:
                    continue
                # the clip's own background (per-pixel median), mature at once
                bw, bh = self.bg_size
                sample = works[:: max(1, len(works) // 64)]
                smalls = np.stack([cv2.resize(w, (bw, bh), interpolation=cv2.INTER_AREA) for w in sample])
                self.reset()
                self._bg = np.median(smalls, axis=0).astype(np.float32)
                self._bg_age = max(8.0, float(self.params["dwell_after"]))
                self._dwell = np.zeros_like(self._bg)
                self._arrived = np.zeros(self._bg.shape, bool)
                terms = {k: [] for k in COMPONENTS}  # per term, the raw values of every frame
                confs = []
                for prev, work in zip(works, works[1:]):
                    feat = self._features(prev, work, dt)
                    for k, v in self._cell_scores(feat).items():
                        terms[k].append(v)
                    confs.append(self.frames_learned / (self.frames_learned + float(self.params["confidence_frames"])))
                    self._learn(feat, None, force=True)  # known normal now, as in fit()
                    measured += 1
                stacked = {k: np.stack(v) for k, v in terms.items()}  # (frames, rows, cols)
                before = accepted
                accepted = self._accept_clip(stacked, np.asarray(confs), dt, target, accepted)
                fired += accepted is not before
        finally:
            (self._prev, self._prev_t, self._bg, self._bg_age, self._dwell, self._arrived,
             self._cell_state) = chain
        raised = {k: 0 for k in COMPONENTS}
        if accepted is not None:
            old = self._accepted or {k: np.zeros(self.grid[::-1]) for k in COMPONENTS}
            if spread:
                kernel = np.ones((2 * spread + 1, 2 * spread + 1), np.uint8)
                accepted = {k: np.maximum(old[k], cv2.dilate(v.astype(np.float32), kernel).astype(np.float64))
                            for k, v in accepted.items()}
            raised = {k: int((accepted[k] > old[k] + 1e-9).sum()) for k in COMPONENTS}
            self._accepted = accepted
        return {"frames": measured, "clips_fired": fired, "cells": raised}

    def _accept_clip(self, terms: dict[str, np.ndarray], conf: np.ndarray, dt: float, target: float,
                     accepted: dict[str, np.ndarray] | None) -> dict[str, np.ndarray] | None:
        """Raise accepted levels, strongest (cell, term) first, until no frame of the clip
        (``terms``: per term, frames x rows x cols) scores above ``target`` (raw). Returns the
        new levels, or ``accepted`` itself when the clip does not reach ``target`` at all."""
        tau = float(self.params["cell_smoothing"])
        alpha = 1.0 if tau <= 0 else 1.0 - math.exp(-dt / tau)
        top = int(self.params["top_cells"])
        names = list(COMPONENTS)
        peak = np.stack([terms[k].max(axis=0) for k in names])  # the clip's strongest value per term and cell
        current = None if accepted is None else np.stack([accepted[k] for k in names])
        levels = np.zeros_like(peak) if current is None else current.copy()
        weights = np.array([self.weights[k] for k in names])[:, None, None, None]
        raw = np.stack([terms[k] for k in names])  # terms, frames, rows, cols
        margin = max(float(self.params["feedback_margin"]), 1e-6)
        window = int(math.ceil(2 * tau / dt)) if tau > 0 else 0
        changed = False
        for _ in range(4 * raw[0, 0].size * len(names)):
            eff = self._ramp(raw, levels[:, None], margin)
            weighted = weights * eff * conf[None, :, None, None]
            strongest = weighted.max(axis=0)
            # the live smoothing of each cell's strongest term, and of each term (to name it)
            cells = np.zeros_like(strongest)
            per_term = np.zeros_like(weighted)
            cell_state = np.zeros_like(strongest[0])
            term_state = np.zeros_like(weighted[:, 0])
            for f in range(len(strongest)):
                cell_state += alpha * (strongest[f] - cell_state)
                term_state += alpha * (weighted[:, f] - term_state)
                cells[f], per_term[:, f] = cell_state, term_state
            flat = cells.reshape(len(cells), -1)
            scores = np.sort(flat, axis=1)[:, -top:].mean(axis=1)
            hot = np.flatnonzero(scores > target)
            if not len(hot):
                break
            # in the frame that fires most, the strongest cell and the term that drives it
            f = int(hot[np.argmax(scores[hot])])
            cell = int(np.argmax(flat[f]))
            row, col = np.unravel_index(cell, cells.shape[1:])
            k = int(np.argmax(per_term[:, f, row, col]))
            # accept what this term showed there while it fired (the smoothing's memory)
            recent = float(raw[k, max(0, f - window):f + 1, row, col].max())
            if recent <= levels[k, row, col]:
                recent = float(peak[k, row, col])
                if recent <= levels[k, row, col]:
                    break  # nothing left to accept (cannot happen: the cell would not fire)
            levels[k, row, col] = recent
            changed = True
        if not changed:
            return accepted
        return {k: levels[i] for i, k in enumerate(names)}

    def _accept(self, comps: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each term with its accepted level removed: nothing up to the level, then a ramp over
        ``feedback_margin`` back to the full term (a clearly stronger event counts in full)."""
        margin = max(float(self.params["feedback_margin"]), 1e-6)
        return {k: self._ramp(v, self._accepted[k], margin) for k, v in comps.items()}

    @staticmethod
    def _ramp(value: np.ndarray, level: np.ndarray, margin: float) -> np.ndarray:
        """``value`` where nothing is accepted (level 0); else 0 up to ``level``, in full from
        ``level + margin``, linearly between."""
        if not level.any():
            return value
        return np.where(level > 0, value * np.clip((value - level) / margin, 0.0, 1.0), value)

    @staticmethod
    def _feedback_clips(frames: Iterable):
        """The clips of ``frames`` (None separates clips; a 3-D array or a list is a whole clip)."""
        clip: list = []
        for item in frames:
            if item is None:
                if clip:
                    yield clip
                clip = []
            elif isinstance(item, np.ndarray) and item.ndim == 2:
                clip.append(item)
            else:
                if clip:
                    yield clip
                clip = []
                yield list(item)
        if clip:
            yield clip

    def _check_feedback_frame(self, frame: np.ndarray) -> np.ndarray:
        frame = np.asarray(frame)
        if self.shape is not None and frame.ndim in (2, 3):
            (mh, mw), (h, w) = self.shape, frame.shape[:2]
            if abs(w / h - mw / mh) >= 0.03 * (mw / mh):
                raise ValueError(f"feedback frames are {w}x{h}, the model is for {mw}x{mh} analysis frames")
        return frame

    def state_dict(self) -> dict:
        """What was learned (JSON-serialisable): geometry, counters and per-cell statistics."""
        if self._model is None:
            return {"version": STATE_VERSION, "name": self.name, "shape": None}
        return {
            "version": STATE_VERSION,
            "name": self.name,
            "shape": list(self.shape),
            "grid": list(self.grid),
            "work_size": list(self.work_size),
            "frames_seen": int(self.frames_seen),
            "frames_learned": float(self.frames_learned),
            "model": {k: np.round(v, 6).tolist() for k, v in self._model.items()},
            "accepted": None if self._accepted is None else {
                k: np.round(v, 6).tolist() for k, v in self._accepted.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        if not state or state.get("shape") is None:
            self._model = None
            self._accepted = None
            self.shape = None
            self.frames_seen = 0
            self.frames_learned = 0.0
            self.reset()
            return
        if state.get("version") not in (2, STATE_VERSION):  # version 2: the same, without feedback
            raise ValueError(f"unsupported MotionDetector state version {state.get('version')!r}")
        h, w = state["shape"]
        self._init_geometry((int(h), int(w)))
        if list(self.grid) != list(state["grid"]) or list(self.work_size) != list(state.get("work_size", [])):
            raise ValueError(
                f"state was learned with another geometry (grid {state['grid']}, working size "
                f"{state.get('work_size')}) than work_width={self.work_width}, cell_size={self.cell_size} "
                f"give for a {w}x{h} frame"
            )
        self._init_model()
        gw, gh = self.grid
        model = {}
        for key, blank in self._model.items():
            if key not in state["model"]:
                raise ValueError(f"state is missing {key!r}")
            arr = np.asarray(state["model"][key], dtype=np.float64)
            if arr.shape != blank.shape:
                raise ValueError(f"state array {key!r} has shape {arr.shape}, expected {blank.shape}")
            model[key] = arr
        accepted = None
        if state.get("accepted") is not None:
            if not isinstance(state["accepted"], dict) or set(state["accepted"]) != set(COMPONENTS):
                raise ValueError(f"state 'accepted' must give every term: {', '.join(COMPONENTS)}")
            accepted = {}
            for key in COMPONENTS:
                arr = np.asarray(state["accepted"][key], dtype=np.float64)
                if arr.shape != (gh, gw):
                    raise ValueError(f"state array 'accepted.{key}' has shape {arr.shape}, expected {(gh, gw)}")
                accepted[key] = np.maximum(arr, 0.0)
        self._model = model
        self._accepted = accepted
        self.frames_seen = int(state.get("frames_seen", 0))
        self.frames_learned = float(state.get("frames_learned", 0.0))
        self.reset()
