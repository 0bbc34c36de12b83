"""The camera itself: covered, blurred, moved, frozen, dark or blinded (tamper and camera health).

:class:`CameraHealth` is fed the frames the camera loop already decodes (BGR or grayscale numpy
images with their timestamps, in seconds). At most every ``sample_seconds`` (0.5 s) of frame time
it takes one **sample**: the frame downscaled to ``width`` (160) px wide, in grey, and a few cheap
measurements of it (about 6.5 ms a sample on one core of the development machine, ORB matching
included: 2.6 ms per analysed frame at 5 fps; BENCHMARKS.md "Camera health"):

* over a grid of ``grid`` (16 x 12) cells, each cell's texture (mean absolute Laplacian) and
  contrast (standard deviation of its grey levels) and mean brightness;
* the brightness of the image: the 90th percentile of the cells' mean brightness (``bright_p90``:
  low only when nearly all of the image is dark, not when a part is) and the share of saturated pixels
  (grey level >= 245, ``saturated``);
* the mean absolute difference from the previous sample (``mad``, grey levels);
* ORB features matched against the camera's reference image, and the similarity transform
  (rotation, uniform scale, translation: a homography constrained to what a camera knocked aside
  does) that RANSAC fits to the matches (``cv2.estimateAffinePartial2D``).

**The reference** (what is normal for this camera) is learned from normal footage: :meth:`fit`
(the frames "learn what is normal now" reads), or, when a monitor has no reference, online from its
first ``learn_seconds`` (60) of frames. It holds the reference image (the per-pixel median of the
learned samples, 160 px grey, stored in the state as a base64 PNG), each cell's median texture and
contrast, histograms of ``bright_p90`` and ``saturated`` (so a camera that was learned by day and
by night, IR or not, knows both modes: switching between them is not tamper), the noise floor of
``mad`` (its 5th percentile between samples ``sample_seconds`` apart) and the usual number of
feature matches (10th percentile over the learned samples). While nothing is wrong (no condition
present, pending or active), the reference keeps learning slowly (exponential, time constant
``adapt_seconds``, 600 s): cell statistics, brightness histograms, the noise floor and the
reference image (its features recomputed every ``refresh_seconds``, 120 s, from the running mean of
the well aligned samples), so dusk, seasons or a parked car are followed; a sudden change is not
(it is reported, or pending, long before it could be learned).

**The conditions**, each computed per sample, in this order of precedence (a sample shows at most
one of the first five: the first that applies explains the others):

==========  ==========================================================================================
``dark``    ``bright_p90`` below ``dark_ratio`` (0.3) x the learned low (2nd percentile of the learned
            ``bright_p90``) and below ``dark_level`` (50 grey levels): the whole image collapsed
            (lights out, a black cover over all of it, brightness x 0.05). Measurements:
            ``bright_p90``, ``learned_low``.
``blinded`` ``saturated`` at least ``blind_share`` (0.5) and at least the learned high (98th
            percentile) + ``blind_margin`` (0.25): most of the image saturated (a torch in the lens,
            a white flood).
``covered`` the share of textured cells (reference contrast >= ``cell_min_std`` 4 grey levels) that
            lost their texture (below ``lost_ratio`` 0.25 x their reference) *and* their contrast
            (below ``flat_ratio`` 0.3 x their reference) is at least ``covered_share`` (0.6): a hand,
            a cloth, a bag, paint, a grey or black board over most of the view. A blur keeps the
            cells' contrast (only their edges go), so it is not a cover. Measurement: ``covered``.
``blurred`` ``sharpness`` below ``blur_ratio`` (0.4): the median over the textured cells of
            (texture / contrast) against the same ratio in the reference. Dividing by the contrast
            makes it blind to light changes (dusk halves both). Measurement: ``sharpness``.
``moved``   with at least ``moved_min_inliers`` (10) RANSAC inliers, the transform moves the
            image centre by more than ``moved_shift`` (4 % of the width) or turns it by more than
            ``moved_degrees`` (3 degrees) or scales it by more than ``moved_scale`` (10 %); or
            fewer than ``lost_matches`` x the learned usual matches (0.3, at least 6 inliers)
            while the image has texture (not covered, dark, blinded nor blurred): the view no longer
            matches its reference. The transform is the median of the fits with enough inliers in
            the last ``moved_window`` (2 s): one wrong fit is outvoted, a sample with too few
            matches keeps the verdict of the window. Measurements: ``shift`` (% of the width), ``rotation``
            (degrees), ``scale``, ``inliers``, ``usual_inliers``.
``frozen``  (independent of the others, but not while dark, blinded or covered: a black or covered
            image does not change either) ``mad`` at most ``frozen_mad`` (0.15 grey levels) and at
            most ``frozen_ratio`` (0.1) x the learned noise floor, sample after sample, for
            ``frozen_seconds`` (10 s): the stream keeps delivering the same picture. Real sensor
            noise and encoder refreshes keep ``mad`` of a static scene well above that (0.5 to 4
            on the footage we have). A camera whose learned noise floor is itself below
            ``frozen_mad`` (its normal footage held still without noise) has this condition off.
            Measurements: ``mad``, ``noise_floor``, ``seconds``.
==========  ==========================================================================================

**Confirmation.** A condition present in a sample becomes *pending*; it is reported (a
:class:`HealthChange` with ``started=True``) once it was present for ``confirm_seconds`` (3 s;
``blur_confirm_seconds`` 5 s for ``blurred``, which must "stay there"; ``frozen_seconds`` for
``frozen``), gaps of absence shorter than ``gap_seconds`` (1 s) not breaking it. An active
condition ends (``started=False``, with how long it lasted) once it was absent for
``clear_seconds`` (5 s). A camera without a reference reports nothing (it is learning).

Every parameter has its default in :data:`HEALTH_DEFAULTS` and may be overridden per camera
(``CameraHealth(**params)``); an unknown name raises ValueError naming it. Deterministic: the
same frames and timestamps give the same changes (OpenCV's ORB and RANSAC are seeded with a
fixed seed before each use). :meth:`state_dict` is JSON (version :data:`STATE_VERSION`);
:meth:`load_state_dict` checks every part and raises ValueError naming the problem, changing
nothing. No Django here.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Iterable

import cv2
import numpy as np

STATE_VERSION = 1
CONDITIONS = ("dark", "blinded", "covered", "blurred", "moved", "frozen")
#: Severity of each condition's event: a cover or a push aside is an attack on the camera.
SEVERITY = {"covered": "high", "moved": "high", "blurred": "medium", "frozen": "medium",
            "dark": "medium", "blinded": "medium"}

HEALTH_DEFAULTS = {
    "width": 160,               # px: samples are downscaled to this width
    "grid": [16, 12],           # cells: columns x rows
    "sample_seconds": 0.5,      # at most one sample per this much frame time
    "learn_seconds": 60.0,      # without a reference: learn one from this much footage first
    "adapt_seconds": 600.0,     # time constant of the slow online learning while healthy
    "refresh_seconds": 120.0,   # the reference image's features are recomputed at most this often
    "confirm_seconds": 3.0,     # present this long before it is reported
    "blur_confirm_seconds": 5.0,
    "clear_seconds": 5.0,       # absent this long before it ends
    "gap_seconds": 1.0,         # shorter absences do not break a pending condition
    "cell_min_std": 4.0,        # grey levels: a cell with less contrast in the reference has no texture to lose
    "lost_ratio": 0.25,
    "flat_ratio": 0.3,
    "covered_share": 0.6,
    "blur_ratio": 0.4,
    "dark_ratio": 0.3,
    "dark_level": 50.0,
    "blind_share": 0.5,
    "blind_margin": 0.25,
    "moved_shift": 4.0,         # % of the width
    "moved_degrees": 3.0,
    "moved_scale": 0.10,
    "moved_min_inliers": 10,
    "moved_window": 2.0,        # s: the transform is the median of the confident fits of this window
    "lost_matches": 0.3,
    "orb_features": 500,
    "frozen_seconds": 10.0,
    "frozen_mad": 0.15,
    "frozen_ratio": 0.1,
}

#: Upper bounds of the parameters that set a sample's cost (the grid: its larger side).
_MOST = {"width": 1280, "grid": 64, "orb_features": 5000}
_SATURATED = 245
_HIST_BINS = 64  # histograms of bright_p90 (0..256) and saturated (0..1)
_MAX_LEARN_SAMPLES = 240
_SEED = 12345


@dataclass
class HealthChange:
    """A condition starting (``started``) or ending, at frame time ``ts``."""

    condition: str
    started: bool
    ts: float
    since: float  # when it began (frame time)
    seconds: float  # how long it has lasted (at the start: the confirmation time)
    measurements: dict = field(default_factory=dict)
    sentence: str = ""

    @property
    def kind(self) -> str:
        return self.condition

    def as_dict(self) -> dict:
        return {"condition": self.condition, "started": self.started, "ts": self.ts, "since": self.since,
                "seconds": round(self.seconds, 2), "measurements": dict(self.measurements), "sentence": self.sentence}


@dataclass
class _Track:
    """One condition's life: pending (first/last seen), active (since), measurements at their worst."""

    first: float | None = None
    last: float | None = None
    active_since: float | None = None
    absent_since: float | None = None
    measurements: dict = field(default_factory=dict)


def _seconds(s: float) -> str:
    s = max(0.0, s)
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min"


class ReferenceLearner:
    """Learns a :class:`CameraHealth` reference from footage fed one frame at a time, in bounded memory.

    ``add`` takes (image, ts) pairs, bare images (one per ``sample_seconds``) or ``None`` between
    stretches of footage (no ``mad`` across a cut); ``finish`` learns the reference (ValueError when
    no frame came). Samples are measured as they come (their ``mad`` with the one before); of the
    measured samples at most ``2 x _MAX_LEARN_SAMPLES`` are kept, evenly spaced (past that, every
    other one is let go and the spacing doubles), so an hour of footage costs what a few minutes do.
    """

    def __init__(self, health: "CameraHealth"):
        self.health = health
        self.samples: list[dict] = []
        self.measured = 0
        self._every = 1  # keep one measured sample in this many
        self._last: float | None = None
        self._prev: np.ndarray | None = None
        self._t_auto = 0.0

    def add(self, item) -> None:
        gap = self.health.params["sample_seconds"]
        if item is None:
            self._last = self._prev = None
            return
        if isinstance(item, tuple):
            image, ts = item
        else:
            image, ts = item, self._t_auto
            self._t_auto += gap
        if self._last is not None and 0 <= ts - self._last < gap * 0.999:
            return
        s = self.health.measure(image)
        near = self._prev is not None and self._prev.shape == s["gray"].shape and (ts - self._last) <= 3 * gap
        s["mad"] = float(np.mean(cv2.absdiff(s["gray"], self._prev))) if near else None
        self._last, self._prev = ts, s["gray"]
        if self.measured % self._every == 0:
            self.samples.append(s)
            if len(self.samples) >= 2 * _MAX_LEARN_SAMPLES:
                self.samples = self.samples[::2]
                self._every *= 2
        self.measured += 1

    def finish(self) -> "CameraHealth":
        if not self.samples:
            raise ValueError("no frames to learn the camera's health reference from")
        self.health._learn(self.samples)
        return self.health


class CameraHealth:
    """One camera's health monitor: :meth:`update` it with frames; read the changes it returns."""

    def __init__(self, **params):
        unknown = set(params) - set(HEALTH_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown camera health parameter(s): {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(sorted(HEALTH_DEFAULTS))})")
        p = {**HEALTH_DEFAULTS, **params}
        try:
            grid = [int(v) for v in p["grid"]]
            if len(grid) != 2 or min(grid) < 2:
                raise ValueError
            for k, v in p.items():
                if k != "grid":
                    p[k] = float(v)
                    if not math.isfinite(p[k]) or p[k] < 0:
                        raise ValueError(k)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bad camera health parameter {exc.args[0] if exc.args else 'grid'!r}: "
                             "numbers >= 0, grid [columns, rows] of at least 2 x 2") from None
        if p["width"] < 32 or p["sample_seconds"] <= 0:
            raise ValueError("camera health 'width' must be at least 32 px and 'sample_seconds' above 0")
        for key, most in _MOST.items():  # what a sample may cost, whatever a camera's settings say
            if (max(grid) if key == "grid" else p[key]) > most:
                raise ValueError(f"camera health {key!r} must be at most {most:g}")
        p["grid"] = grid
        self.params = p
        self.width = int(p["width"])
        self.grid = (grid[0], grid[1])
        self._orb = cv2.ORB_create(nfeatures=int(p["orb_features"]), edgeThreshold=15, patchSize=15, fastThreshold=10)
        self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        self.ref: dict | None = None  # the learned reference (see state_dict)
        self._ref_kp = None
        self._ref_desc = None
        self._learning: list = []  # samples collected while learning online / in fit
        self._learn_began: float | None = None
        self.reset()

    # -- state of the stream ----------------------------------------------------------
    def reset(self) -> None:
        """Forget the stream (its last sample, pending and active conditions), keep the reference."""
        self._last_ts: float | None = None
        self._prev: np.ndarray | None = None
        self._tracks = {c: _Track() for c in CONDITIONS}
        self._frozen_since: float | None = None
        self._estimates: list = []  # (ts, shift, rotation, scale, inliers) of the confident fits of moved_window
        self.last: dict = {}  # the latest sample's measurements
        self.samples = 0

    @property
    def fitted(self) -> bool:
        return self.ref is not None

    @property
    def active(self) -> list[str]:
        """Conditions reported and not yet ended."""
        return [c for c, t in self._tracks.items() if t.active_since is not None]

    @property
    def suspect(self) -> bool:
        """A condition is active or pending (present in the latest samples)."""
        return any(t.active_since is not None or t.first is not None for t in self._tracks.values())

    # -- measurements -----------------------------------------------------------------
    def _gray(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        if w != self.width:
            image = cv2.resize(image, (self.width, max(8, round(h * self.width / w))), interpolation=cv2.INTER_AREA)
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return np.ascontiguousarray(image, dtype=np.uint8)

    def _cells(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per cell: mean |Laplacian| (texture), std (contrast), mean (brightness); rows x columns."""
        cols, rows = self.grid
        h, w = gray.shape
        g = gray.astype(np.float32)
        lap = np.abs(cv2.Laplacian(g, cv2.CV_32F))
        ys = np.linspace(0, h, rows + 1).astype(int)
        xs = np.linspace(0, w, cols + 1).astype(int)
        # Cell sums through integral images: a few numpy operations whatever the grid.
        def sums(a):
            ii = cv2.integral(a)
            return ii[np.ix_(ys[1:], xs[1:])] - ii[np.ix_(ys[:-1], xs[1:])] - ii[np.ix_(ys[1:], xs[:-1])] + ii[np.ix_(ys[:-1], xs[:-1])]
        area = np.outer(np.diff(ys), np.diff(xs)).astype(np.float64)
        mean = sums(g) / area
        var = np.maximum(sums(g * g) / area - mean * mean, 0.0)
        return sums(lap) / area, np.sqrt(var), mean

    def _match(self, gray: np.ndarray) -> dict:
        """Inliers and the similarity transform of ``gray`` onto the reference image."""
        out = {"inliers": 0, "shift": None, "rotation": None, "scale": None}
        if self._ref_desc is None or len(self._ref_kp) < 4:
            return out
        cv2.setRNGSeed(_SEED)
        kp, desc = self._orb.detectAndCompute(gray, None)
        if desc is None or len(kp) < 4:
            return out
        pairs = self._matcher.knnMatch(desc, self._ref_desc, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
        if len(good) < 4:
            return out
        src = np.float32([kp[m.queryIdx].pt for m in good])
        dst = np.float32([self._ref_kp[m.trainIdx].pt for m in good])
        cv2.setRNGSeed(_SEED)
        m, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0,
                                                 maxIters=2000, confidence=0.99)
        if m is None or inliers is None:
            return out
        h, w = gray.shape
        centre = np.array([w / 2.0, h / 2.0])
        moved = m[:, :2] @ centre + m[:, 2] - centre
        out.update(inliers=int(inliers.sum()), shift=float(np.hypot(*moved) / w * 100.0),
                   rotation=float(abs(math.degrees(math.atan2(m[1, 0], m[0, 0])))),
                   scale=float(math.hypot(m[0, 0], m[1, 0])))
        return out

    def measure(self, image: np.ndarray) -> dict:
        """The sample's measurements (without the reference-relative ones): grey image and cells."""
        gray = self._gray(image)
        tex, std, mean = self._cells(gray)
        return {"gray": gray, "tex": tex, "std": std, "mean": mean,
                "bright_p90": float(np.percentile(mean, 90)),
                "saturated": float(np.count_nonzero(gray >= _SATURATED)) / gray.size}

    # -- learning ---------------------------------------------------------------------
    def fit(self, frames: Iterable) -> "CameraHealth":
        """Learn the reference from normal footage: (image, ts) pairs, or images (taken as one per
        ``sample_seconds``); ``None`` between clips. Replaces any reference."""
        learner = ReferenceLearner(self)
        for item in frames:
            learner.add(item)
        return learner.finish()

    def _learn(self, samples: list) -> None:
        if len(samples) > _MAX_LEARN_SAMPLES:
            idx = np.linspace(0, len(samples) - 1, _MAX_LEARN_SAMPLES).round().astype(int)
            samples = [samples[i] for i in idx]
        shapes = {s["gray"].shape for s in samples}
        shape = max(shapes, key=lambda sh: sum(s["gray"].shape == sh for s in samples))
        samples = [s for s in samples if s["gray"].shape == shape]
        image = np.median(np.stack([s["gray"] for s in samples]), axis=0).astype(np.uint8)
        p90 = np.histogram([s["bright_p90"] for s in samples], bins=_HIST_BINS, range=(0, 256))[0]
        sat = np.histogram([s["saturated"] for s in samples], bins=_HIST_BINS, range=(0, 1.0 + 1e-9))[0]
        mads = [s["mad"] for s in samples if s.get("mad") is not None]
        ref = {
            "samples": len(samples),
            "image": image,
            "tex": np.median(np.stack([s["tex"] for s in samples]), axis=0),
            "std": np.median(np.stack([s["std"] for s in samples]), axis=0),
            "hist_p90": p90.astype(np.float64),
            "hist_sat": sat.astype(np.float64),
            "noise_floor": float(np.percentile(mads, 5)) if mads else None,
            "inliers": 0.0,
        }
        self._set_ref(ref)
        inl = [self._match(s["gray"])["inliers"] for s in samples[:: max(1, len(samples) // 40)]]
        self.ref["inliers"] = float(np.percentile(inl, 10)) if inl else 0.0
        self._ref_avg = image.astype(np.float32)
        self._refreshed: float | None = None

    def _set_ref(self, ref: dict) -> None:
        self.ref = ref
        cv2.setRNGSeed(_SEED)
        self._ref_kp, self._ref_desc = self._orb.detectAndCompute(ref["image"], None)
        self._ref_avg = ref["image"].astype(np.float32)
        self._refreshed = None

    @staticmethod
    def _hist_quantile(hist: np.ndarray, q: float, top: float) -> float:
        total = hist.sum()
        if total <= 0:
            return float("nan")
        cum = np.cumsum(hist) / total
        i = int(np.searchsorted(cum, q))
        return (min(i, len(hist) - 1) + 0.5) * top / len(hist)

    def _adapt(self, s: dict, match: dict, ts: float) -> None:
        """Slow online learning while nothing is wrong."""
        ref, p = self.ref, self.params
        a = min(1.0, p["sample_seconds"] / max(p["adapt_seconds"], 1e-6))
        ref["tex"] = (1 - a) * ref["tex"] + a * s["tex"]
        ref["std"] = (1 - a) * ref["std"] + a * s["std"]
        decay = 1 - a
        ref["hist_p90"] = ref["hist_p90"] * decay
        ref["hist_p90"][min(_HIST_BINS - 1, int(s["bright_p90"] / 256 * _HIST_BINS))] += 1.0
        ref["hist_sat"] = ref["hist_sat"] * decay
        ref["hist_sat"][min(_HIST_BINS - 1, int(s["saturated"] * _HIST_BINS))] += 1.0
        if s.get("mad") is not None and ref.get("noise_floor") is not None and self._frozen_since is None:
            # slowly towards the quieter samples (a quieter night), slower still upwards; never from a
            # stretch that may be frozen
            step = a if s["mad"] < ref["noise_floor"] else a * 0.05
            ref["noise_floor"] += step * (s["mad"] - ref["noise_floor"])
        if match["inliers"] >= p["moved_min_inliers"] and (match["shift"] or 0) < 1.0 and s["gray"].shape == ref["image"].shape:
            self._ref_avg = (1 - a) * self._ref_avg + a * s["gray"]
            if self._refreshed is None:
                self._refreshed = ts
            elif ts - self._refreshed >= p["refresh_seconds"]:
                ref["image"] = self._ref_avg.round().astype(np.uint8)
                cv2.setRNGSeed(_SEED)
                self._ref_kp, self._ref_desc = self._orb.detectAndCompute(ref["image"], None)
                self._refreshed = ts

    # -- the conditions ---------------------------------------------------------------
    def _present(self, s: dict, ts: float) -> dict[str, dict]:
        """The conditions this sample shows, with their measurements."""
        ref, p = self.ref, self.params
        found: dict[str, dict] = {}
        low = self._hist_quantile(ref["hist_p90"], 0.02, 256.0)
        if s["bright_p90"] < min(p["dark_ratio"] * low, p["dark_level"]):
            found["dark"] = {"bright_p90": round(s["bright_p90"], 1), "learned_low": round(low, 1),
                             "ratio": round(s["bright_p90"] / max(low, 1e-6), 3)}
        high = self._hist_quantile(ref["hist_sat"], 0.98, 1.0) - 0.5 / _HIST_BINS
        if not found and s["saturated"] >= max(p["blind_share"], high + p["blind_margin"]):
            found["blinded"] = {"saturated": round(s["saturated"], 3), "learned_high": round(max(high, 0.0), 3)}
        textured = ref["std"] >= p["cell_min_std"]
        n = int(textured.sum())
        if not found and n:
            lost = (s["tex"] < p["lost_ratio"] * ref["tex"]) & (s["std"] < p["flat_ratio"] * ref["std"]) & textured
            share = float(lost.sum()) / n
            s["covered"] = share
            if share >= p["covered_share"]:
                found["covered"] = {"covered": round(share, 3), "cells": n}
        if not found and n:
            eps = 1e-3
            ratio = (s["tex"] / (s["std"] + eps)) / (ref["tex"] / (ref["std"] + eps) + eps)
            sharp = float(np.median(ratio[textured]))
            s["sharpness"] = sharp
            if sharp < p["blur_ratio"]:
                found["blurred"] = {"sharpness": round(sharp, 3)}
        match = None
        if not found:
            match = self._match(s["gray"])
            s["match"] = match
            usual = ref.get("inliers") or 0.0
            if match["inliers"] >= p["moved_min_inliers"]:
                self._estimates.append((ts, match["shift"], match["rotation"], match["scale"], match["inliers"]))
            self._estimates = [e for e in self._estimates if ts - e[0] <= p["moved_window"] + 1e-6]
            m = {"inliers": match["inliers"], "usual_inliers": round(usual, 1)}
            if self._estimates:
                # the median of the confident estimates of the last moved_window seconds: one
                # wrong fit (few features, a crowd) is outvoted, a sample with too few matches holds
                shift, rotation, scale = (float(np.median([e[k] for e in self._estimates])) for k in (1, 2, 3))
                m.update(shift=round(shift, 2), rotation=round(rotation, 2), scale=round(scale, 3))
                if shift > p["moved_shift"] or rotation > p["moved_degrees"] or abs(scale - 1.0) > p["moved_scale"]:
                    found["moved"] = m
            if (match["inliers"] < p["moved_min_inliers"] and usual >= p["moved_min_inliers"]
                    and match["inliers"] < max(6.0, p["lost_matches"] * usual)):
                m = {"inliers": match["inliers"], "usual_inliers": round(usual, 1)}
                found["moved"] = m
        else:
            self._estimates = []
        mad = s.get("mad")
        if mad is not None and not ({"dark", "blinded", "covered"} & set(found)):
            floor = ref.get("noise_floor")
            # A camera whose learned footage itself held still without noise (floor below frozen_mad:
            # a synthetic or already frozen stream) cannot tell frozen from normal: off.
            limit = p["frozen_mad"] if floor is None else min(p["frozen_mad"], p["frozen_ratio"] * floor)
            if floor is not None and floor < p["frozen_mad"]:
                limit = -1.0
            if mad <= limit:
                if self._frozen_since is None:
                    self._frozen_since = self._last_ts if self._last_ts is not None else ts
                lasted = ts - self._frozen_since
                if lasted >= p["frozen_seconds"] - 1e-6:
                    found["frozen"] = {"mad": round(mad, 4), "noise_floor": None if floor is None else round(floor, 3),
                                       "seconds": round(lasted, 1)}
            else:
                self._frozen_since = None
        else:
            self._frozen_since = None
        s["match"] = match
        return found

    def _sentence(self, condition: str, m: dict, started: bool, seconds: float) -> str:
        if not started:
            what = {"covered": "Camera view no longer covered", "blurred": "Camera view sharp again",
                    "moved": "Camera view back on its reference", "frozen": "Camera image moving again",
                    "dark": "Camera image no longer dark", "blinded": "Camera no longer blinded"}[condition]
            return f"{what} (lasted {_seconds(seconds)})"
        if condition == "covered":
            return f"Camera view covered: {m['covered'] * 100:.0f}% of the image lost its texture"
        if condition == "blurred":
            return f"Camera view blurred: sharpness at {m['sharpness'] * 100:.0f}% of its usual level"
        if condition == "moved":
            if "shift" in m:
                return (f"Camera moved: the view shifted by {m['shift']:.1f}% of its width and turned "
                        f"{m['rotation']:.1f} degrees from its reference")
            return (f"Camera moved: the view no longer matches its reference ({m['inliers']} matching points, "
                    f"usually {m['usual_inliers']:.0f})")
        if condition == "frozen":
            return f"Camera image frozen: the same picture for {_seconds(m['seconds'])}"
        if condition == "dark":
            return (f"Camera image dark: brightness fell to {m['ratio'] * 100:.0f}% of the darkest it was "
                    f"learned ({m['bright_p90']:.0f} of 255)")
        return f"Camera blinded: {m['saturated'] * 100:.0f}% of the image saturated"

    # -- the API --------------------------------------------------------------------
    def update(self, image: np.ndarray, ts: float) -> list[HealthChange]:
        """Feed one frame (BGR or grey, any size) at frame time ``ts`` (seconds); the conditions that
        started or ended with it. Frames within ``sample_seconds`` of the last sample cost nothing."""
        p = self.params
        if self._last_ts is not None and ts < self._last_ts:
            self.reset()  # time went backwards (a file rewound): a new stream
        if self._last_ts is not None and ts - self._last_ts < p["sample_seconds"] * 0.999:
            return []
        s = self.measure(image)
        gap = None if self._last_ts is None else ts - self._last_ts
        same_shape = self._prev is not None and self._prev.shape == s["gray"].shape
        s["mad"] = float(np.mean(cv2.absdiff(s["gray"], self._prev))) if same_shape and gap <= 3 * p["sample_seconds"] else None
        self._prev = s["gray"]
        self.samples += 1
        if self.ref is None:
            self._last_ts = ts
            if self._learn_began is None:
                self._learn_began = ts
            self._learning.append(s)
            if ts - self._learn_began >= p["learn_seconds"] - 1e-6:
                self._learn(self._learning)
                self._learning, self._learn_began = [], None
            self.last = {"learning": True}
            return []
        found = self._present(s, ts)
        self._last_ts = ts
        self.last = {"bright_p90": round(s["bright_p90"], 1), "saturated": round(s["saturated"], 3),
                     "covered": round(s.get("covered", 0.0), 3), "sharpness": round(s.get("sharpness", 1.0), 3),
                     "mad": None if s["mad"] is None else round(s["mad"], 3),
                     "inliers": (s.get("match") or {}).get("inliers"), "present": sorted(found)}
        changes = self._advance(found, ts)
        if not found and not self.suspect and s.get("match") is not None:
            self._adapt(s, s["match"], ts)
        return changes

    def _advance(self, found: dict[str, dict], ts: float) -> list[HealthChange]:
        p = self.params
        changes = []
        for c in CONDITIONS:
            t = self._tracks[c]
            if c in found:
                t.absent_since = None
                if t.first is None or (t.last is not None and ts - t.last > p["gap_seconds"] + p["sample_seconds"]):
                    if t.active_since is None:
                        t.first = ts
                t.last = ts
                t.measurements = found[c]
                if t.active_since is None:
                    need = {"blurred": p["blur_confirm_seconds"], "frozen": 0.0}.get(c, p["confirm_seconds"])
                    since = t.first - (found[c]["seconds"] if c == "frozen" else 0.0)
                    if ts - t.first >= need - 1e-6:
                        t.active_since = since
                        changes.append(HealthChange(c, True, ts, since, ts - since, dict(found[c]),
                                                    self._sentence(c, found[c], True, ts - since)))
            else:
                if t.active_since is None:
                    if t.first is not None and (t.last is None or ts - t.last > p["gap_seconds"]):
                        t.first = t.last = None
                    continue
                if t.absent_since is None:
                    t.absent_since = ts
                if ts - t.absent_since >= p["clear_seconds"] - 1e-6:
                    lasted = t.absent_since - t.active_since
                    changes.append(HealthChange(c, False, ts, t.active_since, lasted, dict(t.measurements),
                                                self._sentence(c, t.measurements, False, lasted)))
                    self._tracks[c] = _Track()
        return changes

    def close(self, ts: float | None = None) -> list[HealthChange]:
        """End every active condition (the stream stops): the changes to record."""
        changes = []
        for c in CONDITIONS:
            t = self._tracks[c]
            if t.active_since is not None:
                end = ts if ts is not None else (self._last_ts or t.active_since)
                lasted = max(0.0, end - t.active_since)
                changes.append(HealthChange(c, False, end, t.active_since, lasted, dict(t.measurements),
                                            self._sentence(c, t.measurements, False, lasted)))
            self._tracks[c] = _Track()
        return changes

    # -- state ------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The learned reference as JSON-able data (``{"version", "fitted": False}`` before learning)."""
        if self.ref is None:
            return {"version": STATE_VERSION, "fitted": False}
        ref = self.ref
        ok, png = cv2.imencode(".png", ref["image"])
        return {
            "version": STATE_VERSION,
            "fitted": True,
            "width": self.width,
            "grid": list(self.grid),
            "samples": int(ref["samples"]),
            "image_png": base64.b64encode(png.tobytes()).decode("ascii"),
            "tex": np.round(ref["tex"], 4).tolist(),
            "std": np.round(ref["std"], 4).tolist(),
            "hist_p90": np.round(ref["hist_p90"], 5).tolist(),
            "hist_sat": np.round(ref["hist_sat"], 5).tolist(),
            "noise_floor": ref["noise_floor"],
            "inliers": ref["inliers"],
        }

    def load_state_dict(self, state: dict) -> None:
        """Load a :meth:`state_dict`; anything wrong raises ValueError naming it, changing nothing."""
        if not isinstance(state, dict):
            raise ValueError(f"camera health state must be a dict, not {type(state).__name__}")
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported camera health state version {state.get('version')!r} "
                             f"(this code reads version {STATE_VERSION})")
        if not state.get("fitted"):
            self.ref = None
            self._ref_kp = self._ref_desc = None
            self.reset()
            return
        if state.get("width") != self.width:
            raise ValueError(f"camera health state was learned at {state.get('width')!r} px wide, this monitor uses {self.width}")
        if list(state.get("grid") or []) != list(self.grid):
            raise ValueError(f"camera health state was learned on a {state.get('grid')!r} grid, this monitor has {list(self.grid)}")
        try:
            image = cv2.imdecode(np.frombuffer(base64.b64decode(state["image_png"], validate=True), np.uint8),
                                 cv2.IMREAD_GRAYSCALE)
        except (KeyError, TypeError, ValueError):
            image = None
        if image is None or image.shape[1] != self.width:
            raise ValueError("camera health state 'image_png' is missing or not a grey PNG of the monitor's width")
        cols, rows = self.grid
        ref = {"image": image}
        for key, shape in (("tex", (rows, cols)), ("std", (rows, cols)), ("hist_p90", (_HIST_BINS,)),
                           ("hist_sat", (_HIST_BINS,))):
            try:
                arr = np.asarray(state[key], dtype=np.float64)
            except KeyError:
                raise ValueError(f"camera health state is missing {key!r}") from None
            except (TypeError, ValueError):
                raise ValueError(f"camera health state {key!r} is not numeric") from None
            if arr.shape != shape:
                raise ValueError(f"camera health state {key!r} has shape {arr.shape}, expected {shape}")
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ValueError(f"camera health state {key!r} holds a negative or non-finite value")
            ref[key] = arr
        for key in ("noise_floor", "inliers", "samples"):
            v = state.get(key)
            if key == "noise_floor" and v is None:
                ref[key] = None
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"camera health state {key!r} must be a number >= 0, not {v!r}")
            ref[key] = float(v)
        self._set_ref(ref)
        self._learning, self._learn_began = [], None
        self.reset()
