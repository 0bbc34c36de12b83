"""python manage.py vad_eval DATASET_DIR [--detector NAME] [--params JSON]"""

import json
import math
from pathlib import Path

import cv2
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from inference.evaluation import evaluate
from inference.registry import make_detector


class Command(BaseCommand):
    help = ("Evaluate an anomaly detector on a UCSD-style dataset with the live loop's code: a per-clip "
            "table, then one JSON line with auc_causal, auc_per_clip, false_alarm_rate, recall, ms_per_frame.")

    def add_arguments(self, parser):
        parser.add_argument("dataset_dir")
        parser.add_argument("--detector", default="motion")
        parser.add_argument("--params", default="{}", help="detector parameters as a JSON object")
        parser.add_argument("--threshold", type=float, default=None,
                            help="operating threshold (default: the shipped camera default)")
        parser.add_argument("--width", type=int, default=settings.CAMERA_DEFAULTS["analysis_width"])
        parser.add_argument("--clips", type=int, default=None, help="evaluate only the first N test clips")
        parser.add_argument("--train-clips", type=int, default=None, help="learn from the first N training clips")

    def handle(self, *args, dataset_dir, detector, params, threshold, width, clips, train_clips, **options):
        root = Path(dataset_dir)
        if not (root / "videos" / "testing").is_dir() or not (root / "labels").is_dir():
            raise CommandError(f"{root} does not have the layout videos/training, videos/testing, labels/.")
        try:
            params = json.loads(params)
        except ValueError as exc:
            raise CommandError(f"--params is not valid JSON: {exc}") from exc
        if not isinstance(params, dict):
            raise CommandError("--params must be a JSON object.")
        if detector not in settings.INFERENCE_DETECTORS:
            raise CommandError(f"Unknown detector '{detector}'. Known: {', '.join(settings.INFERENCE_DETECTORS)}.")
        threshold = settings.CAMERA_DEFAULTS["threshold"] if threshold is None else threshold
        try:
            model = make_detector({"detector": detector, "detector_params": params, "threshold": threshold})
        except (TypeError, ValueError) as exc:
            raise CommandError(f"Bad --params for '{detector}': {exc}") from exc
        cv2.setNumThreads(1)  # ms_per_frame is for one core
        try:
            import torch

            torch.set_num_threads(1)
        except ImportError:  # pragma: no cover
            pass

        self.stdout.write(f"{'clip':10s} {'frames':>6s} {'anom':>5s} {'auc':>6s} {'mean0':>6s} {'mean1':>6s} {'alarms':>6s}")

        def row(clip):
            normal, anomalous = clip.scores[clip.labels == 0], clip.scores[clip.labels == 1]
            fmt = lambda v: "   -  " if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:6.3f}"
            self.stdout.write(
                f"{clip.name:10s} {len(clip.scores):6d} {int(clip.labels.sum()):5d} {fmt(clip.auc)} "
                f"{fmt(float(normal.mean()) if len(normal) else None)} "
                f"{fmt(float(anomalous.mean()) if len(anomalous) else None)} "
                f"{int((clip.scores >= threshold).sum()):6d}"
            )

        result = evaluate(root, model, name=detector, threshold=threshold, width=width, max_clips=clips,
                          max_train=train_clips, progress=row)
        if not result.clips:
            raise CommandError(f"No labelled test clips found under {root}.")
        self.stdout.write(json.dumps(result.summary()))
