"""Observability: ``GET /metrics`` (Prometheus text format) and ``GET /api/v1/stats/`` (JSON, staff).

The figures come from three places, read once per request whatever the number of cameras:
- each inference worker's per-camera figures, published to Redis every heartbeat
  (``runtime.stats.StatsPublisher``: analysis fps, frames, frame lag and detector-time
  histograms, events, state): one SCAN and one MGET;
- WebSocket subscribers per camera, from the live-watcher registry (``cameras.live``): one pipeline;
- the database: the cameras (one query) and alerts sent / failed per camera (one aggregate query);
  on /metrics also the recorded footage per camera and tier (one aggregate query) and what retention
  deleted, per reason (one query).

django-prometheus adds the web side's request, response and latency metrics to the same page.
See docs/metrics.md for every series and the access rules.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import prometheus_client
import redis
from django.conf import settings
from django.db.models import Count, Min, Sum
from django.http import Http404, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts.models import AlertItem, Delivery
from cameras import live
from cameras.models import Camera
from cameras.selectors import camera_get_for_user
from inference.stats import quantile
from recordings.models import DeletionCount, Segment

log = logging.getLogger(__name__)

CAMERA_LABELS = ["camera_id", "camera"]
WORKER_CAMERA_LABELS = ["camera_id", "camera", "worker"]
PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


# --- gathering (selectors) ---------------------------------------------------------------------------
@dataclass
class Figures:
    """Everything one scrape or one stats answer reads, gathered in a bounded number of round trips."""

    cameras: list[dict]                                          # id, name, state, worker (the database)
    workers: dict[str, dict] = field(default_factory=dict)       # worker -> its published figures
    subscribers: dict[int, int] = field(default_factory=dict)    # camera -> live WebSocket subscriptions
    alerts: dict[int, dict[str, int]] = field(default_factory=dict)  # camera -> {"sent": n, "failed": n}
    redis_ok: bool = True

    def camera_figures(self, camera: dict) -> tuple[str, dict | None]:
        """(worker, its figures for this camera): the worker the database names, else the freshest report."""
        cid = str(camera["id"])
        named = self.workers.get(camera["worker"] or "")
        if named and cid in named.get("cameras", {}):
            return camera["worker"], named["cameras"][cid]
        found = [(doc.get("at", 0), name, doc["cameras"][cid]) for name, doc in self.workers.items()
                 if cid in doc.get("cameras", {})]
        if found:
            _, name, figures = max(found, key=lambda f: f[0])
            return name, figures
        return camera["worker"] or "", None


_redis_lock = threading.Lock()
_redis_client: tuple[str, redis.Redis] | None = None


def _redis() -> redis.Redis:
    """One client (and connection pool) per process for scrapes, not a new connection each time."""
    global _redis_client
    with _redis_lock:
        if _redis_client is None or _redis_client[0] != settings.REDIS_URL:
            _redis_client = (settings.REDIS_URL, live.client())
        return _redis_client[1]


def _subscribers(r: redis.Redis, camera_ids: list[int]) -> dict[int, int]:
    """Live (unexpired) WebSocket subscriptions per camera, read-only, in one pipeline."""
    if not camera_ids:
        return {}
    pipe = r.pipeline(transaction=False)
    for cid in camera_ids:
        pipe.hgetall(live.watchers_key(cid))
    now = time.time()
    return {cid: sum(1 for expires in entries.values() if float(expires) >= now)
            for cid, entries in zip(camera_ids, pipe.execute())}


def _alerts(camera_ids: list[int] | None) -> dict[int, dict[str, int]]:
    """Deliveries sent and failed per camera (a digest naming two cameras counts once for each): one query."""
    items = AlertItem.objects.filter(delivery__status__in=[Delivery.Status.SENT, Delivery.Status.FAILED])
    if camera_ids is not None:
        items = items.filter(camera_id__in=camera_ids)
    out: dict[int, dict[str, int]] = {}
    rows = items.order_by().values("camera_id", "delivery__status").annotate(n=Count("delivery_id", distinct=True))
    for row in rows:
        out.setdefault(row["camera_id"], {})[row["delivery__status"]] = row["n"]
    return out


def figures_gather(*, camera_ids: list[int] | None = None) -> Figures:
    """The cameras (all, or ``camera_ids``), the workers' figures, subscribers and alert counts.

    Two database queries and two Redis round trips (three with subscribers), whatever the number
    of cameras. Redis being down leaves the worker figures empty and ``redis_ok`` False.
    """
    cameras = Camera.objects.order_by("id")
    if camera_ids is not None:
        cameras = cameras.filter(pk__in=camera_ids)
    figures = Figures(cameras=list(cameras.values("id", "name", "state", "worker")))
    try:
        r = _redis()
        figures.workers = live.worker_stats(r)
        figures.subscribers = _subscribers(r, [c["id"] for c in figures.cameras])
    except redis.RedisError as exc:
        log.warning("Metrics: Redis unavailable: %s", exc)
        figures.redis_ok = False
    figures.alerts = _alerts(camera_ids)
    return figures


@dataclass
class RecordingFigures:
    """Recorded footage per camera and tier, and retention's deletions per reason (for /metrics)."""

    tiers: list[dict] = field(default_factory=list)              # camera_id, tier, bytes, segments, oldest
    deletions: dict[str, tuple[int, int]] = field(default_factory=dict)  # reason -> (segments, bytes)


def recording_figures_gather() -> RecordingFigures:
    """Two queries whatever the number of cameras and segments: one aggregate over the segments, one over the
    deletion counts."""
    tiers = list(Segment.objects.order_by().values("camera_id", "tier")
                 .annotate(bytes=Sum("size"), segments=Count("id"), oldest=Min("start")))
    deletions = {reason: (segments, nbytes) for reason, segments, nbytes
                 in DeletionCount.objects.values_list("reason", "segments", "bytes")}
    return RecordingFigures(tiers=tiers, deletions=deletions)


def _iso(ts) -> str | None:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat() if ts else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _camera_row(figures: Figures, camera: dict) -> dict:
    worker, f = figures.camera_figures(camera)
    f = f or {}
    alerts = figures.alerts.get(camera["id"], {})
    lag = f.get("frame_lag_s")
    return {
        "id": camera["id"],
        "name": camera["name"],
        "worker": worker,
        "state": f.get("state") or camera["state"],
        "fps": f.get("fps", 0.0),
        "frames": f.get("frames", 0),
        "lag_s": f.get("lag_s"),
        "lag_s_p95": _round(quantile(0.95, lag)),
        "detector_ms": f.get("detector_ms_last"),
        "detector_ms_p50": _round(quantile(0.5, f.get("detector_ms"))),
        "detector_ms_p95": _round(quantile(0.95, f.get("detector_ms"))),
        "events": f.get("events", 0),
        "alerts_sent": alerts.get("sent", 0),
        "alerts_failed": alerts.get("failed", 0),
        "subscribers": figures.subscribers.get(camera["id"], 0),
        "since": _iso(f.get("started_at")),
    }


def stats_overview(*, camera_ids: list[int] | None = None) -> dict:
    """The figures as JSON: ``{"workers": [...], "cameras": [...], "redis_ok": bool, "at": iso}``.

    Staff only (the caller checks): it names every worker and camera. ``camera_ids`` narrows it.
    """
    figures = figures_gather(camera_ids=camera_ids)
    now = time.time()
    workers = [{
        "name": name,
        "at": _iso(doc.get("at")),
        "age_s": round(max(0.0, now - doc.get("at", now)), 3),
        "cameras": sorted(int(c) for c in doc.get("cameras", {})),
        "live_frames": doc.get("live_frames", {}),
        "describe_queue": {k: v for k, v in (doc.get("describe_queue") or {}).items() if not isinstance(v, dict)},
    } for name, doc in sorted(figures.workers.items())]
    return {
        "at": _iso(now),
        "redis_ok": figures.redis_ok,
        "workers": workers,
        "cameras": [_camera_row(figures, c) for c in figures.cameras],
    }


def camera_live_figures(*, camera) -> dict:
    """One camera's live figures (the camera page, the admin): the same dict as a ``cameras`` entry of
    ``stats_overview``. The caller has checked that the user may view ``camera``."""
    figures = figures_gather(camera_ids=[camera.pk])
    row = next((c for c in figures.cameras if c["id"] == camera.pk), None)
    if row is None:
        row = {"id": camera.pk, "name": camera.name, "state": camera.state, "worker": camera.worker}
    return _camera_row(figures, row)


# --- Prometheus ----------------------------------------------------------------------------------------
def _buckets(snapshot: dict, divisor: float = 1.0) -> list[tuple[str, float]]:
    out = [(floatToGoString(le / divisor), n) for le, n in snapshot.get("buckets", [])]
    out.append(("+Inf", snapshot.get("count", 0)))
    return out


class SurveillanceCollector:
    """Per-camera and per-worker series, read fresh on every scrape (registered once, in REGISTRY)."""

    def describe(self):
        return []  # nothing collected at registration (no database access at import)

    def collect(self):
        try:
            figures = figures_gather()
            db_ok = True
        except Exception:
            log.exception("Metrics: could not read the cameras")
            figures, db_ok = Figures(cameras=[], redis_ok=False), False
        yield from self.families(figures, db_ok=db_ok)
        if db_ok:
            try:
                recordings = recording_figures_gather()
            except Exception:
                log.exception("Metrics: could not read the recordings")
            else:
                yield from self.recording_families(recordings, {c["id"]: c["name"] for c in figures.cameras})

    def recording_families(self, recordings: RecordingFigures, names: dict[int, str]):
        """Recorded footage (docs/recordings.md): bytes and segments per camera and tier, the oldest footage per
        camera, and what retention deleted per reason (every reason, 0 when none)."""
        labels = CAMERA_LABELS + ["tier"]
        size = GaugeMetricFamily("surveillance_recording_bytes", "Bytes of recorded footage of the camera in the tier.",
                                 labels=labels)
        segments = GaugeMetricFamily("surveillance_recording_segments", "Recorded segments of the camera in the tier.",
                                     labels=labels)
        oldest = GaugeMetricFamily("surveillance_recording_oldest_timestamp_seconds",
                                   "Start of the camera's oldest recorded footage (unix time).", labels=CAMERA_LABELS)
        first: dict[int, datetime] = {}
        for row in sorted(recordings.tiers, key=lambda r: (r["camera_id"], r["tier"])):
            camera_labels = [str(row["camera_id"]), names.get(row["camera_id"], "")]
            size.add_metric(camera_labels + [row["tier"]], row["bytes"] or 0)
            segments.add_metric(camera_labels + [row["tier"]], row["segments"])
            if row["oldest"] and (row["camera_id"] not in first or row["oldest"] < first[row["camera_id"]]):
                first[row["camera_id"]] = row["oldest"]
        for camera_id, start in sorted(first.items()):
            oldest.add_metric([str(camera_id), names.get(camera_id, "")], start.timestamp())
        deleted = CounterMetricFamily("surveillance_recording_deleted_segments",
                                      "Segments retention deleted, by reason (age, no_motion, no_event, size, "
                                      "free_space).", labels=["reason"])
        deleted_bytes = CounterMetricFamily("surveillance_recording_deleted_bytes",
                                            "Bytes retention deleted, by reason.", labels=["reason"])
        for reason in DeletionCount.Reason.values:
            n, nbytes = recordings.deletions.get(reason, (0, 0))
            deleted.add_metric([reason], n)
            deleted_bytes.add_metric([reason], nbytes)
        yield from (size, segments, oldest, deleted, deleted_bytes)

    def families(self, figures: Figures, *, db_ok: bool = True):
        up_db = GaugeMetricFamily("surveillance_database_up", "1 when the database answered this scrape.")
        up_db.add_metric([], 1 if db_ok else 0)
        up_redis = GaugeMetricFamily("surveillance_redis_up", "1 when Redis answered this scrape.")
        up_redis.add_metric([], 1 if figures.redis_ok else 0)
        yield up_db
        yield up_redis

        names = {str(c["id"]): c["name"] for c in figures.cameras}
        state = GaugeMetricFamily("surveillance_camera_state", "1 for the camera's current state.",
                                  labels=CAMERA_LABELS + ["state", "worker"])
        subscribers = GaugeMetricFamily("surveillance_camera_websocket_subscribers",
                                        "Live WebSocket subscriptions (one per client and fps tier).",
                                        labels=CAMERA_LABELS)
        alerts = CounterMetricFamily("surveillance_camera_alerts", "Alert deliveries about the camera, by outcome.",
                                     labels=CAMERA_LABELS + ["status"])
        for camera in figures.cameras:
            cid = str(camera["id"])
            labels = [cid, camera["name"]]
            worker, f = figures.camera_figures(camera)
            state.add_metric(labels + [(f or {}).get("state") or camera["state"], worker], 1)
            subscribers.add_metric(labels, figures.subscribers.get(camera["id"], 0))
            counts = figures.alerts.get(camera["id"], {})
            for status in ("sent", "failed"):
                alerts.add_metric(labels + [status], counts.get(status, 0))

        fps = GaugeMetricFamily("surveillance_camera_analysis_fps", "Frames analysed per second (recent).",
                                labels=WORKER_CAMERA_LABELS)
        frames = CounterMetricFamily("surveillance_camera_frames_analysed", "Frames analysed since the camera started "
                                     "on this worker.", labels=WORKER_CAMERA_LABELS)
        events = CounterMetricFamily("surveillance_camera_events", "Events opened since the camera started on this "
                                     "worker.", labels=WORKER_CAMERA_LABELS)
        lag_last = GaugeMetricFamily("surveillance_camera_frame_lag_last_seconds",
                                     "Capture-to-analysed delay of the last analysed frame.",
                                     labels=WORKER_CAMERA_LABELS)
        lag = HistogramMetricFamily("surveillance_camera_frame_lag_seconds",
                                    "Capture-to-analysed delay per analysed frame.", labels=WORKER_CAMERA_LABELS)
        detector = HistogramMetricFamily("surveillance_camera_detector_seconds",
                                         "Detector time per analysed frame.", labels=WORKER_CAMERA_LABELS)
        started = GaugeMetricFamily("surveillance_camera_start_time_seconds",
                                    "When the camera started on this worker (unix time): its counters count from "
                                    "here.", labels=WORKER_CAMERA_LABELS)
        worker_cameras = GaugeMetricFamily("surveillance_worker_cameras", "Cameras running on the worker.",
                                           labels=["worker"])
        worker_age = GaugeMetricFamily("surveillance_worker_report_age_seconds",
                                       "Seconds since the worker last published its figures.", labels=["worker"])
        live_frames = CounterMetricFamily("surveillance_worker_live_frames", "Live-stream frames encoded, sent to "
                                          "subscribers, or dropped, by the worker.", labels=["worker", "outcome"])
        describe = CounterMetricFamily(
            "surveillance_worker_describe_requests", "VLM description requests of the worker's description queue by "
            "outcome (submitted, started, completed, failed, timeouts, dropped_budget, dropped_bound, "
            "dropped_deadline, superseded).", labels=["worker", "outcome"])
        describe_waiting = GaugeMetricFamily("surveillance_worker_describe_waiting",
                                             "Description requests waiting in the worker's queue.", labels=["worker"])
        describe_wait = HistogramMetricFamily("surveillance_worker_describe_wait_seconds",
                                              "How long description requests waited before they started.",
                                              labels=["worker"])
        now = time.time()
        for worker, doc in sorted(figures.workers.items()):
            queue = doc.get("describe_queue") or {}
            for outcome in DESCRIBE_OUTCOMES:
                if isinstance(queue.get(outcome), (int, float)):
                    describe.add_metric([worker, outcome], queue[outcome])
            if queue:
                describe_waiting.add_metric([worker], queue.get("waiting", 0))
            if isinstance(queue.get("wait_s"), dict):
                describe_wait.add_metric([worker], _buckets(queue["wait_s"]), queue["wait_s"].get("sum", 0.0))
            cams = doc.get("cameras", {})
            worker_cameras.add_metric([worker], len(cams))
            worker_age.add_metric([worker], max(0.0, now - float(doc.get("at", now))))
            for outcome, n in sorted((doc.get("live_frames") or {}).items()):
                live_frames.add_metric([worker, outcome], n)
            for cid, f in sorted(cams.items(), key=lambda item: int(item[0])):
                labels = [cid, names.get(cid, ""), worker]
                fps.add_metric(labels, f.get("fps", 0.0))
                frames.add_metric(labels, f.get("frames", 0))
                events.add_metric(labels, f.get("events", 0))
                if f.get("started_at"):
                    started.add_metric(labels, f["started_at"])
                if f.get("lag_s") is not None:
                    lag_last.add_metric(labels, f["lag_s"])
                if f.get("frame_lag_s"):
                    lag.add_metric(labels, _buckets(f["frame_lag_s"]), f["frame_lag_s"].get("sum", 0.0))
                if f.get("detector_ms"):
                    detector.add_metric(labels, _buckets(f["detector_ms"], 1000.0),
                                        f["detector_ms"].get("sum", 0.0) / 1000.0)
        yield from (state, subscribers, alerts, fps, frames, events, lag_last, lag, detector, started,
                    worker_cameras, worker_age, live_frames, describe, describe_waiting, describe_wait)


#: The description queue's counters turned into surveillance_worker_describe_requests{outcome}.
DESCRIBE_OUTCOMES = ("submitted", "started", "completed", "failed", "timeouts", "dropped_budget", "dropped_bound",
                     "dropped_deadline", "superseded")

COLLECTOR = SurveillanceCollector()
_registered: list[bool] = []
_register_lock = threading.Lock()


def register_collector() -> None:
    """Add the collector to prometheus_client's default registry, once per process."""
    with _register_lock:
        if not _registered:
            prometheus_client.REGISTRY.register(COLLECTOR)
            _registered.append(True)


register_collector()


def _direct_loopback(request) -> bool:
    """A request from this machine that did not come through a proxy (a proxy on the same host would
    otherwise make every client look local)."""
    if any(request.META.get(h) for h in PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def metrics_allowed(request) -> bool:
    """``Authorization: Bearer <METRICS_TOKEN>``, a staff session, or (no token set) direct loopback."""
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
            return True
    elif _direct_loopback(request):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


@require_GET
@never_cache
def metrics_view(request):
    if not metrics_allowed(request):
        why = ("send 'Authorization: Bearer <METRICS_TOKEN>' or sign in as staff" if settings.METRICS_TOKEN
               else "scrape from this machine, or sign in as staff (or set METRICS_TOKEN)")
        return HttpResponse(f"Forbidden: /metrics needs a scrape token or staff: {why}.\n", status=403,
                            content_type="text/plain; charset=utf-8")
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = prometheus_client.CollectorRegistry()
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
        registry.register(COLLECTOR)
    else:
        registry = prometheus_client.REGISTRY
    return HttpResponse(prometheus_client.generate_latest(registry), content_type=prometheus_client.CONTENT_TYPE_LATEST)


# --- GET /api/v1/stats/ ------------------------------------------------------------------------------------
class StatsWorkerSerializer(serializers.Serializer):
    name = serializers.CharField()
    at = serializers.DateTimeField(allow_null=True, help_text="When the worker last published its figures.")
    age_s = serializers.FloatField()
    cameras = serializers.ListField(child=serializers.IntegerField())
    live_frames = serializers.DictField(child=serializers.IntegerField(),
                                        help_text="Live-stream frames encoded, sent and dropped.")
    describe_queue = serializers.DictField(
        child=serializers.FloatField(allow_null=True), required=False,
        help_text="The description queue: waiting, running, requests_per_minute, wait_s_p50/p95/p99 and the "
                  "counters (submitted, completed, failed, timeouts, dropped_budget, dropped_bound, "
                  "dropped_deadline, superseded).")


class StatsCameraSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    worker = serializers.CharField(help_text="The worker running the camera ('' when none).")
    state = serializers.CharField()
    fps = serializers.FloatField(help_text="Frames analysed per second (recent; 0 when not running).")
    frames = serializers.IntegerField(help_text="Frames analysed since the camera started on its worker.")
    lag_s = serializers.FloatField(allow_null=True, help_text="Capture-to-analysed delay of the last frame (s).")
    lag_s_p95 = serializers.FloatField(allow_null=True, help_text="95th percentile of the frame lag (s).")
    detector_ms = serializers.FloatField(allow_null=True, help_text="Detector time of the last frame (ms).")
    detector_ms_p50 = serializers.FloatField(allow_null=True, help_text="Median detector time (ms, from buckets).")
    detector_ms_p95 = serializers.FloatField(allow_null=True, help_text="95th percentile detector time (ms).")
    events = serializers.IntegerField(help_text="Events opened since the camera started on its worker.")
    alerts_sent = serializers.IntegerField(help_text="Alert deliveries about this camera that were sent.")
    alerts_failed = serializers.IntegerField(help_text="Alert deliveries about this camera that failed.")
    subscribers = serializers.IntegerField(help_text="Live WebSocket subscriptions.")
    since = serializers.DateTimeField(allow_null=True, help_text="When the camera started on its worker.")


class StatsSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    redis_ok = serializers.BooleanField(help_text="False: Redis did not answer; worker figures are missing.")
    workers = StatsWorkerSerializer(many=True)
    cameras = StatsCameraSerializer(many=True)


class StatsApi(APIView):
    """Live figures of every worker and camera (the JSON twin of /metrics). Staff only."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses=StatsSerializer, summary="Live figures of workers and cameras (staff)")
    def get(self, request):
        return Response(StatsSerializer(stats_overview()).data)


class CameraFiguresApi(APIView):
    """The camera's live figures from the worker running it (fps, frame lag, detector time, events,
    alerts, live subscribers): the same figures as /metrics, for one camera the user may view."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, camera_id):
        camera = camera_get_for_user(request.user, camera_id)
        if camera is None:
            raise Http404("No camera with that id, or you may not view it.")
        return Response(camera_live_figures(camera=camera))
