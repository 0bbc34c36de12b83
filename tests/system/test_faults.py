"""Faults injected into real components (docs/reliability.md).

Real daphne, Celery worker(s) and beat against the test database, a real stream served on
loopback by Debian's ffmpeg (MJPEG over HTTP), real footage, a dedicated redis-server and a
TCP proxy in front of PostgreSQL. Intervals are shortened through the same environment
variables an administrator would set; each test says which.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import websockets
from django.db import connection
from guardian.shortcuts import assign_perm
from rest_framework_simplejwt.tokens import AccessToken

from alerts.models import AlertItem, AlertRule
from cameras.live import stats_key
from cameras.models import Camera
from cameras.services import camera_start
from events.models import AnomalyEvent
from runtime.tasks import camera_run
from tests.conftest import dataset, jwt_client
from tests.factories import CameraFactory, UserFactory
from tests.system.processes import FFmpegStream, Processes, RedisServer, TcpProxy, free_port, process_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CLIP = "pets-walkway/vtest.avi"
#: Short intervals, as an administrator may set them (the defaults are in surveillance/settings.py).
FAST = dict(WORKER_HEARTBEAT_SECONDS=1, CAMERA_LEASE_SECONDS=5, CAMERA_REDISPATCH_SECONDS=3,
            SOURCE_RECONNECT_MAX_SECONDS=2, CAMERA_OFFLINE_SECONDS=3, EVENT_FLUSH_INTERVAL=0.5)


@pytest.fixture
def processes():
    procs = Processes()
    yield procs
    procs.stop()


def wait_until(predicate, timeout: float, what: str, output=lambda: "") -> float:
    """Seconds until ``predicate()`` is true; fails naming ``what`` after ``timeout``."""
    started = time.monotonic()
    while True:
        value = predicate()
        if value:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            pytest.fail(f"not within {timeout:g} s: {what}\n{output()}")
        time.sleep(0.2)


def camera_row(camera_id: int) -> Camera:
    connection.close()  # a fresh read, never a connection broken by an injected fault
    return Camera.objects.get(pk=camera_id)


def analysing_since(camera_id: int, since: float) -> bool:
    """The worker reports the camera running with a frame analysed after ``since`` (unix time)."""
    cam = camera_row(camera_id)
    return (cam.state == "running" and cam.measured_fps > 0 and cam.last_frame_at is not None
            and cam.last_frame_at.timestamp() > since)


def log_records(log_dir: Path) -> list[dict]:
    records = []
    for path in sorted(log_dir.glob("*.jsonl")):
        if path.name.endswith(".rejected.jsonl"):
            continue
        for line in path.read_bytes().splitlines():
            if line.strip():
                records.append(json.loads(line))
    return records


def dispatch(camera: Camera) -> None:
    camera_start(camera=camera, by=None)
    camera_run.apply_async(args=[camera.id])  # the real broker (the suite records .delay only)


class LiveClient:
    """A WebSocket client in a thread that behaves like static/js/live.js: when the server closes
    the connection it connects again (0.5 s backoff) and subscribes again."""

    def __init__(self, port: int, user, cameras: list[int], *, frames: bool = False):
        self.url = f"ws://127.0.0.1:{port}/ws/stream/?token={AccessToken.for_user(user)}"
        self.origin = f"http://127.0.0.1:{port}"
        self.cameras = cameras
        self.frames = frames
        self.messages: list[tuple[float, dict]] = []
        self.connects = 0
        self.closed = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.thread.start()

    async def _run(self):
        while not self.closed.is_set():
            try:
                async with websockets.connect(self.url, origin=self.origin, max_size=2**22, open_timeout=5) as ws:
                    self.connects += 1
                    for camera in self.cameras:
                        await ws.send(json.dumps({"action": "subscribe", "camera": camera, "fps": 5,
                                                  "frames": self.frames}))
                    while not self.closed.is_set():
                        try:
                            raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
                        except asyncio.TimeoutError:
                            continue
                        self.messages.append((time.time(), json.loads(raw)))
            except Exception:  # noqa: BLE001 - closed, refused, reset: reconnect as a browser would
                await asyncio.sleep(0.5)

    def of(self, kind: str, since: float = 0.0, **match) -> list[dict]:
        return [m for at, m in list(self.messages) if at >= since and m.get("type") == kind
                and all(m.get(k) == v for k, v in match.items())]

    def close(self):
        self.closed.set()
        self.thread.join(5)


# -- 1. a stream stops and comes back ----------------------------------------------------------------
def test_stream_stops_camera_reconnects_says_offline_and_resumes(processes, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    stream = FFmpegStream(dataset(CLIP)).start()
    user = UserFactory()
    camera = CameraFactory(source_url=stream.url, threshold=0.99)  # only the offline event is expected
    assign_perm("view_camera", user, camera)
    AlertRule.objects.create(owner=user, name="high", min_severity="high", notify_in_app=True)
    env = process_env(tmp_path, **FAST)
    port = processes.daphne(env)
    processes.worker(env)
    client = LiveClient(port, user, [camera.id])
    try:
        dispatch(camera)
        wait_until(lambda: analysing_since(camera.id, 0), 90, "camera analysing the ffmpeg stream", processes.output)

        killed = time.time()
        stream.kill()
        to_reconnecting = wait_until(lambda: camera_row(camera.id).state == "reconnecting", 20,
                                     "state reconnecting in the database", processes.output)
        wait_until(lambda: client.of("camera.status", killed, camera=camera.id, state="reconnecting"), 10,
                   "a camera.status 'reconnecting' WebSocket message")
        assert "stream" in camera_row(camera.id).last_error  # names the cause

        def offline_event():
            connection.close()
            return AnomalyEvent.objects.filter(camera=camera, details__kind="camera_offline").first()

        to_event = wait_until(offline_event, 30, "a 'camera offline' event", processes.output)
        event = offline_event()
        assert event.severity == "high" and event.ended_at is None
        assert event.description.startswith(f"Camera {camera.name} went offline: stream")
        wait_until(lambda: [m for m in client.of("event", killed) if m["event"]["id"] == str(event.id)], 10,
                   "the offline event pushed over the WebSocket")
        wait_until(lambda: AlertItem.objects.filter(event=event, recipient=user).exists(), 15,
                   "an in-app alert for the offline event", processes.output)

        back = time.time()
        stream.start()
        to_running = wait_until(lambda: analysing_since(camera.id, back), 30,
                                "analysis resumed after the stream came back", processes.output)
        wait_until(lambda: client.of("camera.status", back, camera=camera.id, state="running"), 10,
                   "a camera.status 'running' WebSocket message")
        wait_until(lambda: client.of("score", back + 1, camera=camera.id), 10, "scores flowing again")
        event.refresh_from_db()
        wait_until(lambda: AnomalyEvent.objects.get(pk=event.pk).ended_at is not None, 10,
                   "the offline event closed when frames came back", processes.output)
        event.refresh_from_db()
        assert "back online after" in event.description and event.details["resolved"] == "back online"
        print(f"stream killed -> reconnecting {to_reconnecting:.1f} s, -> offline event {to_event:.1f} s; "
              f"stream back -> running with fresh frames {to_running:.1f} s")
    finally:
        client.close()
        stream.kill()


# -- 2. a worker is killed mid-event -------------------------------------------------------------------
def test_killed_worker_cameras_resume_elsewhere_and_logged_events_are_stored_once(processes, tmp_path, settings):
    from surveillance.schedules import ensure_beat_schedules

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CAMERA_REDISPATCH_SECONDS = FAST["CAMERA_REDISPATCH_SECONDS"]
    ensure_beat_schedules()
    clip = dataset(CLIP)
    # Low threshold (the motion scores of this clip are mostly 0.01-0.1), quick close: events open and close often.
    cam_a = CameraFactory(source_url=str(clip), threshold=0.04, event_close_seconds=0.6)
    cam_b = CameraFactory(source_url=str(clip), threshold=0.04, event_close_seconds=0.6)
    env = process_env(tmp_path, **FAST)
    log_dir = tmp_path / "var" / "eventlog"
    worker_a = processes.worker(env, name="doomed")
    dispatch(cam_a)
    wait_until(lambda: analysing_since(cam_a.id, 0) and camera_row(cam_a.id).worker.startswith("doomed"), 90,
               "camera A running on the first worker", processes.output)
    processes.worker(env, name="survivor", queues="inference,default,survivor")
    camera_start(camera=cam_b, by=None)
    camera_run.apply_async(args=[cam_b.id], queue="survivor")  # B runs on the survivor: its logger is live
    wait_until(lambda: analysing_since(cam_b.id, 0) and camera_row(cam_b.id).worker.startswith("survivor"), 90,
               "camera B running on the second worker", processes.output)
    processes.beat(env, tmp_path)  # now: it redispatches the cameras of a worker that stops beating

    doomed_log = next(log_dir.glob("doomed*.jsonl"))

    def mid_event():  # an event of camera A opened in the log and not closed yet
        records = [r for r in log_records(log_dir) if r["camera_id"] == cam_a.id]
        closed = {r["id"] for r in records if r.get("ended_at")}
        return records and any(r["id"] not in closed for r in records[-3:])

    wait_until(mid_event, 60, "an open event of camera A in the first worker's log", processes.output)
    in_log_before = {r["id"] for r in log_records(log_dir)}
    killed = time.time()
    os.killpg(worker_a.pid, signal.SIGKILL)
    worker_a.wait(10)
    resumed = wait_until(lambda: analysing_since(cam_a.id, killed) and camera_row(cam_a.id).worker.startswith(
        "survivor"), 30, "camera A resumed by the surviving worker within 30 s", processes.output)

    def all_stored():
        connection.close()
        ids = {r["id"] for r in log_records(log_dir)}
        return ids and ids <= {str(i) for i in AnomalyEvent.objects.values_list("id", flat=True)}

    stored = wait_until(all_stored, 30, "every logged event stored", processes.output)
    processes.stop()  # the survivor stores what it still holds and exits
    records = log_records(log_dir)
    ids = [r["id"] for r in records]
    rows = list(AnomalyEvent.objects.filter(camera__in=[cam_a, cam_b]).values_list("id", flat=True))
    assert in_log_before <= set(ids)
    assert sorted(str(i) for i in rows) == sorted(set(ids))  # each logged event is one row, nothing else
    assert doomed_log.with_suffix(".jsonl.committed").read_text().strip() == str(doomed_log.stat().st_size)
    print(f"{len(in_log_before)} events logged before SIGKILL; camera resumed on the survivor "
          f"{resumed:.1f} s after; all {len(set(ids))} logged events stored {stored:.1f} s later "
          f"({len(ids)} log lines)")


# -- 3. Redis restarts -----------------------------------------------------------------------------------
def test_redis_restart_workers_beat_and_websocket_clients_reconnect(processes, tmp_path, settings):
    from surveillance.schedules import ensure_beat_schedules

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CAMERA_REDISPATCH_SECONDS = 2
    ensure_beat_schedules()  # beat dispatches every camera here: it reaches workers only through Redis
    redis_server = RedisServer(tmp_path).start()
    clip = dataset(CLIP)
    user = UserFactory()
    camera = CameraFactory(source_url=str(clip), threshold=0.04, event_close_seconds=0.6)
    assign_perm("view_camera", user, camera)
    env = process_env(tmp_path, **{**FAST, "CAMERA_REDISPATCH_SECONDS": 2})
    env["REDIS_URL"] = redis_server.url  # broker, channel layer and cache of every process
    log_dir = tmp_path / "var" / "eventlog"
    port = processes.daphne(env)
    processes.worker(env)
    processes.beat(env, tmp_path)
    camera_start(camera=camera, by=None)
    client = LiveClient(port, user, [camera.id], frames=True)
    try:
        wait_until(lambda: analysing_since(camera.id, 0), 90, "camera dispatched by beat and running",
                   processes.output)
        wait_until(lambda: client.of("frame") and client.of("score"), 30, "frames and scores on the WebSocket")
        worker_name = camera_row(camera.id).worker
        connects = client.connects

        redis_server.stop()  # SIGKILL: every connection drops, and the data is gone (no persistence)
        down_at = time.time()
        time.sleep(5)
        redis_server.start()
        up_at = time.time()

        to_frames = wait_until(lambda: client.of("frame", up_at + 0.5) and client.of("score", up_at + 0.5), 60,
                               "frames and scores on the WebSocket again", processes.output)
        to_heartbeat = wait_until(lambda: analysing_since(camera.id, up_at + 1), 30, "the worker reporting again",
                                  processes.output)
        assert camera_row(camera.id).worker == worker_name  # kept running where it was, no restart
        # Beat and the worker's broker connection: a camera started now is dispatched by beat.
        late = CameraFactory(source_url=str(clip), threshold=0.99)
        assign_perm("view_camera", user, late)
        camera_start(camera=late, by=None)
        started = time.time()
        to_dispatch = wait_until(lambda: analysing_since(late.id, started), 60,
                                 "a camera dispatched by beat after the restart", processes.output)

        def events_after(at):
            connection.close()
            return AnomalyEvent.objects.filter(camera=camera, started_at__gt=_dt(at)).count()

        wait_until(lambda: events_after(up_at), 60, "events stored after the restart", processes.output)
        wait_until(lambda: {r["id"] for r in log_records(log_dir)} <= {
            str(i) for i in AnomalyEvent.objects.values_list("id", flat=True)}, 30, "every logged event stored")
        print(f"Redis down {up_at - down_at:.1f} s; WebSocket client reconnected {client.connects - connects} "
              f"time(s), frames again {to_frames:.1f} s after Redis returned, worker heartbeat {to_heartbeat:.1f} s, "
              f"beat dispatch of a new camera {to_dispatch:.1f} s")
    finally:
        client.close()
        processes.stop()
        redis_server.stop()


def _dt(ts: float):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, tz=timezone.utc)


# -- 4. PostgreSQL unreachable for a minute --------------------------------------------------------------
OUTAGE_SECONDS = 60


def test_database_unreachable_for_a_minute_worker_keeps_analysing_and_stores_later(processes, tmp_path, settings):
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://..., as .ci/run sets): SQLite is a file, "
                    "not a server that can become unreachable")
    import redis as redis_lib

    settings.MEDIA_ROOT = tmp_path / "media"
    proxy = TcpProxy(db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432))
    clip = dataset(CLIP)
    user = UserFactory()
    camera = CameraFactory(source_url=str(clip), threshold=0.04, event_close_seconds=0.6)
    assign_perm("view_camera", user, camera)
    env = process_env(tmp_path, **FAST)
    port = processes.daphne(env)  # daphne reaches the database directly: only the worker loses it
    worker_env = dict(env, DATABASE_URL=env["DATABASE_URL"].replace(
        f":{db.get('PORT') or 5432}/", f":{proxy.port}/"))
    assert str(proxy.port) in worker_env["DATABASE_URL"]
    processes.worker(worker_env)
    log_dir = tmp_path / "var" / "eventlog"
    client = LiveClient(port, user, [camera.id], frames=True)
    r = redis_lib.Redis.from_url(settings.REDIS_URL)
    try:
        dispatch(camera)
        wait_until(lambda: analysing_since(camera.id, 0), 90, "camera running", processes.output)
        worker = camera_row(camera.id).worker

        def published_fps():
            raw = r.get(stats_key(worker))
            return json.loads(raw)["cameras"].get(str(camera.id), {}).get("fps", 0) if raw else 0

        cut_at = time.time()
        proxy.cut()
        fps_during = []
        while time.time() - cut_at < OUTAGE_SECONDS:
            time.sleep(5)
            fps_during.append(published_fps())
        restored_at = time.time()
        proxy.restore()

        assert min(fps_during) > 1, fps_during  # analysis went on the whole minute
        frames = client.of("frame", cut_at + 1)
        scores = client.of("score", cut_at + 1)
        assert [m for m in frames if m["ts"] > restored_at - 5] and len(scores) >= OUTAGE_SECONDS // 2, len(scores)
        during = [r for r in log_records(log_dir) if cut_at + 1 < _ts(r["started_at"]) < restored_at - 1]
        assert during, "no event was logged during the outage: nothing would have been tested"

        def all_stored():
            connection.close()
            return {r["id"] for r in log_records(log_dir)} <= {
                str(i) for i in AnomalyEvent.objects.values_list("id", flat=True)}

        to_stored = wait_until(all_stored, 60, "the events logged during the outage stored", processes.output)
        to_report = wait_until(lambda: analysing_since(camera.id, restored_at), 30, "the worker reporting again",
                               processes.output)
        assert camera_row(camera.id).worker == worker  # never stopped or moved
        print(f"database unreachable {restored_at - cut_at:.0f} s: published fps during it {fps_during}; "
              f"{len(scores)} scores and {len(frames)} frames reached the WebSocket; {len({r['id'] for r in during})} "
              f"events logged meanwhile, all stored {to_stored:.1f} s after it returned; state report "
              f"{to_report:.1f} s")
    finally:
        client.close()
        processes.stop()
        proxy.close()


def _ts(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


# -- 5. bad sources -----------------------------------------------------------------------------------------
def test_bad_sources_show_their_cause_and_the_other_cameras_carry_on(processes, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    clip = dataset(CLIP)
    mp4 = dataset("ucsd-ped1/videos/testing/Test024.mp4")
    corrupt = tmp_path / "corrupt.mp4"
    data = mp4.read_bytes()
    corrupt.write_bytes(data[:4096] + bytes(len(data) // 2))  # the header, then zeros: a damaged recording
    text = tmp_path / "notes.mp4"
    text.write_text("This is a shopping list, not a video.\n" * 50)
    noise = tmp_path / "noise.avi"
    noise.write_bytes(os.urandom(200_000))
    closed_port = free_port()
    # A stream whose picture changes size mid-way: JPEG frames of 480x360, then of 320x240, looped.
    two_sizes = tmp_path / "two-sizes.mjpeg"
    with open(two_sizes, "wb") as out:
        for start, size in ((0, "480:360"), (3, "320:240")):
            out.write(subprocess.run(["ffmpeg", "-loglevel", "error", "-ss", str(start), "-t", "3", "-i", str(clip),
                                      "-vf", f"scale={size}", "-c:v", "mjpeg", "-q:v", "5", "-f", "mjpeg", "-"],
                                     check=True, capture_output=True).stdout)
    resizing = FFmpegStream(two_sizes, input_format="mjpeg", copy=True).start()

    good = CameraFactory(name="good", source_url=str(clip), threshold=0.99)
    bad = {
        "corrupt": (CameraFactory(name="corrupt", source_url=str(corrupt)), "error", "corrupt"),
        "text": (CameraFactory(name="text", source_url=str(text)), "error", "not a video: the file looks like text"),
        "noise": (CameraFactory(name="noise", source_url=str(noise)), "error", "not a video"),
        "unreachable": (CameraFactory(name="unreachable", source_url=f"rtsp://127.0.0.1:{closed_port}/live"),
                        "reconnecting", "stream unreachable"),
    }
    resized = CameraFactory(name="resized", source_url=resizing.url, threshold=0.99)
    env = process_env(tmp_path, **FAST)
    processes.worker(env)
    try:
        for camera in [good, resized] + [c for c, _, _ in bad.values()]:
            dispatch(camera)
        wait_until(lambda: analysing_since(good.id, 0), 90, "the good camera running", processes.output)
        for name, (camera, state, cause) in bad.items():
            wait_until(lambda: camera_row(camera.id).state == state and cause in camera_row(camera.id).last_error,
                       30, f"{name}: state {state} naming '{cause}'",
                       lambda: f"{camera_row(camera.id).__dict__}\n{processes.output()}")
        checked = time.time()
        time.sleep(8)  # more than a full loop of the two-size stream (6 s)
        for camera in (good, resized):
            assert analysing_since(camera.id, checked + 4), camera_row(camera.id).__dict__  # carried on
        assert camera_row(good.id).measured_fps >= 3  # 5 fps asked; the bad neighbours cost it nothing
        assert camera_row(resized.id).last_error == ""
        errors = {name: camera_row(c.id).last_error for name, (c, _, _) in bad.items()}
        print("errors shown:", json.dumps(errors, indent=1))
        print(f"good camera {camera_row(good.id).measured_fps:.1f} fps, resized stream "
              f"{camera_row(resized.id).measured_fps:.1f} fps")
    finally:
        processes.stop()
        resizing.kill()

    # A malformed URL never reaches a worker: the API says what is wrong with it.
    staff = UserFactory(is_staff=True, is_superuser=True)
    for url, says in (("rtsp://", "no host"), ("rtsp://cam:99999/x", "invalid port"), ("ftp://cam/x", "unsupported"),
                      ("rtsp://bad host/x", "spaces")):
        response = jwt_client(staff).post("/api/v1/cameras/", {"name": "x", "source_url": url}, format="json")
        assert response.status_code == 400, (url, response.content)
        assert says in json.dumps(response.json()), (url, response.json())
