"""Observability: per-camera accumulators, the worker's published figures, /metrics and /api/v1/stats/."""

import json
import os
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families

from alerts.models import AlertItem, Delivery
from cameras import live
from cameras.models import Camera
from cameras.live import stats_key, worker_stats
from cameras.services import camera_start
from inference.agent import RulePolicy
from inference.detectors import MotionDetector
from inference.e2e import Callbacks, E2ESystem
from inference.sources import open_source
from inference.stats import CameraStats, Histogram, quantile
from runtime.process import create_logger, create_manager, create_pool
from runtime.stats import StatsPublisher
from surveillance.metrics import camera_live_figures, stats_overview
from tests.factories import CameraFactory, EventFactory, UserFactory
from tests.runtime.test_pipeline import run_frames
from tests.runtime.test_worker import wait_for

WORKER = f"metrics-test-{os.getpid()}"
REMOTE = "203.0.113.7"  # a documentation address: never loopback


# --- accumulators -------------------------------------------------------------------------------------
def test_histogram_counts_each_value_in_its_le_bucket():
    h = Histogram((1, 2, 5, 10))
    for v in (0.5, 1, 1.5, 3, 7, 20, -0.2, float("nan")):
        h.observe(v)
    snap = h.snapshot()
    # le=1 holds 0.5, 1 and the clamped -0.2; NaN is not a measurement; 20 is only in +Inf.
    assert snap["buckets"] == [[1.0, 3], [2.0, 4], [5.0, 5], [10.0, 6]]
    assert snap["count"] == 7 == h.count
    assert snap["sum"] == pytest.approx(0.5 + 1 + 1.5 + 3 + 7 + 20)
    json.dumps(snap, allow_nan=False)  # published as strict JSON


def test_quantile_interpolates_inside_the_bucket_like_prometheus():
    h = Histogram((1, 2, 5, 10))
    for v in (0.5, 1, 1.5, 3, 7, 20):
        h.observe(v)
    snap = h.snapshot()  # cumulative 2, 3, 4, 5, +Inf 6
    assert quantile(0.25, snap) == pytest.approx(0.75)  # rank 1.5 of 2 in [0, 1]
    assert quantile(0.5, snap) == pytest.approx(2.0)  # rank 3: the top of (1, 2]
    assert quantile(0.6, snap) == pytest.approx(2 + 3 * 0.6)  # rank 3.6 in (2, 5]
    assert quantile(1.0, snap) == 10.0  # in +Inf: the highest finite bound
    assert quantile(0.5, Histogram((1,)).snapshot()) is None
    with pytest.raises(ValueError):
        quantile(1.5, snap)
    with pytest.raises(ValueError):
        Histogram((2, 1))


def test_camera_stats_snapshot():
    stats = CameraStats(clock=lambda: 1000.0)
    stats.analysed(3.0, 0.02)
    stats.analysed(12.0, None)  # lag unknown: only the detector time counts
    stats.event()
    snap = stats.snapshot()
    assert snap["started_at"] == 1000.0 and snap["events"] == 1
    assert snap["detector_ms"]["count"] == 2 and snap["detector_ms"]["sum"] == 15.0
    assert snap["frame_lag_s"]["count"] == 1 and snap["lag_s"] == 0.02 and snap["detector_ms_last"] == 12.0
    assert quantile(0.5, snap["detector_ms"]) == pytest.approx(2 + 3 * (1 - 0) / 1)  # rank 1 at the top of (2, 5]


# --- the camera loop measures ----------------------------------------------------------------------------
class SlowDetector:
    """The real motion detector, at least 4 ms per frame (sleep is never shorter)."""

    def __init__(self, inner):
        self.inner = inner

    def score(self, gray, timestamp):
        time.sleep(0.004)
        return self.inner.score(gray, timestamp)

    def reset(self):
        self.inner.reset()


class EventRecorder(Callbacks):
    def __init__(self):
        self.ids = set()

    def on_event(self, camera_id, record):
        self.ids.add(record["id"])


def test_the_loop_records_detector_time_lag_and_events():
    config = {"id": 1, "threshold": 0.5, "analysis_fps": 5.0, "analysis_width": 320}
    recorder = EventRecorder()
    system = E2ESystem(config, source=open_source("demo://?seed=11&anomaly_every=15"),
                       detector=SlowDetector(MotionDetector(threshold=0.5)), agent=RulePolicy(),
                       callbacks=recorder, realtime=False)
    run_frames(system, 5 * 90)
    system.wait_pending()
    snap = system.stats_snapshot()
    assert snap["frames"] == system.frames >= 5 * 90
    detector = snap["detector_ms"]
    assert detector["count"] == system.frames  # every analysed frame timed
    assert dict(detector["buckets"])[2.0] == 0  # each took at least the 4 ms sleep
    assert detector["sum"] >= 4.0 * system.frames and snap["detector_ms_last"] >= 4.0
    assert snap["frame_lag_s"]["count"] == system.frames and snap["lag_s"] >= 0
    # Each event is counted once, although it is emitted at open and again at close.
    assert snap["events"] == len(recorder.ids) >= 1
    assert snap["state"] == "stopped"


def test_process_measures_lag_from_the_capture_time():
    config = {"id": 2, "analysis_fps": 5.0}
    source = open_source("demo://?seed=3")
    source.open()
    system = E2ESystem(config, source=source, detector=MotionDetector(), agent=RulePolicy(), realtime=False)
    system.process(source.read())  # no capture time (offline use): no lag recorded
    system.process(source.read(), captured_at=time.time() - 0.3)
    source.close()
    snap = system.stats_snapshot()
    assert snap["detector_ms"]["count"] == 2 and snap["frame_lag_s"]["count"] == 1
    assert snap["lag_s"] >= 0.3 and dict(snap["frame_lag_s"]["buckets"])[0.25] == 0
    assert snap["fps"] > 0  # just analysed: not stale


# --- the worker publishes ---------------------------------------------------------------------------------
@pytest.fixture
def redis_client():
    r = live.client()
    yield r
    for key in r.scan_iter(match=stats_key(f"{WORKER}*")):
        r.delete(key)


def test_publisher_writes_json_with_a_ttl(redis_client):
    StatsPublisher(WORKER, ttl=6.0, client=redis_client, extra=lambda: {"live_frames": {"sent": 3}}).publish(
        {7: {"state": "running", "fps": 5.0}})
    key = stats_key(WORKER)
    assert 0 < redis_client.pttl(key) <= 6000
    doc = worker_stats(redis_client)[WORKER]
    assert doc["cameras"] == {"7": {"state": "running", "fps": 5.0}} and doc["live_frames"] == {"sent": 3}
    assert doc["worker"] == WORKER and abs(doc["at"] - time.time()) < 60


@pytest.mark.django_db(transaction=True)
def test_the_worker_publishes_each_cameras_figures_every_heartbeat(settings, tmp_path, redis_client):
    settings.WORKER_HEARTBEAT_SECONDS = 0.3
    settings.CAMERA_LEASE_SECONDS = 3
    settings.METRICS_SNAPSHOT_HEARTBEATS = 4
    settings.EVENT_LOG_DIR = tmp_path / "eventlog"
    settings.MEDIA_ROOT = tmp_path / "media"
    camera = camera_start(camera=CameraFactory(source_url="demo://?seed=4"), by=None)
    logger = create_logger(WORKER).start()
    manager = create_manager(WORKER, logger, create_pool())
    try:
        assert manager.start(camera.id) == "started"

        def figures():
            return worker_stats(redis_client).get(WORKER, {}).get("cameras", {}).get(str(camera.id), {})

        assert wait_for(lambda: figures().get("frames", 0) >= 5 and figures().get("state") == "running")
        doc = worker_stats(redis_client)[WORKER]
        assert set(doc["live_frames"]) == {"encoded", "sent", "dropped"}
        f = figures()
        assert f["detector_ms"]["count"] >= 5 and f["frame_lag_s"]["count"] >= 5 and f["fps"] > 0
        ttl = redis_client.pttl(stats_key(WORKER))
        assert 0 < ttl <= 1200  # 4 heartbeats of 0.3 s
        status = manager.status()[camera.id]
        assert status["frames"] >= 5 and "detector_ms" in status and status["error"] == ""
    finally:
        manager.close()
        logger.close()
    # Closing publishes an empty set: the camera no longer shows under this worker.
    assert worker_stats(redis_client)[WORKER]["cameras"] == {}


# --- the web side -----------------------------------------------------------------------------------------
def _figures(frames=100, detector_ms=(3.0, 4.0, 30.0), lag_s=0.04, events=2):
    stats = CameraStats()
    for ms in detector_ms:
        stats.analysed(ms, lag_s)
    for _ in range(events):
        stats.event()
    return {"state": "running", "fps": 4.9, "frames": frames, **stats.snapshot()}


@pytest.fixture
def published(db, redis_client):
    """Two cameras running on a (published) worker, one WebSocket subscriber, one sent and one failed alert."""
    a = CameraFactory(name="Gate", state="running", worker=WORKER, enabled=True)
    b = CameraFactory(name="Yard", state="running", worker=WORKER, enabled=True)
    StatsPublisher(WORKER, ttl=30, client=redis_client).publish({a.id: _figures(), b.id: _figures(frames=7)})
    live.watch(redis_client, a.id, 5, "test-channel-1")
    user = UserFactory()
    for status in (Delivery.Status.SENT, Delivery.Status.FAILED):
        delivery = Delivery.objects.create(medium="in_app", mode="immediate", status=status, recipient=user)
        AlertItem.objects.create(event=EventFactory(camera=a), recipient=user, camera=a, kind="running",
                                 severity="high", state="delivered", delivery=delivery)
    yield a, b
    live.unwatch(redis_client, a.id, 5, "test-channel-1")


def _families(response):
    assert response.status_code == 200, response.content
    return {f.name: f for f in text_string_to_metric_families(response.content.decode())}


def _sample(families, family, name, **labels):
    found = [s for s in families[family].samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (name, labels, families[family].samples)
    return found[0].value


def test_metrics_exposition_has_per_camera_series_and_web_metrics(client, published, settings):
    settings.METRICS_TOKEN = ""
    a, b = published
    client.get("/health/")  # a request for django-prometheus to count
    families = _families(client.get("/metrics", REMOTE_ADDR="127.0.0.1"))
    ca = {"camera_id": str(a.id), "camera": "Gate", "worker": WORKER}
    assert _sample(families, "surveillance_camera_analysis_fps", "surveillance_camera_analysis_fps", **ca) == 4.9
    assert _sample(families, "surveillance_camera_frames_analysed", "surveillance_camera_frames_analysed_total",
                   **ca) == 100
    assert _sample(families, "surveillance_camera_frames_analysed", "surveillance_camera_frames_analysed_total",
                   camera_id=str(b.id), camera="Yard", worker=WORKER) == 7
    assert _sample(families, "surveillance_camera_events", "surveillance_camera_events_total", **ca) == 2
    assert _sample(families, "surveillance_camera_frame_lag_last_seconds",
                   "surveillance_camera_frame_lag_last_seconds", **ca) == 0.04
    # Detector time in seconds: 3 and 4 ms fall in le=0.005, 30 ms in le=0.05.
    det = "surveillance_camera_detector_seconds"
    assert families[det].type == "histogram"
    assert _sample(families, det, det + "_bucket", le="0.002", **ca) == 0
    assert _sample(families, det, det + "_bucket", le="0.005", **ca) == 2
    assert _sample(families, det, det + "_bucket", le="0.05", **ca) == 3
    assert _sample(families, det, det + "_bucket", le="+Inf", **ca) == 3
    assert _sample(families, det, det + "_count", **ca) == 3
    assert _sample(families, det, det + "_sum", **ca) == pytest.approx(0.037)
    lag = "surveillance_camera_frame_lag_seconds"
    assert _sample(families, lag, lag + "_bucket", le="0.05", **ca) == 3
    cam = {"camera_id": str(a.id), "camera": "Gate"}
    assert _sample(families, "surveillance_camera_websocket_subscribers",
                   "surveillance_camera_websocket_subscribers", **cam) == 1
    assert _sample(families, "surveillance_camera_websocket_subscribers", "surveillance_camera_websocket_subscribers",
                   camera_id=str(b.id), camera="Yard") == 0
    alerts = "surveillance_camera_alerts"
    assert _sample(families, alerts, alerts + "_total", status="sent", **cam) == 1
    assert _sample(families, alerts, alerts + "_total", status="failed", **cam) == 1
    assert _sample(families, alerts, alerts + "_total", status="sent", camera_id=str(b.id), camera="Yard") == 0
    assert _sample(families, "surveillance_camera_state", "surveillance_camera_state", state="running",
                   worker=WORKER, **cam) == 1
    assert _sample(families, "surveillance_worker_cameras", "surveillance_worker_cameras", worker=WORKER) == 2
    assert _sample(families, "surveillance_redis_up", "surveillance_redis_up") == 1
    # The web side, from django-prometheus.
    assert "django_http_requests_before_middlewares" in families
    assert sum(s.value for s in families["django_http_requests_total_by_method"].samples) >= 1


@pytest.mark.django_db
@pytest.mark.parametrize("token, headers, remote, who, allowed", [
    ("", {}, "127.0.0.1", None, True),                                    # loopback, no token set
    ("", {}, "::1", None, True),
    ("", {}, REMOTE, None, False),                                        # anonymous remote
    ("", {"HTTP_X_FORWARDED_FOR": REMOTE}, "127.0.0.1", None, False),    # a local proxy relaying a client
    ("", {}, REMOTE, "staff", True),                                      # staff session
    ("", {}, REMOTE, "user", False),                                      # a session, not staff
    ("t0ken-xyz", {"HTTP_AUTHORIZATION": "Bearer t0ken-xyz"}, REMOTE, None, True),
    ("t0ken-xyz", {"HTTP_AUTHORIZATION": "Bearer wrong"}, REMOTE, None, False),
    ("t0ken-xyz", {}, "127.0.0.1", None, False),                          # with a token, loopback is not enough
    ("t0ken-xyz", {}, REMOTE, "staff", True),
])
def test_metrics_access(client, settings, token, headers, remote, who, allowed):
    settings.METRICS_TOKEN = token
    if who:
        client.force_login(UserFactory(is_staff=(who == "staff")))
    response = client.get("/metrics", REMOTE_ADDR=remote, **headers)
    assert response.status_code == (200 if allowed else 403)
    if allowed:
        assert b"surveillance_database_up 1.0" in response.content
    else:
        assert b"Forbidden" in response.content and b"surveillance_" not in response.content


def test_stats_api_is_for_staff_only(api_as, published, staff, viewer):
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/stats/").status_code == 401
    assert api_as(viewer).get("/api/v1/stats/").status_code == 403
    response = api_as(staff).get("/api/v1/stats/")
    assert response.status_code == 200
    a, b = published
    body = response.json()
    assert any(w["name"] == WORKER and w["cameras"] == sorted([a.id, b.id]) for w in body["workers"])
    row = next(c for c in body["cameras"] if c["id"] == a.id)
    assert row["name"] == "Gate" and row["worker"] == WORKER and row["state"] == "running"
    assert (row["fps"], row["frames"], row["events"], row["lag_s"]) == (4.9, 100, 2, 0.04)
    assert row["detector_ms_p50"] == pytest.approx(2 + 3 * 1.5 / 2)  # rank 1.5 of 2 in (2, 5] ms
    assert row["detector_ms_p95"] == pytest.approx(20 + 30 * (2.85 - 2) / 1)  # rank 2.85 in (20, 50] ms
    assert (row["alerts_sent"], row["alerts_failed"], row["subscribers"]) == (1, 1, 1)
    assert row["since"] and body["redis_ok"] is True
    # A camera no worker reports: its database state, no figures.
    idle = next(c for c in body["cameras"] if c["worker"] == "" and c["id"] not in (a.id, b.id))
    assert idle["fps"] == 0 and idle["detector_ms_p50"] is None and idle["frames"] == 0


def test_camera_live_figures_is_one_camera_row(published):
    a, _ = published
    row = camera_live_figures(camera=a)
    assert row["id"] == a.id and row["frames"] == 100 and row["subscribers"] == 1 and row["alerts_sent"] == 1
    assert stats_overview(camera_ids=[a.id])["cameras"] == [row]


def test_stats_api_is_in_the_schema():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert "/api/v1/stats/" in schema["paths"]
    assert "detector_ms_p95" in schema["components"]["schemas"]["StatsCamera"]["properties"]


def test_scrapes_cost_a_bounded_number_of_queries(client, api_as, staff, redis_client, settings,
                                                  django_assert_max_num_queries):
    settings.METRICS_TOKEN = "scrape-token"
    auth = {"HTTP_AUTHORIZATION": "Bearer scrape-token", "REMOTE_ADDR": REMOTE}
    staff_api = api_as(staff)

    def cost():
        with CaptureQueriesContext(connection) as scrape:
            assert client.get("/metrics", **auth).status_code == 200
        with CaptureQueriesContext(connection) as stats:
            assert staff_api.get("/api/v1/stats/").status_code == 200
        return len(scrape), len(stats)

    cameras = [CameraFactory(state="running", worker=WORKER)]
    few = cost()
    cameras += [CameraFactory(state="running", worker=WORKER) for _ in range(24)]
    StatsPublisher(WORKER, ttl=30, client=redis_client).publish({c.id: _figures() for c in cameras})
    assert cost() == few  # the same queries for 25 cameras as for one
    with django_assert_max_num_queries(4):  # the cameras, the alert counts, the recorded footage, the deletions
        client.get("/metrics", **auth)
    assert Camera.objects.count() == 25


def test_the_description_queue_figures_reach_metrics_and_stats(client, db, redis_client, settings):
    """A real DescribeQueue's figures, published by the worker, become worker-level series."""
    import threading

    from inference.describe_queue import DescribeQueue

    settings.METRICS_TOKEN = ""
    queue = DescribeQueue(concurrency=1, max_size=4, per_camera_per_minute=0)
    done = threading.Event()
    try:
        queue.submit(1, lambda: "a person", lambda answer, reason: done.set(), severity="high", score=0.9,
                     deadline=5.0)
        assert done.wait(5)
        StatsPublisher(WORKER, ttl=30, client=redis_client, describe_queue=queue).publish({})
    finally:
        queue.close()
    families = _families(client.get("/metrics", REMOTE_ADDR="127.0.0.1"))
    family = "surveillance_worker_describe_requests"
    assert _sample(families, family, family + "_total", worker=WORKER, outcome="completed") == 1
    assert _sample(families, family, family + "_total", worker=WORKER, outcome="dropped_deadline") == 0
    wait = "surveillance_worker_describe_wait_seconds"
    assert families[wait].type == "histogram" and _sample(families, wait, wait + "_count", worker=WORKER) == 1
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    workers = client.get("/api/v1/stats/").json()["workers"]
    assert next(w for w in workers if w["name"] == WORKER)["describe_queue"]["completed"] == 1


def test_recording_figures_per_camera_and_tier_oldest_footage_and_deletions(client, db, settings):
    """Recorded footage (recordings.Segment) and retention's deletions (recordings.DeletionCount) in /metrics."""
    from datetime import datetime, timedelta
    from datetime import timezone as tz

    from recordings.models import DeletionCount
    from recordings.services import segment_index

    settings.METRICS_TOKEN = ""
    gate, yard = CameraFactory(name="Gate"), CameraFactory(name="Yard")
    t0 = datetime(2026, 1, 1, tzinfo=tz.utc)
    for i, (camera, tier, size) in enumerate([(gate, "fast", 100), (gate, "fast", 50), (gate, "archive", 7),
                                              (yard, "fast", 20)]):
        start = t0 + timedelta(hours=10 - i)  # the archived segment is the gate's oldest
        segment_index(camera_id=camera.id, start=start, end=start + timedelta(seconds=10), path=f"{i}.mp4",
                      size=size, tier=tier)
    DeletionCount.objects.create(reason="size", segments=3, bytes=3000)
    families = _families(client.get("/metrics", REMOTE_ADDR="127.0.0.1"))
    g, y = {"camera_id": str(gate.id), "camera": "Gate"}, {"camera_id": str(yard.id), "camera": "Yard"}
    name = "surveillance_recording_bytes"
    assert _sample(families, name, name, tier="fast", **g) == 150
    assert _sample(families, name, name, tier="archive", **g) == 7
    assert _sample(families, name, name, tier="fast", **y) == 20
    name = "surveillance_recording_segments"
    assert _sample(families, name, name, tier="fast", **g) == 2 and _sample(families, name, name, tier="fast", **y) == 1
    name = "surveillance_recording_oldest_timestamp_seconds"
    assert _sample(families, name, name, **g) == (t0 + timedelta(hours=8)).timestamp()
    assert _sample(families, name, name, **y) == (t0 + timedelta(hours=7)).timestamp()
    name = "surveillance_recording_deleted_segments"
    assert families[name].type == "counter"
    assert _sample(families, name, name + "_total", reason="size") == 3
    assert _sample(families, name, name + "_total", reason="age") == 0
    name = "surveillance_recording_deleted_bytes"
    assert _sample(families, name, name + "_total", reason="size") == 3000
