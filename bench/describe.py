"""The description path under load: 16 demo cameras, one worker, a real local model server.

A real local HTTP server speaking the OpenAI chat-completions protocol (tests/chat_server.py's
``ChatServer``, in this process) answers every request with a JSON description after a fixed delay
(0.8 s by default, about what a small VLM takes on a GPU; requests are served in parallel, the
worker's description queue runs at most ``DESCRIBE_CONCURRENCY`` at once). A real Celery inference
worker runs 16 ``demo://`` cameras (a synthetic walkway where, about 4 s after the last one ended,
someone runs, falls or walks into a forbidden area) whose VLM backend is ``openai`` on that server;
a real daphne serves one WebSocket client per camera (events, no frames), as in `bench latency`.

Measured, for the events that started in the measurement window:

- the first alert: the event's first message on its camera's client - ``started_at`` (the worker's
  wall clock right after the first anomalous frame was analysed), p50 / p95, and the end-to-end p95
  upper bound (that p95 + the worker's own capture-to-analysed frame lag p95), as `bench latency`;
- the description: the first message that carries one - ``started_at`` (p50 / p95); the events left
  without one, by the reason recorded on the event (``vlm_error``: budget, deadline, timeout...);
- the worker's description queue, from the figures it publishes each heartbeat (``describe_queue``
  in its Redis document, ``cameras.live.worker_stats``): wait p50 / p95 / p99 (over its last 1,000
  started requests), requests per minute, and the counters over the window (completed, failed,
  timeouts, dropped by budget, bound and deadline, superseded).

Parameters (environment, since `python -m bench` passes only ``--quick``): ``BENCH_DESCRIBE_DELAY``
(the server's seconds per request, 0.8), ``BENCH_DESCRIBE_SECONDS`` (the window, 180; 40 with
``--quick``), ``BENCH_DESCRIBE_CAMERAS`` (16), ``BENCH_DESCRIBE_DETECTOR`` (``motion``). The
queue's own settings are the worker's (``DESCRIBE_*``, from the environment as in production).
"""

from __future__ import annotations

import os
import sys
import time

from bench.cameras import (
    TARGET_P95_S, Subscribers, _ts, bench_user, event_push_latencies, lag_quantiles, setup_django, start_cameras,
    start_daphne, start_worker, wait_running, worker_doc,
)
from bench.latency import QUICK_START, _sources
from bench.report import pct

WORKER = "bench-describe"
ANSWER = '{"summary": "A person falls on the walkway and stays down.", "threat_level": "high", "objects": ["person"]}'
COUNTERS = ("submitted", "accepted", "started", "completed", "failed", "timeouts", "dropped_budget", "dropped_bound",
            "dropped_deadline", "superseded")


def description_latencies(messages, camera_ids, since: float, until: float | None = None) -> dict:
    """For the events of ``camera_ids`` that started in [since, until]: seconds from ``started_at`` to the
    first message that carries a description (``described``), and the events with none, counted by the
    reason their last message records (``details.detector_details.vlm_error``, up to its first colon;
    ``"none recorded"`` when it records none: not asked yet, or the answer still on its way)."""
    wanted = set(camera_ids)
    started, described, last = {}, {}, {}
    for received, message in list(messages):
        if message.get("type") != "event" or message["event"]["camera"] not in wanted:
            continue
        event = message["event"]
        began = _ts(event["started_at"])
        if began is None or began < since or (until is not None and began > until):
            continue
        started[event["id"]] = began
        last[event["id"]] = event
        if event.get("description") and event["id"] not in described:
            described[event["id"]] = received - began
    missing: dict[str, int] = {}
    for eid, event in last.items():
        if eid in described:
            continue
        details = (event.get("details") or {}).get("detector_details") or {}
        reason = str(details.get("vlm_error") or "none recorded").split(":", 1)[0]
        missing[reason] = missing.get(reason, 0) + 1
    return {"events": len(started), "described": list(described.values()), "missing": missing}


def queue_doc() -> dict:
    return (worker_doc(WORKER + "@") or {}).get("describe_queue") or {}


def run(quick: bool = False) -> str:
    delay = float(os.getenv("BENCH_DESCRIBE_DELAY", "0.8"))
    seconds = float(os.getenv("BENCH_DESCRIBE_SECONDS", "40" if quick else "180"))
    n = int(os.getenv("BENCH_DESCRIBE_CAMERAS", "16"))
    detector = os.getenv("BENCH_DESCRIBE_DETECTOR", "motion")
    load_start = os.getloadavg()
    tmp = setup_django("bench-describe-", MAX_CAMERAS_PER_WORKER=max(16, n))
    from cameras.models import Camera
    from cameras.services import camera_stop
    from django.conf import settings

    from tests.chat_server import ChatServer

    server = ChatServer()
    server.delay = delay
    answered = [0]

    def reply(body):
        answered[0] += 1
        return ANSWER

    server.reply = reply
    sources, threshold, what = _sources(n)
    _user, token = bench_user()
    ids = []
    for i in range(n):
        camera = Camera(name=f"describe {i}", source_url=sources[i], enabled=False, detector=detector,
                        threshold=threshold, event_close_seconds=1.0,
                        detector_params=QUICK_START if detector == "motion" else {},
                        vlm_backend="openai", vlm_params={"base_url": server.base_url, "model": "bench-vlm"})
        camera._check_model_servers()  # the site's model-server networks allow this server (loopback)
        camera.save()
        ids.append(camera.pk)
    grace = settings.DESCRIBE_DEADLINE_SECONDS + delay + 3.0  # the window's last requests: started or dropped
    daphne, port = start_daphne(tmp)
    worker = subs = None
    try:
        worker = start_worker(tmp, WORKER)
        subs = Subscribers(port, token, frames=False)
        for cid in ids:
            subs.add(cid)
        start_cameras(ids, None)
        if not wait_running(ids, WORKER + "@", 90):
            print("  not every camera runs after 90 s", file=sys.stderr)
        before = queue_doc()
        began = time.time()
        deadline = time.monotonic() + seconds
        rates, loads = [], [os.getloadavg()[0]]
        while time.monotonic() < deadline:
            time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
            del server.requests[:], server.headers[:]  # the request bodies (images) are not needed
            q = queue_doc()
            rates.append(q.get("requests_per_minute", 0.0))
            loads.append(os.getloadavg()[0])
            pushed = event_push_latencies(subs.messages, ids, began)
            print(f"  {len(pushed['first'])} events pushed; queue: waiting {q.get('waiting')}, running "
                  f"{q.get('running')}, {q.get('requests_per_minute')}/min, wait p95 {q.get('wait_s_p95')} s, "
                  f"completed {q.get('completed')}, dropped budget {q.get('dropped_budget')} / deadline "
                  f"{q.get('dropped_deadline')}; server answered {answered[0]}", file=sys.stderr)
        ended = time.time()
        after = queue_doc()
        lag50, lag95 = lag_quantiles(WORKER + "@", ids)
        time.sleep(grace)  # the descriptions of the window's last events
        final = queue_doc()
        for cid in ids:
            camera_stop(camera=Camera.objects.get(pk=cid), by=None)
    finally:
        if subs is not None:
            subs.close()
        if worker is not None:
            worker.stop()
        daphne.stop()
        server.close()
    load_end = os.getloadavg()

    pushed = event_push_latencies(subs.messages, ids, began, ended)
    desc = description_latencies(subs.messages, ids, began, ended)
    window = {k: after.get(k, 0) - before.get(k, 0) for k in COUNTERS}
    minutes = (ended - began) / 60
    runs = [(doc.get("run_s") or {}) for doc in (before, after)]
    run_count = runs[1].get("count", 0) - runs[0].get("count", 0)
    run_mean = (runs[1].get("sum", 0.0) - runs[0].get("sum", 0.0)) / run_count if run_count else float("nan")

    def ms(v):
        return "n/a" if v is None or v != v else f"{1000 * v:.0f} ms"

    def sec(v):
        return "n/a" if v is None or v != v else f"{v:.2f} s"

    first50, first95 = pct(pushed["first"], 0.5), pct(pushed["first"], 0.95)
    e2e = first95 + (lag95 or 0.0) if pushed["first"] else float("nan")
    d50, d95 = pct(desc["described"], 0.5), pct(desc["described"], 0.95)
    missing = ", ".join(f"{reason} {count}" for reason, count in sorted(desc["missing"].items())) or "none"
    verdict = "met" if e2e < TARGET_P95_S else "NOT met"
    body = (f"**{n} cameras with a model-server VLM answering in {delay:g} s: first anomalous frame to the event "
            f"on the client, p95 {ms(e2e)} (target under {TARGET_P95_S * 1000:.0f} ms: {verdict}); descriptions "
            f"arrived for {len(desc['described'])} of {desc['events']} events, {sec(d50)} after the event opened "
            f"(p50), {sec(d95)} (p95).**\n\n"
            "| events | first push p50 | first push p95 | frame lag p50 / p95 (worker) | end to end p95 (upper bound) "
            "| described | description after the event opened, p50 / p95 | without one (reason recorded) |\n"
            "|---|---|---|---|---|---|---|---|\n"
            f"| {desc['events']} | {ms(first50)} | {ms(first95)} | {ms(lag50)} / {ms(lag95)} | **{ms(e2e)}** | "
            f"{len(desc['described'])} | {sec(d50)} / {sec(d95)} | {missing} |\n\n"
            "The worker's description queue (its published figures; counters over the window):\n\n"
            "| wait p50 / p95 / p99 | requests per minute (window; published mean / max) | submitted | completed "
            "| mean run time | failed | timeouts | dropped by budget | dropped at the bound | dropped at the deadline "
            "| superseded | server answers |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
            f"| {sec(after.get('wait_s_p50'))} / {sec(after.get('wait_s_p95'))} / {sec(after.get('wait_s_p99'))} | "
            f"**{window['started'] / minutes:.0f}** ({sum(rates) / max(1, len(rates)):.0f} / "
            f"{max(rates, default=0):.0f}) | "
            f"{window['submitted']} | {window['completed']} | {sec(run_mean)} | {window['failed']} | "
            f"{window['timeouts']} | "
            f"{window['dropped_budget']} | {window['dropped_bound']} | {window['dropped_deadline']} | "
            f"{window['superseded']} | {answered[0]} |\n\n"
            f"{n} cameras on one real worker (`-P threads -c 8`) for {seconds:g} s, {what}, detector `{detector}`"
            f"{f' ({QUICK_START})' if detector == 'motion' else ''}, threshold {threshold}, events close after 1 s "
            f"quiet; each camera's VLM is `openai` on a local chat-completions server (tests/chat_server.py, in the "
            f"benchmark process) that answers every request with a fixed JSON description after {delay:g} s, "
            "requests served in parallel; one daphne, one WebSocket client per camera (events only). The queue "
            f"as shipped: concurrency {after.get('concurrency')}, at most {after.get('max_size')} waiting, "
            f"{after.get('per_camera_per_minute')} requests per camera per minute, deadline "
            f"{after.get('deadline_s')} s (`DESCRIBE_*`): with this server it can run about "
            f"{(after.get('concurrency') or 0) * 60 / max(delay, 0.001):.0f} requests a minute. First push and end to "
            "end as in `bench latency`. "
            "Description = client receive of the first message with a description - `started_at`; the events "
            f"counted are those that started in the window, their descriptions awaited {grace:g} s more (cameras "
            "running). Queue waits are the worker's p50/p95/p99 over its last 1,000 started requests (all of the "
            "run here), requests per minute = requests started in the window / its minutes (in brackets the "
            "published last-minute rate sampled every 5 s); counters are the window's, and the mean run time (a "
            "request's time in a `describe-N` thread: images encoded, the HTTP request, the server's delay, the "
            "answer parsed) is over the window's requests; the server's answers "
            f"count the whole run (after the window: {final.get('completed', 0) - after.get('completed', 0)} "
            f"more completed). Machine load (1-minute average) {load_start[0]:.2f} at the start, "
            f"{load_end[0]:.2f} at the end, {sum(loads) / len(loads):.1f} on average over the window (at most "
            f"{max(loads):.1f}, sampled every 5 s; the benchmark's own processes count in it); the clients, the "
            "model server and the benchmark share the same cores with daphne and the worker.\n")
    from bench.report import write_section

    write_section("describe", f"Descriptions under load ({n} cameras, a model server)", body,
                  "python -m bench describe" + (" --quick" if quick else ""))
    return (f"{desc['events']} events, first push end-to-end p95 <= {ms(e2e)}; described {len(desc['described'])}, "
            f"p95 {sec(d95)} after opening; queue wait p95 {sec(after.get('wait_s_p95'))}, "
            f"{window['started'] / minutes:.0f} requests/min, dropped by budget {window['dropped_budget']}")
