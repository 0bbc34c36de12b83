"""Offline evaluation of detectors on UCSD-style datasets, with the live loop's own code.

Layout of DATASET_DIR: videos/training/*.mp4 (normal only, to learn normal),
videos/testing/*.mp4 and labels/<clip>.txt (one 0/1 per frame). Frames go through
``inference.e2e.analysis_images`` / ``detector_input`` and the detector's ``score`` exactly as in
the live loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .e2e import analysis_images, detector_input
from .sources import open_source


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); NaN with one class."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average_rank = ends - (counts - 1) / 2.0  # 1-based average rank of each distinct value
    ranks = average_rank[inverse]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def minmax(values: np.ndarray) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    return (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)


def clip_frames(path: Path, width: int, detector=None):
    """(media time, the analysis frame ``detector`` reads) for every frame of a video file."""
    with open_source(str(path)) as source:
        while (frame := source.read()) is not None:
            yield frame.timestamp, detector_input(detector, *analysis_images(frame.image, width))


def read_labels(path: Path) -> np.ndarray:
    return np.array([int(x) for x in path.read_text().split()], dtype=np.int8)


@dataclass
class ClipResult:
    name: str
    scores: np.ndarray
    labels: np.ndarray
    seconds: float  # detector time (analysis frame + score) for the clip

    @property
    def auc(self) -> float:
        return roc_auc(self.scores, self.labels)


@dataclass
class Evaluation:
    detector: str
    threshold: float
    train_seconds: float
    clips: list[ClipResult] = field(default_factory=list)

    def summary(self) -> dict:
        scores = np.concatenate([c.scores for c in self.clips]) if self.clips else np.zeros(0)
        labels = np.concatenate([c.labels for c in self.clips]) if self.clips else np.zeros(0)
        per_clip = np.concatenate([minmax(c.scores) for c in self.clips]) if self.clips else np.zeros(0)
        normal, anomalous = labels == 0, labels == 1
        alarms = scores >= self.threshold
        frames = int(len(scores))
        return {
            "detector": self.detector,
            "frames": frames,
            "auc_causal": round(roc_auc(scores, labels), 4),
            "auc_per_clip": round(roc_auc(per_clip, labels), 4),
            "false_alarm_rate": round(float(alarms[normal].mean()) if normal.any() else float("nan"), 4),
            "recall": round(float(alarms[anomalous].mean()) if anomalous.any() else float("nan"), 4),
            "threshold": self.threshold,
            "ms_per_frame": round(1000 * sum(c.seconds for c in self.clips) / max(frames, 1), 3),
            "train_seconds": round(self.train_seconds, 2),
        }


def evaluate(dataset_dir: Path, detector, *, name: str, threshold: float, width: int = 360,
             max_clips: int | None = None, max_train: int | None = None, progress=None) -> Evaluation:
    """Learn normal from the training clips, then score every test clip frame by frame, causally.

    The detector keeps learning online during the test clips, as it does live; only the
    frame-to-frame motion chain is reset between clips (they are separate recordings).
    """
    dataset_dir = Path(dataset_dir)
    train = sorted((dataset_dir / "videos" / "training").glob("*.mp4"))[:max_train]
    tests = sorted((dataset_dir / "videos" / "testing").glob("*.mp4"))[:max_clips]
    labelled = [(p, dataset_dir / "labels" / f"{p.stem}.txt") for p in tests]
    labelled = [(p, label) for p, label in labelled if label.exists()]

    started = time.perf_counter()
    if train and hasattr(detector, "fit"):
        def frames():
            for path in train:
                yield None
                for _, image in clip_frames(path, width, detector):
                    yield image

        detector.fit(frames())
    train_seconds = time.perf_counter() - started
    result = Evaluation(detector=name, threshold=threshold, train_seconds=train_seconds)
    for path, label_path in labelled:
        if hasattr(detector, "reset"):
            detector.reset()
        scores, spent = [], 0.0
        with open_source(str(path)) as source:
            while (frame := source.read()) is not None:
                t0 = time.perf_counter()
                image = detector_input(detector, *analysis_images(frame.image, width))
                scores.append(detector.score(image, frame.timestamp).score)
                spent += time.perf_counter() - t0
        labels = read_labels(label_path)
        n = min(len(scores), len(labels))
        clip = ClipResult(path.stem, np.asarray(scores[:n]), labels[:n], spent)
        result.clips.append(clip)
        if progress:
            progress(clip)
    return result
