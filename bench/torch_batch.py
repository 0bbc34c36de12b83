"""Torch backends: frames from 16 cameras in one forward pass against one call per camera.

- Learned detector (``inference.learned.PredictionDetector``): 16 detectors share one
  ``PredictRunner`` (``pool.shared("predict-runner", ...)``); each camera has its own small
  network (what it learned of its scene), so a batch is run with ``torch.func`` over the stacked
  weights. Timed: the network's forward pass per analysis frame (the optical flow, per camera
  and not batchable, is excluded). Networks with random weights at the shipped size.
- CLIP semantic scorer (``inference.semantic.ClipScorer``): 16 ``SemanticDetector`` cameras
  share one scorer. The model is the TINY random CLIP of tests/inference/tiny_models.py
  (2 layers, hidden 32, 32x32 images), built into a temporary folder: the figures show what
  batching saves in per-call overhead, not a real CLIP's speed.

"One call per camera": each camera's frame in its own forward pass, one after another.
"Batched": 16 camera threads submit at once and the shared Batcher (up to 16, or a few ms)
forms the batches, as in the worker. The output also proves each model is in memory once:
the pool's load counts and the identity of the objects the 16 detectors hold.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

CAMERAS = 16


def _threads_throughput(fn, args_per_camera, seconds: float) -> float:
    """Frames/s when each camera's thread calls ``fn(*args)`` in a loop, all at once."""
    stop = threading.Event()
    counts = [0] * len(args_per_camera)
    start = threading.Barrier(len(args_per_camera) + 1)

    def loop(i, args):
        start.wait()
        while not stop.is_set():
            fn(*args)
            counts[i] += 1

    threads = [threading.Thread(target=loop, args=(i, a), daemon=True) for i, a in enumerate(args_per_camera)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(30)
    return sum(counts) / (time.perf_counter() - began)


def _serial_throughput(fn, args_per_camera, seconds: float) -> float:
    """Frames/s when one camera after another gets its own call."""
    n = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        for args in args_per_camera:
            fn(*args)
            n += 1
    return n / (time.perf_counter() - began)


def _learned(device: str, seconds: float) -> tuple[dict, list[str]]:
    import numpy as np
    import torch

    from inference.learned import MotionPredictor, PredictionDetector
    from inference.pool import ResourcePool

    pool = ResourcePool()
    detectors = [PredictionDetector(pool=pool, device=device) for _ in range(CAMERAS)]
    rng = np.random.default_rng(0)
    args = []
    for i, d in enumerate(detectors):
        d._set_geometry(d._geometry_for((240, 360)), int(d.params["cell_size"]))
        torch.manual_seed(i)
        d._model = MotionPredictor(int(d.params["channels"])).to(d.device).eval()
        small = rng.integers(0, 255, size=(d.input_size[1], d.input_size[0]), dtype=np.uint8)
        args.append((d._model, d._input(small)))
    runner = detectors[0].runner
    for model, x in args:  # warm up both paths
        runner.predict(model, x, batch=False)
    runner._run_batch(args)
    unbatched = _serial_throughput(lambda m, x: runner.predict(m, x, batch=False), args, seconds)
    before = runner.stats()
    batched = _threads_throughput(lambda m, x: runner.predict(m, x, batch=True), args, seconds)
    after = runner.stats()
    one_pass = _serial_throughput(lambda: runner._run_batch(args), [()], seconds) * CAMERAS
    passes = after["forward_passes"] - before["forward_passes"]
    served = after["requests"] - before["requests"]
    proof = [
        f"learned detector: 16 PredictionDetectors, {len({id(d.runner) for d in detectors})} PredictRunner object "
        f"(identity shared by all 16: {all(d.runner is runner for d in detectors)}); pool.loaded() = "
        f"{ {k[0]: v for k, v in pool.loaded().items()} }, load_attempts = "
        f"{ {k[0]: v for k, v in pool.load_attempts().items()} }; each camera's own learned network: "
        f"{sum(p.numel() for p in args[0][0].parameters())} parameters",
    ]
    for d in detectors:
        d.runner.detach(d)
    pool.close()
    return {"name": f"learned detector network ({args[0][1].shape[2]}x{args[0][1].shape[1]} input, random "
                    f"weights), {device}",
            "unbatched": unbatched, "batched": batched, "one_pass": one_pass,
            "mean_batch": served / passes if passes else float("nan")}, proof


def _clip(device: str, seconds: float, model_dir: Path) -> tuple[dict, list[str]]:
    import numpy as np

    from inference.pool import ResourcePool
    from inference.semantic import SemanticDetector

    pool = ResourcePool()
    detectors = [SemanticDetector(pool=pool, model_path=str(model_dir), device=device) for _ in range(CAMERAS)]
    scorer = detectors[0].scorer
    rng = np.random.default_rng(0)
    pixels = [(scorer.preprocess(rng.integers(0, 255, size=(240, 360, 3), dtype=np.uint8)),) for _ in range(CAMERAS)]
    scorer._embed_batch([p for (p,) in pixels])
    unbatched = _serial_throughput(lambda p: scorer._embed_batch([p]), pixels, seconds)
    calls0, images0 = scorer.image_calls, scorer.images_embedded
    batched = _threads_throughput(lambda p: scorer.batcher(p), pixels, seconds)
    passes, served = scorer.image_calls - calls0, scorer.images_embedded - images0
    one_pass = _serial_throughput(lambda: scorer._embed_batch([p for (p,) in pixels]), [()], seconds) * CAMERAS
    proof = [
        f"CLIP: 16 SemanticDetectors, {len({id(d.scorer) for d in detectors})} ClipScorer object (identity shared "
        f"by all 16: {all(d.scorer is scorer for d in detectors)}), {len({id(d.scorer.model) for d in detectors})} "
        f"model; pool.loaded() = { {k[0]: v for k, v in pool.loaded().items()} }, load_attempts = "
        f"{ {k[0]: v for k, v in pool.load_attempts().items()} }",
    ]
    pool.close()
    return {"name": f"CLIP image tower (TINY random model, 32x32), {device}", "unbatched": unbatched,
            "batched": batched, "one_pass": one_pass, "mean_batch": served / passes if passes else float("nan")}, proof


def run(quick: bool = False) -> str:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "surveillance.settings")
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="bench-torch-"))
    import django

    django.setup()
    import torch

    from tests.inference.tiny_models import build_tiny_clip

    seconds = 1 if quick else 2
    import psutil

    me = psutil.Process()
    psutil.cpu_percent(None), me.cpu_percent(None)  # start both counters
    model_dir = build_tiny_clip(Path(tempfile.mkdtemp(prefix="bench-tiny-clip-")))
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    default_threads = torch.get_num_threads()
    # On the CPU with torch's default intra-op threads, as the worker runs it.
    runs = [("cpu", default_threads)]
    runs += [("cuda", default_threads)] if "cuda" in devices else []
    rows, proofs = [], []
    for device, threads in runs:
        torch.set_num_threads(threads)
        for bench in (lambda: _learned(device, seconds), lambda: _clip(device, seconds, model_dir)):
            row, proof = bench()
            if device == "cpu":
                row["name"] += f", {threads} torch thread{'s' if threads > 1 else ''}"
            rows.append(row)
            if threads == default_threads:
                proofs += [f"{device}: {p}" for p in proof]
            print(f"  {row['name']}: one call per camera {row['unbatched']:.0f} frames/s, batched "
                  f"{row['batched']:.0f} frames/s (mean batch {row['mean_batch']:.1f}), one pass of 16 "
                  f"{row['one_pass']:.0f} frames/s", file=sys.stderr)
    for p in proofs:
        print("  " + p, file=sys.stderr)
    from bench.report import write_section

    others = max(0.0, psutil.cpu_percent(None) - me.cpu_percent(None) / (os.cpu_count() or 1))
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    table = ("| backend | one call per camera | batched (16 camera threads, shared Batcher) | mean batch | speed-up | "
             "16 frames in one call (no threads) |\n|---|---|---|---|---|---|\n")
    table += "".join(
        f"| {r['name']} | {r['unbatched']:.0f} frames/s | {r['batched']:.0f} frames/s | {r['mean_batch']:.1f} | "
        f"{r['batched'] / r['unbatched']:.1f}x | {r['one_pass']:.0f} frames/s |\n" for r in rows)
    body = (table + f"\nDevices: {', '.join(devices)}{f' ({gpu})' if gpu else ' (no CUDA here)'}; torch "
            f"{torch.__version__}, {default_threads} torch CPU threads by default; {seconds} s per figure; other processes used "
            f"{others:.0f}% of the machine's {os.cpu_count()} cores meanwhile.\n\n"
            "Each model is in memory once with 16 cameras (the pool's counts and the objects the detectors hold):\n\n"
            + "".join(f"- {p}\n" for p in proofs))
    write_section("torch-batch", "Torch backends: batched against one call per camera", body,
                  "python -m bench torch" + (" --quick" if quick else ""))
    return "; ".join(f"{r['name'].split(' (')[0]} {r['name'].rsplit(', ', 1)[-1]}: {r['batched'] / r['unbatched']:.1f}x"
                     for r in rows)
