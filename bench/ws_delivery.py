"""Live frame delivery: capture-to-client latency, and subscribers one ASGI process serves.

A real daphne process serves /ws/stream/; the worker's real FramePublisher publishes 16
cameras at 5 fps through the real Redis channel layer (the embedded one unless REDIS_URL is
set); real WebSocket clients (the `websockets` package) subscribe, spread over the 16
cameras at 5 fps, and measure now - frame.ts for every frame. The number of clients grows
until p95 latency passes 250 ms. Clients run in this process, on the same two cores as
the server, so the figure is a lower bound of what the server alone carries.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.report import pct

CAMERAS = 16
FPS = 5
P95_LIMIT_MS = 250.0


def _setup(tmp: str):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "surveillance.settings")
    os.environ["DATA_DIR"] = tmp
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    from cameras.models import Camera
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("bench", password="bench-pass-123", is_staff=True)
    cameras = [Camera.objects.create(name=f"bench {i}", source_url="demo://") for i in range(CAMERAS)]
    return user, [c.pk for c in cameras]


def _frame():

    footage = Path(__file__).resolve().parent.parent.parent / "shared/datasets/pets-walkway/vtest.avi"
    if footage.exists():
        from inference.sources import open_source

        with open_source(str(footage)) as src:
            return src.read(), "pets-walkway frame (480x360)"
    from inference.demo import DemoSource

    with DemoSource("demo://") as src:
        return src.read(), "demo frame (640x360)"


def _publish(stop: threading.Event, camera_ids, frame):
    from channels.layers import get_channel_layer
    from django.conf import settings

    from cameras.live import client as redis_client
    from runtime.frames import FramePublisher

    publisher = FramePublisher(get_channel_layer(), redis_client(), width=settings.STREAM_WIDTH,
                               quality=settings.STREAM_JPEG_QUALITY, queue_size=256)
    interval = 1.0 / FPS
    next_due = time.monotonic()
    while not stop.is_set():
        for camera_id in camera_ids:
            publisher.on_frame(camera_id, frame, time.time())
        next_due += interval
        stop.wait(max(0.0, next_due - time.monotonic()))
    return publisher


async def _clients(port, token, camera_ids, n, seconds):
    import websockets

    latencies: list[float] = []
    ready = 0
    done = asyncio.Event()

    async def client(i):
        nonlocal ready
        url = f"ws://127.0.0.1:{port}/ws/stream/?token={token}"
        async with websockets.connect(url, origin=f"http://127.0.0.1:{port}", max_size=2**22) as ws:
            camera = camera_ids[i % len(camera_ids)]
            await ws.send(json.dumps({"action": "subscribe", "camera": camera, "fps": FPS, "binary": True}))
            await ws.recv()
            ready += 1
            while not done.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
                except asyncio.TimeoutError:
                    continue
                if isinstance(raw, bytes):
                    size = int.from_bytes(raw[:4], "big")
                    header = json.loads(raw[4:4 + size])
                    if measuring:
                        latencies.append((time.time() - header["ts"]) * 1000)

    measuring = False
    tasks = [asyncio.ensure_future(client(i)) for i in range(n)]
    while ready < n and not any(t.done() for t in tasks):
        await asyncio.sleep(0.1)
    await asyncio.sleep(2.0)  # the publisher notices the watchers within a second
    measuring = True
    await asyncio.sleep(seconds)
    measuring = False
    done.set()
    errors = [r for r in await asyncio.gather(*tasks, return_exceptions=True) if isinstance(r, BaseException)]
    if errors:
        print(f"  {len(errors)} of {n} clients failed, e.g. {errors[0]!r}", file=sys.stderr)
    return latencies


def run(quick: bool = False) -> str:
    import subprocess

    tmp = tempfile.mkdtemp(prefix="bench-ws-")
    user, camera_ids = _setup(tmp)
    from rest_framework_simplejwt.tokens import RefreshToken

    from tests.system.processes import free_port, wait_for_port

    token = str(RefreshToken.for_user(user).access_token)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                               "surveillance.asgi:application"], env=dict(os.environ),
                              stdout=open(Path(tmp) / "daphne.log", "w"), stderr=subprocess.STDOUT)
    rows = []
    try:
        wait_for_port(port)
        frame, what = _frame()
        stop = threading.Event()
        threading.Thread(target=_publish, args=(stop, camera_ids, frame), daemon=True).start()
        seconds = 3 if quick else 4
        steps = [16, 64, 128]
        capacity = None
        for n in steps:
            latencies = asyncio.run(_clients(port, token, camera_ids, n, seconds))
            expected = n * FPS * seconds
            p50, p95 = pct(latencies, 0.5), pct(latencies, 0.95)
            rows.append((n, len(latencies), expected, p50, p95))
            print(f"  {n:4d} subscribers: {len(latencies)}/{expected} frames, p50 {p50:.0f} ms, p95 {p95:.0f} ms",
                  file=sys.stderr)
            if p95 <= P95_LIMIT_MS:
                capacity = n
            else:
                break
        stop.set()
    finally:
        server.terminate()
        server.wait(10)
    from bench.report import write_section

    table = "| subscribers (16 cameras, 5 fps) | frames received / sent | p50 latency | p95 latency |\n|---|---|---|---|\n"
    table += "".join(f"| {n} | {got} / {exp} | {p50:.0f} ms | {p95:.0f} ms |\n" for n, got, exp, p50, p95 in rows)
    first = rows[0]
    body = (
        f"Capture-to-client frame latency with {first[0]} subscribers (one per camera): "
        f"**p50 {first[3]:.0f} ms, p95 {first[4]:.0f} ms**.\n\n"
        f"Subscribers one daphne process serves before p95 passes {P95_LIMIT_MS:.0f} ms: "
        f"**{capacity if capacity else 'fewer than ' + str(steps[0])}**"
        f"{' (the largest step tried)' if capacity == steps[-1] else ''}.\n\n"
        f"{table}\nFrames: {what}, downscaled and JPEG-encoded once per frame by the worker's FramePublisher, "
        "sent as binary WebSocket messages. Clients run in the benchmark process on the same cores as daphne "
        "and Redis, so these figures are lower bounds for the server alone.\n"
    )
    write_section("ws-delivery", "Live frame delivery (WebSocket)", body,
                  "python -m bench ws" + (" --quick" if quick else ""))
    return f"p50 {first[3]:.0f} ms, p95 {first[4]:.0f} ms at {first[0]} subscribers; capacity {capacity}"
