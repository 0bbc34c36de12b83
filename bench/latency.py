"""End to end: from the first anomalous frame to the event on a subscribed WebSocket client.

A real Celery inference worker runs ``demo://`` cameras (a synthetic walkway where, about 4 s
after the last one ended, someone runs, falls or walks into a forbidden area); a real daphne
serves a real WebSocket client subscribed to every camera (events, no frames). The same figure
under the 16-camera load on real footage is in `bench cameras`. The worker opens an event at the first frame the detector scores over the threshold
and records its ``started_at`` from the wall clock right after that frame was analysed; the
event is logged, stored (its opening record within ``EVENT_OPEN_FLUSH_GAP`` of the last batch; its
updates with the next batch, at most ``EVENT_FLUSH_INTERVAL`` later) and pushed. For each event:

- first push: client receive time - ``started_at``;
- the frame's own capture-to-analysed time is the worker's measured frame lag (``frame_lag_s``
  histogram it publishes each heartbeat), so end to end = push latency + that frame's lag; the
  table gives the p95 of each and their sum, an upper bound of the end-to-end p95.

"With VLM": as many cameras again, on the same worker at the same time, with the tiny random Llava of tests/inference/tiny_models.py (built into a
temporary folder; the figures show the pipeline's cost, not a real model's), where the event is
pushed at its first frame and updated when the episode closes and the VLM has described the peak
frame: that update is measured from ``ended_at`` (the episode's close).
"""

from __future__ import annotations

import sys
import time

from bench.cameras import (
    TARGET_P95_S, Subscribers, bench_user, event_push_latencies, lag_quantiles, setup_django, start_cameras,
    start_daphne, start_worker, wait_running,
)
from bench.report import pct

CAMERAS = 8  # per set: 8 without a VLM and 8 with one, side by side (16, a worker's default)
# The motion detector's terms reach half weight after 100 frames (20 s at 5 fps); here after 10, so that
# a phase of a minute sees events from its first seconds (the latency measured is the pipeline's).
QUICK_START = {"warmup_frames": 10, "confidence_frames": 10}


def _sources(n: int) -> tuple[list[str], float, str]:
    """demo:// scenes with a scripted anomaly (running, a fall, someone in the forbidden area) about every
    4 s of media time after the last one ended, one seed per camera. (Short real clips would not do: a looped file restarts the
    detector's motion chain at every rewind, and a UCSD clip rewinds every 20 s.)"""
    return ([f"demo://?seed={i + 1}&anomaly_every=4" for i in range(n)], 0.5,
            "demo:// (a scripted anomaly about every 4 s of media time, at least 3 s after the last one ended)")


def _phase(sets: dict[str, list[int]], subs, worker_name, seconds) -> dict[str, dict]:
    """Run every set of cameras at once on the one worker for ``seconds``; the figures of each set."""
    from cameras.models import Camera
    from cameras.services import camera_stop

    ids = [cid for group in sets.values() for cid in group]
    start_cameras(ids, None)
    if not wait_running(ids, worker_name, 90):
        print("  not every camera runs after 90 s", file=sys.stderr)
    began = time.time()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
        for label, group in sets.items():
            pushed = event_push_latencies(subs.messages, group, began)
            print(f"  {label}: {len(pushed['first'])} events pushed, {len(pushed['closed'])} closed", file=sys.stderr)
    results = {}
    for label, group in sets.items():
        lag50, lag95 = lag_quantiles(worker_name, group)
        results[label] = {**event_push_latencies(subs.messages, group, began), "lag50": lag50, "lag95": lag95}
    for cid in ids:
        camera_stop(camera=Camera.objects.get(pk=cid), by=None)
    return results


def run(quick: bool = False) -> str:
    seconds = 30 if quick else 40
    # Both sets run side by side on one worker (one phase, not one after the other).
    tmp = setup_django("bench-latency-", MAX_CAMERAS_PER_WORKER=2 * CAMERAS)
    from cameras.models import Camera
    from django.conf import settings

    sources, threshold, what = _sources(CAMERAS)
    vlm_dir = tmp / "models" / "tiny-vlm"  # under the bench's MODEL_ROOTS (DATA_DIR/models), as a site's would be
    vlm_dir.mkdir(parents=True, exist_ok=True)
    from tests.inference.tiny_models import build_tiny_vlm

    build_tiny_vlm(vlm_dir)
    user, token = bench_user()

    def make(i, **extra):
        return Camera.objects.create(name=f"latency {i}", source_url=sources[i % len(sources)], enabled=False,
                                     threshold=threshold, event_close_seconds=1.0, detector="motion",
                                     detector_params=QUICK_START,
                                     **extra).pk

    plain = [make(i) for i in range(CAMERAS)]
    with_vlm = [make(i, vlm_backend="transformers", vlm_model_path=str(vlm_dir)) for i in range(CAMERAS)]
    daphne, port = start_daphne(tmp)
    worker = subs = None
    try:
        worker = start_worker(tmp, "bench-latency")
        subs = Subscribers(port, token, frames=False)
        for cid in plain + with_vlm:
            subs.add(cid)
        results = _phase({"without VLM": plain, "with VLM (tiny)": with_vlm}, subs, "bench-latency@", seconds)
    finally:
        if subs is not None:
            subs.close()
        if worker is not None:
            worker.stop()
        daphne.stop()

    from bench.report import write_section

    def ms(v):
        return "n/a" if v is None or v != v else f"{1000 * v:.0f} ms"

    table = ("| | events | first push p50 | first push p95 | frame lag p50 / p95 (worker) | end to end p95 "
             "(upper bound) | closed update p50 / p95 (from ended_at) | described by the VLM |\n"
             "|---|---|---|---|---|---|---|---|\n")
    for name, r in results.items():
        p50, p95 = pct(r["first"], 0.5), pct(r["first"], 0.95)
        e2e = p95 + (r["lag95"] or 0.0) if r["first"] else float("nan")
        table += (f"| {name} | {len(r['first'])} | {ms(p50)} | {ms(p95)} | {ms(r['lag50'])} / {ms(r['lag95'])} | "
                  f"**{ms(e2e)}** | {ms(pct(r['closed'], 0.5))} / {ms(pct(r['closed'], 0.95))} | "
                  f"{r['described']} of {len(r['closed'])} |\n")
    plain_r = results["without VLM"]
    e2e = pct(plain_r["first"], 0.95) + (plain_r["lag95"] or 0.0) if plain_r["first"] else float("nan")
    body = (f"**Without a VLM: first anomalous frame to the event on the client, p95 {ms(e2e)} "
            f"(target under {TARGET_P95_S * 1000:.0f} ms: {'met' if e2e < TARGET_P95_S else 'NOT met'}).**\n\n"
            f"{table}\n"
            f"{CAMERAS} cameras without a VLM and {CAMERAS} with one, side by side on one real worker for {seconds} s, "
            f"{what}, motion detector ({QUICK_START}), threshold {threshold}, events close after 1 s quiet; one daphne, "
            "one WebSocket client subscribed to every camera (events only). An event's opening record is stored at "
            f"most {settings.EVENT_OPEN_FLUSH_GAP:g} s after the last batch (`EVENT_OPEN_FLUSH_GAP`; events that open "
            "together share a batch), its updates (peaks, the description, the close) with the next batch, at most "
            f"{settings.EVENT_FLUSH_INTERVAL:g} s (`EVENT_FLUSH_INTERVAL`) later or at {settings.EVENT_BATCH_SIZE} "
            "waiting records; then pushed after commit. First push = client receive - `started_at` (the wall clock right after the first "
            "anomalous frame was analysed); the frame's capture-to-analysed lag is the worker's own measurement "
            "(`frame_lag_s`, p50/p95 by histogram interpolation), so the end-to-end p95 given is the sum of the "
            "two p95s, an upper bound. Closed update = client receive - `ended_at` of the message that carries "
            "the closed episode (with the VLM: after it described the peak frame). The VLM is a tiny random Llava "
            "built by tests/inference/tiny_models.py: it shows the pipeline's cost, not a real model's.\n")
    write_section("latency", "End-to-end event latency (frame to WebSocket client)", body,
                  "python -m bench latency" + (" --quick" if quick else ""))
    return f"no VLM: {len(plain_r['first'])} events, end-to-end p95 <= {ms(e2e)}"
