"""Objects: what the object model costs, how many frames a worker labels, how soon after motion.

1. NanoDet (inference/objects.py) on a real frame: ms per inference with 1 and 2 torch threads, one
   image a pass and batches of 4.
2. The live path on real footage: UCSD Ped1 test clips (and the PETS walkway) played in real time
   at 5 analysis fps by several cameras at once, each with the ``objects`` detector, through one
   worker-wide ObjectScheduler (its default budget): detections per second, what the budget
   refused, and for each clip how long after motion first starts an object is first labelled
   (p50/p95 over the clips).

    python -m bench objects [--quick]
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

DATASETS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"


def _speed(model, frame, threads: int, seconds: float) -> dict:
    import torch

    torch.set_num_threads(threads)
    out = {}
    for batch in (1, 4):
        images = [frame] * batch
        model.detect(images)  # warm
        n, began = 0, time.perf_counter()
        while time.perf_counter() - began < seconds:
            model.detect(images)
            n += batch
        out[batch] = 1000 * (time.perf_counter() - began) / n
    return out


def _camera(detector, frames, t0: float, stop: threading.Event, result: dict, fps: float = 5.0) -> None:
    """One camera: its frames in real time; records when motion starts and when the first label comes."""
    first_motion = first_label = None
    for i, image in enumerate(frames):
        if stop.is_set():
            break
        due = t0 + i / fps
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        r = detector.score(image, i / fps)
        now = time.monotonic()
        if first_motion is None and r.details.get("active_cells"):
            first_motion = now
        if first_motion is not None and first_label is None and r.details.get("objects"):
            first_label = now
    result["delay"] = None if first_motion is None or first_label is None else first_label - first_motion


def run(quick: bool = False) -> str:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "surveillance.settings")
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="bench-objects-"))
    import django

    django.setup()
    import cv2
    from django.conf import settings as defaults
    import numpy as np

    from bench.report import pct, write_section
    from inference.e2e import analysis_images, detector_input
    from inference.object_detector import ObjectsDetector
    from inference.objects import NanoDet
    from inference.pool import ResourcePool

    walkway = DATASETS / "pets-walkway" / "vtest.avi"
    capture = cv2.VideoCapture(str(walkway))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 300)
    ok, frame = capture.read()
    capture.release()
    if not ok:
        frame = np.full((360, 480, 3), 100, np.uint8)
    model = NanoDet()
    seconds = 2.0 if quick else 5.0
    speed = {threads: _speed(model, frame, threads, seconds) for threads in (1, 2)}
    import torch

    torch.set_num_threads(os.cpu_count() or 1)

    # the live path: N cameras in real time through one scheduler with the worker's default budget
    budget = float(defaults.OBJECT_BUDGET_FPS)
    clips = sorted((DATASETS / "ucsd-ped1" / "videos" / "testing").glob("*.mp4"))[: 4 if quick else 12]
    cameras = 4 if quick else 8
    pool = ResourcePool(options={"objects": {"live": True, "budget_fps": budget,
                                             "max_batch": int(defaults.OBJECT_MAX_BATCH)}})
    delays, detections, wall = [], 0, 0.0
    scheduler = None
    for start in range(0, len(clips), cameras):
        group = clips[start:start + cameras]
        detectors, threads, results = [], [], []
        stop = threading.Event()
        t0 = time.monotonic() + 0.5
        for clip in group:
            det = ObjectsDetector(pool=pool)
            scheduler = det.scheduler
            cap = cv2.VideoCapture(str(clip))
            frames = []
            i = 0
            while True:
                ok, image = cap.read()
                if not ok:
                    break
                if i % 2 == 0:  # 10 fps footage at 5 analysis fps
                    frames.append(detector_input(det, *analysis_images(image, 360)))
                i += 1
            cap.release()
            result = {}
            thread = threading.Thread(target=_camera, args=(det, frames, t0, stop, result), daemon=True)
            detectors.append(det)
            threads.append(thread)
            results.append(result)
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall += time.monotonic() - began
        delays += [r["delay"] for r in results if r.get("delay") is not None]
    stats = scheduler.stats() if scheduler is not None else {}
    detections = stats.get("detected", 0)
    pool.close()
    rate = detections / wall if wall else float("nan")
    rows = "".join(f"| {threads} | {speed[threads][1]:.0f} ms | {speed[threads][4]:.0f} ms |\n" for threads in (1, 2))
    body = (
        "NanoDet-g (COCO, 416x416, `inference/objects.py` on torch through `inference/tfjs.py`) on PETS walkway "
        "frame 300:\n\n| torch threads | ms per image, one a pass | ms per image, batches of 4 |\n|---|---|---|\n"
        + rows
        + f"\nThe live path: {len(clips)} UCSD Ped1 test clips played in real time at 5 analysis fps, {cameras} "
        f"cameras at a time, each with the `objects` detector, through one worker-wide scheduler at the shipped "
        f"budget (`OBJECT_BUDGET_FPS` = {budget:g} images/s):\n\n"
        f"| detections/s (worker) | offers superseded | offers expired | model ms per image in batches | "
        f"first label after motion starts, p50 | p95 | clips |\n|---|---|---|---|---|---|---|\n"
        f"| {rate:.1f} | {stats.get('superseded', 0)} | {stats.get('expired', 0)} | {stats.get('ms_per_image')} | "
        f"{pct(delays, 0.5):.2f} s | {pct(delays, 0.95):.2f} s | {len(delays)} |\n\n"
        "Detection runs only where something moves (or objects are followed), at most `detect_fps` (2) a second "
        "per camera; the scheduler takes the most anomalous cameras first and batches across cameras; a quiet "
        "camera offers nothing.\n")
    write_section("objects", "Objects: cost, rate and time to the first label", body,
                  "python -m bench objects" + (" --quick" if quick else ""))
    return (f"NanoDet {speed[1][1]:.0f} ms (1 thread), {speed[2][1]:.0f} ms (2); {rate:.1f} detections/s; "
            f"first label p50 {pct(delays, 0.5):.2f} s, p95 {pct(delays, 0.95):.2f} s")


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
