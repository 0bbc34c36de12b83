"""Cameras per worker: 16 cameras of real footage on one real Celery inference worker.

A real worker process (``celery -A surveillance worker -Q inference -P threads``, as
``runsystem`` starts it) runs cameras playing real footage in a loop (pets-walkway and UCSD
clips from ../shared/datasets, file sources) at 5 analysis fps with the default detector (objects),
while a real daphne serves one WebSocket subscriber per camera (5 fps frames) for the whole
run. Every few seconds the benchmark reads each camera's figures the worker publishes to
Redis each heartbeat (``cameras.live.worker_stats``: frames analysed, fps) and the CPU
and memory of the worker and daphne processes (psutil).

Reported: every camera's minimum and mean analysis fps over the main run (16 cameras),
CPU and memory per camera (memory: RSS growth over the idle worker), the most cameras the
machine carries at 5 fps (at most two 15 s steps of 8 cameras from a guess made from the worker's CPU
at 16, stopping at a step that keeps every camera at 4.8 fps next to one that does not), the end-to-end
latency of every event the footage raised during the 16-camera run (first anomalous frame to
the event on that camera's subscriber), and a profile of the per-frame loop of one camera, in
this process.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.report import pct

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"
FPS = 5.0
TARGET_FPS = 4.8
WINDOW = 20.0  # seconds: the fps of a camera over any window this long is checked against TARGET_FPS
TARGET_P95_S = 1.0  # first anomalous frame to the event on a subscribed client, p95
CAPACITY_STEP = 8  # cameras added or removed per capacity step
STAGGER_S = 0.5  # seconds between the starts of the main run's cameras (the same clip is every 3rd camera)


# --- shared with bench.latency -------------------------------------------------------------------------
def setup_django(prefix: str, **env) -> Path:
    """A fresh DATA_DIR (SQLite and embedded Redis unless DATABASE_URL / REDIS_URL are set), migrated."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "surveillance.settings")
    os.environ["DATA_DIR"] = str(tmp)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["CAMERA_FILE_ROOTS"] = f"{DATASETS},{tmp}"
    for key, value in env.items():
        os.environ[key] = str(value)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return tmp


def bench_user():
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.tokens import AccessToken

    user = get_user_model().objects.create_user("bench", password="bench-pass-123", is_staff=True)
    return user, str(AccessToken.for_user(user))


def footage() -> list[str]:
    """Real clips to loop: pets-walkway, UCSD Ped1 test clips and Ped2 training clips."""
    clips = []
    walkway = DATASETS / "pets-walkway" / "vtest.avi"
    ped1 = sorted((DATASETS / "ucsd-ped1" / "videos" / "testing").glob("*.mp4"))
    ped2 = sorted((DATASETS / "ucsd-ped2" / "videos" / "training").glob("*.mp4"))
    # Interleave so that any number of cameras mixes the three scenes.
    for i in range(max(len(ped1), len(ped2), 1)):
        if walkway.exists():
            clips.append(str(walkway))
        if i < len(ped1):
            clips.append(str(ped1[i]))
        if i < len(ped2):
            clips.append(str(ped2[i]))
    return clips


class Proc:
    """A real process (daphne or a Celery worker) with its output in a log file."""

    def __init__(self, name: str, args: list[str], tmp: Path, env: dict | None = None):
        self.name = name
        self.log = Path(tmp) / f"{name}.log"
        self.proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=dict(env or os.environ),
                                     stdout=open(self.log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.proc.pid

    def wait_for(self, text: str, timeout: float = 90) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log.read_text(errors="replace"):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.3)
        return False

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def stop(self, timeout: float = 20) -> None:
        import signal

        if self.proc.poll() is None:
            os.killpg(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(5)


def start_daphne(tmp: Path) -> tuple[Proc, int]:
    from tests.system.processes import free_port, wait_for_port

    port = free_port()
    proc = Proc("daphne", ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "surveillance.asgi:application"], tmp)
    wait_for_port(port)
    return proc, port


def start_worker(tmp: Path, name: str = "bench", concurrency: int = 8, env: dict | None = None) -> Proc:
    """An inference worker as runsystem starts it (thread pool), on the inference queue only."""
    worker = Proc(f"worker-{name}", ["-m", "celery", "-A", "surveillance", "worker", "-Q", "inference", "-P",
                                     "threads", "-c", str(concurrency), "-n", f"{name}@%h", "--loglevel", "INFO"],
                  tmp, env=dict(os.environ, **(env or {})))
    if not worker.wait_for(" ready.", 120):
        raise RuntimeError(f"the worker did not start:\n{worker.tail()}")
    return worker


class Subscribers:
    """Real WebSocket clients in a background event loop: one per camera, frames at ``fps``, counted."""

    def __init__(self, port: int, token: str, *, fps: int = 5, frames: bool = True):
        self.port, self.token, self.fps, self.frames = port, token, fps, frames
        self.counts: dict[int, int] = {}
        self.messages: list[tuple[float, dict]] = []  # (receive time, JSON message) of non-frame messages
        self.errors: list[BaseException] = []
        self.loop = asyncio.new_event_loop()
        self._stop = None
        threading.Thread(target=self.loop.run_forever, name="ws-clients", daemon=True).start()

    def add(self, camera_id: int, timeout: float = 20) -> None:
        ready = threading.Event()
        asyncio.run_coroutine_threadsafe(self._client(camera_id, ready), self.loop)
        if not ready.wait(timeout):
            raise RuntimeError(f"WebSocket subscription to camera {camera_id} failed: {self.errors[-1:]}")

    async def _client(self, camera_id: int, ready: threading.Event) -> None:
        import websockets

        url = f"ws://127.0.0.1:{self.port}/ws/stream/?token={self.token}"
        try:
            async with websockets.connect(url, origin=f"http://127.0.0.1:{self.port}", max_size=2**22) as ws:
                await ws.send(json.dumps({"action": "subscribe", "camera": camera_id, "fps": self.fps,
                                          "frames": self.frames, "binary": True}))
                self.counts.setdefault(camera_id, 0)
                while True:
                    raw = await ws.recv()
                    now = time.time()
                    if isinstance(raw, bytes):
                        self.counts[camera_id] += 1
                        continue
                    message = json.loads(raw)
                    if message.get("type") == "subscribed":
                        ready.set()
                    elif message.get("type") not in ("score", "camera.status"):
                        self.messages.append((now, message))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - reported by the benchmark
            self.errors.append(exc)

    def close(self) -> None:
        async def cancel():
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        try:
            asyncio.run_coroutine_threadsafe(cancel(), self.loop).result(5)
        except Exception:  # noqa: BLE001
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)


def worker_doc(name_prefix: str = "") -> dict | None:
    from cameras.live import worker_stats

    for name, doc in worker_stats().items():
        if name.startswith(name_prefix):
            return doc
    return None


# --- the measurement --------------------------------------------------------------------------------
class Sampler:
    """Per-camera frame counters (from the worker's published figures) and process CPU / RSS over time."""

    def __init__(self, worker: Proc, daphne: Proc, worker_name: str):
        import psutil

        self.worker_name = worker_name
        self.procs = {"worker": psutil.Process(worker.pid), "daphne": psutil.Process(daphne.pid),
                      "bench": psutil.Process(os.getpid())}
        for p in self.procs.values():
            p.cpu_percent(None)
        psutil.cpu_percent(None)
        self.psutil = psutil
        self.samples: list[dict] = []

    def sample(self) -> dict:
        doc = worker_doc(self.worker_name) or {"cameras": {}, "at": time.time()}
        s = {"at": doc.get("at", time.time()), "t": time.time(),
             "cameras": {int(k): (v.get("frames", 0), v.get("fps", 0.0), v.get("started_at"))
                         for k, v in doc.get("cameras", {}).items()},
             "cpu": {k: p.cpu_percent(None) for k, p in self.procs.items()},
             "rss": {k: p.memory_info().rss for k, p in self.procs.items()},
             "system_cpu": self.psutil.cpu_percent(None), "load": os.getloadavg()[0]}
        self.samples.append(s)
        return s

    def run_for(self, seconds: float, every: float, label: str = "") -> list[dict]:
        start = len(self.samples)
        deadline = time.monotonic() + seconds
        while True:
            s = self.sample()
            fps = [v[1] for v in s["cameras"].values()]
            print(f"  {label} {len(fps)} cameras, published fps min {min(fps, default=0):.2f}, worker CPU "
                  f"{s['cpu']['worker']:.0f}%, RSS {s['rss']['worker'] / 2**20:.0f} MiB, daphne CPU "
                  f"{s['cpu']['daphne']:.0f}%, machine CPU {s['system_cpu']:.0f}% (load {s['load']:.1f})",
                  file=sys.stderr)
            if time.monotonic() >= deadline:
                break
            time.sleep(min(every, max(0.0, deadline - time.monotonic())))
        return self.samples[start:]


def camera_rates(samples: list[dict], camera_ids: list[int], window: float = WINDOW) -> dict[int, dict]:
    """Per camera: mean fps over the samples, minimum fps over any ``window`` seconds, minimum published fps,
    restarts seen (its frame counter went back)."""
    out = {}
    for cid in camera_ids:
        points = [(s["at"], s["cameras"][cid][0], s["cameras"][cid][1], s["cameras"][cid][2])
                  for s in samples if cid in s["cameras"]]
        restarts = sum(1 for a, b in zip(points, points[1:]) if b[3] != a[3] or b[1] < a[1])
        if len(points) < 2 or points[-1][0] <= points[0][0]:
            out[cid] = {"mean": 0.0, "min_window": 0.0, "min_published": 0.0, "restarts": restarts}
            continue
        mean = (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0]) if not restarts else float("nan")
        worst = float("inf")
        for i, (t0, f0, _, s0) in enumerate(points):
            for t1, f1, _, s1 in points[i + 1:]:
                if t1 - t0 >= window:
                    if s1 == s0:
                        worst = min(worst, (f1 - f0) / (t1 - t0))
                    break
        if worst == float("inf"):  # the run was shorter than one window
            worst = mean
        out[cid] = {"mean": mean, "min_window": worst, "min_published": min(p[2] for p in points),
                    "restarts": restarts}
    return out


def _mean(values):
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def _ts(iso: str | None) -> float | None:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp() if iso else None


def event_push_latencies(messages, camera_ids, since: float, until: float | None = None) -> dict:
    """Seconds from each event's start to its first message on the client, and from its close to the
    message that carries the closed episode, for events of ``camera_ids`` that started in [since, until].

    ``messages`` are (receive time, JSON message) as :class:`Subscribers` keeps them; ``started_at`` is
    the worker's wall clock right after the first anomalous frame was analysed.
    """
    wanted = set(camera_ids)
    first, closed, described = {}, {}, {}
    for received, message in list(messages):
        if message.get("type") != "event" or message["event"]["camera"] not in wanted:
            continue
        event = message["event"]
        started = _ts(event["started_at"])
        if started is None or started < since or (until is not None and started > until):
            continue
        first.setdefault(event["id"], received - started)
        if event.get("ended_at") and event["id"] not in closed:
            closed[event["id"]] = received - _ts(event["ended_at"])
            if event.get("description"):
                described[event["id"]] = True
    return {"first": list(first.values()), "closed": list(closed.values()), "described": len(described)}


def lag_quantiles(worker_name: str, camera_ids) -> tuple[float | None, float | None]:
    """p50 and p95 of the capture-to-analysed lag over the cameras (their histograms summed)."""
    from inference.stats import quantile

    doc = worker_doc(worker_name) or {}
    merged = None
    for cid in camera_ids:
        h = doc.get("cameras", {}).get(str(cid), {}).get("frame_lag_s")
        if not h:
            continue
        if merged is None:
            merged = {"buckets": [[b, c] for b, c in h["buckets"]], "count": h["count"], "sum": h["sum"]}
        else:
            merged["buckets"] = [[b, c + c2] for (b, c), (_, c2) in zip(merged["buckets"], h["buckets"])]
            merged["count"] += h["count"]
            merged["sum"] += h["sum"]
    return quantile(0.5, merged), quantile(0.95, merged)


def start_cameras(camera_ids, subscribers: Subscribers | None, *, stagger: float = 0.0) -> None:
    from cameras.models import Camera
    from cameras.services import camera_start

    for i, cid in enumerate(camera_ids):
        if i and stagger:
            time.sleep(stagger)
        camera_start(camera=Camera.objects.get(pk=cid), by=None)  # queues camera_run on the real broker
        if subscribers is not None:
            subscribers.add(cid)


def wait_running(camera_ids, worker_name: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = worker_doc(worker_name) or {}
        cams = doc.get("cameras", {})
        if all(cams.get(str(c), {}).get("fps", 0) > 0 for c in camera_ids):
            return True
        time.sleep(1)
    return False


def capacity_search(start: int, guess: int, most: int, keeps_up, *, step: int = CAPACITY_STEP,
                    tries: int = 3) -> tuple[int, set[int]]:
    """The most cameras that keep up, from ``start`` (known to keep up) and a first ``guess``.

    Tries the guess, then one step of ``step`` cameras up while every camera keeps up (``keeps_up(n)``
    runs that many cameras and says so), or down until one does; it stops at a count that keeps up
    next to one that does not, or after ``tries`` steps. Returns (capacity, the counts that failed):
    with no failure above the capacity, more may fit.
    """
    capacity, failed = start, set()
    n = min(most, max(start + step, guess))
    for _ in range(tries):
        if n <= capacity or n > most or n in failed:
            break
        if keeps_up(n):
            capacity, n = n, n + step
        else:
            failed.add(n)
            n -= step
        if capacity + step in failed:
            break
    return capacity, failed


# --- the per-frame profile --------------------------------------------------------------------------
class _NullLayer:
    async def group_send(self, group, message):
        return None


def profile_loop(frames: int = 300) -> tuple[str, dict]:
    """Run one camera's real loop (E2ESystem.run, not paced) on pets-walkway in this thread under cProfile,
    with a live subscriber's frame encoding and the clip buffer on; where the time of an analysed frame goes."""
    from concurrent.futures import ThreadPoolExecutor

    from django.conf import settings

    from inference.e2e import Callbacks, E2ESystem
    from inference.registry import make_detector, resolve
    from inference.sources import open_source
    from runtime.frames import FramePublisher

    clip = DATASETS / "pets-walkway" / "vtest.avi"
    url = str(clip) if clip.exists() else "demo://"

    class Publisher(FramePublisher):
        def tiers(self, camera_id):
            return {5}

    publisher = Publisher(_NullLayer(), None, width=settings.STREAM_WIDTH, quality=settings.STREAM_JPEG_QUALITY,
                          queue_size=100000)

    def run_once(profiler=None):
        publisher.encoded = 0
        stop = threading.Event()
        count = [0]

        class CB(Callbacks):
            def on_frame(self, camera_id, frame, captured_at):
                publisher.on_frame(camera_id, frame, captured_at)
                publisher._last.clear()  # every analysed frame goes to the (5 fps) subscriber

            def on_score(self, camera_id, timestamp, result):
                count[0] += 1
                if count[0] >= frames:
                    stop.set()

        config = {"id": 1, "detector": "motion", "detector_params": {}, "threshold": 0.5, "analysis_fps": FPS,
                  "analysis_width": settings.CAMERA_DEFAULTS["analysis_width"], "event_close_seconds": 3.0}
        system = E2ESystem(config, source=open_source(url, loop=True), detector=make_detector(config),
                           agent=resolve("agent", "rules")(), callbacks=CB(), clip_store=lambda *a: "",
                           executor=ThreadPoolExecutor(1), realtime=False)
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        system.run(stop)
        if profiler:
            profiler.disable()
        return (time.perf_counter() - started) / max(1, count[0]) * 1000, count[0], system

    run_once()  # warm up (detector background, codecs)
    plain_ms, n, system = run_once()
    profiler = cProfile.Profile()
    profiled_ms, n, system = run_once(profiler)
    stats = pstats.Stats(profiler).stats

    def cum(file_end: str, func: str) -> float:
        return sum(v[3] for (f, _, name), v in stats.items() if f.endswith(file_end) and name == func)

    detector_file = Path(sys.modules[type(system.detector).__module__].__file__).name
    total = cum("e2e.py", "_loop")
    read = cum("sources.py", "read") + cum("sources.py", "skip")
    publish = cum("worker.py", "on_frame")
    process = cum("e2e.py", "process")
    downscale = cum("e2e.py", "analysis_images")
    detect = cum(detector_file, "score")
    resize = sum(v[3] for (f, _, name), v in stats.items() if name.endswith("resize") and "cv2" in f + name)
    rows = [
        ("decode (read the analysed frame, grab the skipped one: 10 fps file, 5 fps analysis)", read),
        ("live frame for the subscriber: JPEG-encode once (downscaled first only when wider than STREAM_WIDTH)", publish),
        ("analysis frame: downscale to analysis_width and grayscale, once", downscale),
        (f"detector ({type(system.detector).__name__}.score)", detect),
        ("score history, episode tracking, clip pre-roll buffer (no copy), figures", process - downscale - detect),
        ("loop bookkeeping (pacing off, read plan, callbacks)", total - read - publish - process),
    ]
    table = "| stage of one analysed frame | ms (profiled) | share |\n|---|---|---|\n"
    table += "".join(f"| {name} | {1000 * t / n:.2f} | {100 * t / total:.0f}% |\n" for name, t in rows)
    table += f"| **total per analysed frame** | **{1000 * total / n:.2f}** | 100% |\n"
    source = "pets-walkway vtest.avi (480x360, 10 fps)" if clip.exists() else "demo:// (640x360, 10 fps)"
    note = (f"One camera's real loop (`E2ESystem.run`, unpaced) on {source}, {n} analysed frames, one 5 fps "
            f"subscriber, clip buffer on, under cProfile. Without the profiler the same loop takes "
            f"**{plain_ms:.2f} ms per analysed frame** on one core ({1000 / plain_ms:.0f} analysed frames/s; 5 fps "
            f"cameras need {5 * plain_ms / 10:.1f}% of a core each). Frames encoded for the live stream: "
            f"{publisher.encoded} for {n} analysed frames. Each frame "
            f"is decoded once, downscaled once for analysis (the colour copy is what the clip buffer keeps, "
            f"the grayscale is what the detector reads) and once for the live stream; nothing is re-encoded.")
    return table + "\n" + note + "\n", {"ms_per_frame": plain_ms, "profiled_ms": 1000 * total / n,
                                          "cv2_resize_s": resize}


# --- run -------------------------------------------------------------------------------------------------
def run(quick: bool = False) -> str:
    import psutil  # noqa: F401 - required: CPU and memory of the processes

    main_seconds = 60 if quick else 600
    step_seconds = 15  # capacity steps: 2 at most (the 10-minute run is most of `make bench`)
    warmup = 5
    step_warmup = 5  # the capacity steps add cameras to a warm worker
    most = 64
    # Heartbeat 2 s (default); a worker may take more cameras than the default 16 for the capacity steps.
    tmp = setup_django("bench-cameras-", MAX_CAMERAS_PER_WORKER=most)
    from cameras.models import Camera
    from cameras.services import camera_stop

    clips = footage()
    if not clips:
        return "skipped: ../shared/datasets is absent"
    _user, token = bench_user()
    cameras = [Camera.objects.create(name=f"bench {i}", source_url=clips[i % len(clips)], enabled=False,
                                     analysis_fps=FPS, stream_fps=5) for i in range(most)]
    ids = [c.pk for c in cameras]
    daphne, port = start_daphne(tmp)
    worker = None
    subs = None
    try:
        worker = start_worker(tmp, "bench-cameras")
        subs = Subscribers(port, token)
        worker_name = "bench-cameras@"
        sampler = Sampler(worker, daphne, worker_name)
        time.sleep(3)
        idle = sampler.run_for(3, 3, "idle:")
        idle_rss = _mean(s["rss"]["worker"] for s in idle)
        step_rows = []
        main = None
        running = 0
        capacity = 0
        failed: set[int] = set()
        latency = None

        def step(n: int, seconds: float) -> dict:
            nonlocal running
            if n > running:
                # The first 16 come up STAGGER_S apart, as cameras do: those that loop the same clip then do not
                # show the same scene at the same instant (and raise their events together) all run long.
                start_cameras(ids[running:n], subs, stagger=STAGGER_S if running == 0 else 0.0)
            for cid in ids[n:running]:
                camera_stop(camera=Camera.objects.get(pk=cid), by=None)
            running = n
            if not wait_running(ids[:n], worker_name, 90):
                print(f"  {n} cameras: not all running after 90 s", file=sys.stderr)
            sampler.run_for(warmup if n == 16 else step_warmup, 5, f"{n} warming:")
            samples = sampler.run_for(seconds, 5, f"{n} cameras:")
            rates = camera_rates(samples, ids[:n], window=min(WINDOW, seconds / 2))
            worst = min(r["min_window"] for r in rates.values())
            cpu = _mean(s["cpu"]["worker"] for s in samples[1:])
            row = {"n": n, "seconds": seconds, "worst": worst, "mean": _mean(r["mean"] for r in rates.values()),
                   "cpu": cpu, "daphne_cpu": _mean(s["cpu"]["daphne"] for s in samples[1:]),
                   "rss": samples[-1]["rss"]["worker"], "system_cpu": _mean(s["system_cpu"] for s in samples[1:]),
                   "load": _mean(s["load"] for s in samples), "frames": dict(subs.counts), "rates": rates,
                   "began": samples[0]["t"], "ended": samples[-1]["t"]}
            step_rows.append(row)
            print(f"  => {n} cameras: worst {worst:.2f} fps, worker CPU {cpu:.0f}%", file=sys.stderr)
            return row

        main_n = 16
        row = step(main_n, main_seconds)
        main = row
        # End to end under this load: every event the real footage raised during the run, from its first
        # anomalous frame to its first message on that camera's subscriber.
        pushed = event_push_latencies(subs.messages, ids[:main_n], row["began"], row["ended"])
        latency = {**pushed, "lag": lag_quantiles(worker_name, ids[:main_n])}
        if row["worst"] >= TARGET_FPS:
            # Capacity: a first guess from the worker's CPU at the main step (90% of the machine for the
            # worker), rounded down to a multiple of 8 cameras.
            guess = (int(main_n * 0.9 * (os.cpu_count() or 1) * 100 / max(row["cpu"], 1.0))
                     // CAPACITY_STEP * CAPACITY_STEP)
            capacity, failed = capacity_search(
                main_n, guess, most, lambda n: step(n, step_seconds)["worst"] >= TARGET_FPS, tries=2)
    finally:
        if subs is not None:
            subs.close()
        if worker is not None:
            worker.stop()
        daphne.stop()
    profile_table, profile = profile_loop(150)

    from bench.report import write_section

    command = "python -m bench cameras" + (" --quick" if quick else "")
    ncores = os.cpu_count()
    table = (f"| cameras | seconds measured | worst camera fps (over {WINDOW:g} s windows; "
             f"{min(WINDOW, step_seconds / 2):g} s in the capacity steps) | mean fps | worker CPU | CPU per "
             "camera | worker RSS | RSS growth per camera | daphne CPU | whole machine CPU (load) |\n"
             "|---|---|---|---|---|---|---|---|---|---|\n")
    for r in step_rows:
        table += (f"| {r['n']} | {r['seconds']} | {r['worst']:.2f} | {r['mean']:.2f} | {r['cpu']:.0f}% | "
                  f"{r['cpu'] / r['n']:.1f}% | {r['rss'] / 2**20:.0f} MiB | "
                  f"{(r['rss'] - idle_rss) / r['n'] / 2**20:.1f} MiB | {r['daphne_cpu']:.0f}% | "
                  f"{r['system_cpu']:.0f}% ({r['load']:.1f}) |\n")
    body = ""
    if main:
        row = main
        rates = row["rates"]
        ok = all(r["min_window"] >= TARGET_FPS for r in rates.values())
        seconds = row["seconds"]
        body += (f"**16 cameras for {seconds / 60:.1f} min: the slowest camera kept "
                 f"{min(r['min_window'] for r in rates.values()):.2f} fps over any {WINDOW:.0f} s window "
                 f"(target {TARGET_FPS}: {'met' if ok else 'NOT met'}); CPU per camera {row['cpu'] / 16:.1f}% of one "
                 f"core (worker {row['cpu']:.0f}% of {ncores * 100}%); memory per camera "
                 f"{(row['rss'] - idle_rss) / 16 / 2**20:.1f} MiB (worker {row['rss'] / 2**20:.0f} MiB, idle "
                 f"{idle_rss / 2**20:.0f} MiB); daphne {row['daphne_cpu']:.0f}% CPU delivering 16 x 5 fps.**\n\n")
        if latency is not None and not latency["first"]:
            body += ("**No event started during the run** (the motion detector gains confidence over its first "
                     "minute): no end-to-end figure from it.\n\n")
        elif latency is not None:
            ms = lambda v: "n/a" if v is None or v != v else f"{1000 * v:.0f} ms"  # noqa: E731
            first95 = pct(latency["first"], 0.95)
            e2e = first95 + (latency["lag"][1] or 0.0) if latency["first"] else float("nan")
            verdict = "met" if e2e < TARGET_P95_S else "NOT met"
            body += (f"**Events during the run: {len(latency['first'])}. From the first anomalous frame to the "
                     f"event on its camera's subscriber: p50 {ms(pct(latency['first'], 0.5))}, p95 {ms(first95)}; "
                     f"the frames' capture-to-analysed lag p95 {ms(latency['lag'][1])}; end to end p95 at most "
                     f"{ms(e2e)} (target under {TARGET_P95_S * 1000:.0f} ms without a VLM: {verdict}).** "
                     "An event's opening record is stored at most EVENT_OPEN_FLUSH_GAP (0.1 s) after the last "
                     "batch, its updates with the next (at most EVENT_FLUSH_INTERVAL, 1 s), and pushed after "
                     "commit; `python -m bench latency` compares the same with a VLM.\n\n")
        body += "| camera | footage | min fps (20 s windows) | min published fps (4 s) | mean fps | frames to its subscriber (since it started) | restarts |\n|---|---|---|---|---|---|---|\n"
        for i, cid in enumerate(ids[:16]):
            r = rates[cid]
            body += (f"| {cid} | {Path(clips[i % len(clips)]).name} | {r['min_window']:.2f} | "
                     f"{r['min_published']:.2f} | {r['mean']:.2f} | {row['frames'].get(cid, 0)} | {r['restarts']} |\n")
        body += "\n"
    body += (f"Most cameras this machine carries at 5 fps (every camera >= {TARGET_FPS} fps over the step): "
             f"**{capacity if capacity else 'fewer than ' + str(main_n)}**"
             f"{'' if capacity + CAPACITY_STEP in failed else ' (no step above it was tried: more may fit)'}.\n\n{table}\n"
             "One real Celery inference worker (`-P threads -c 8`, the default detector `objects` (motion and objects), analysis 5 fps, "
             f"looped file sources; the first 16 cameras start {STAGGER_S:g} s apart, so that the cameras that loop "
             "the same clip do not show the same scene at the same instant) and one daphne with one WebSocket subscriber per camera at 5 fps (the clients "
             "run in the benchmark process on the same cores). Camera fps comes from the frame counters the "
             "worker publishes each heartbeat; CPU is per process, 100% = one core; RSS growth is over the "
             "idle worker. The whole-machine CPU column shows what else ran meanwhile.\n\n"
             "### Per-frame loop profile\n\n" + profile_table)
    write_section("cameras", "Cameras per worker (real footage, one worker, live subscribers)", body, command)
    if main:
        row = main
        rates = row["rates"]
        events = (f"; {len(latency['first'])} events, push p95 {1000 * pct(latency['first'], 0.95):.0f} ms"
                  if latency and latency["first"] else "")
        return (f"16 cameras: slowest {min(r['min_window'] for r in rates.values()):.2f} fps{events}, "
                f"{row['cpu'] / 16:.1f}% CPU and {(row['rss'] - idle_rss) / 16 / 2**20:.1f} MiB per camera; "
                f"capacity {capacity} cameras; loop {profile['ms_per_frame']:.1f} ms/frame")
    return f"capacity {capacity} cameras (16 not reached); loop {profile['ms_per_frame']:.1f} ms/frame"
