"""Score history: the worker's buckets and batches, storing and pruning, the API, and the camera page's 24 hours."""

import json
import logging
import re
from datetime import datetime, timedelta, timezone as dt_timezone
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone

from events.models import ScoreBucket
from events.selectors import score_history
from events.services import score_buckets_store, score_history_prune
from runtime.callbacks import WorkerCallbacks
from runtime.scores import ScoreHistory
from surveillance.schedules import beat_schedules
from tests.factories import CameraFactory, EventFactory

T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC: a bucket boundary for any length that divides a day


class Clock:
    def __init__(self, t=T0):
        self.t = t

    def __call__(self):
        return self.t


class Inline:
    """The db-writer executor, run inline so tests see each write as it happens."""

    def __init__(self):
        self.calls = 0

    def submit(self, fn, *args, **kwargs):
        self.calls += 1
        return fn(*args, **kwargs)

    try_submit = submit  # BoundedExecutor's non-raising submit


def history(clock, batches, **kw):
    kw.setdefault("bucket_seconds", 10)
    kw.setdefault("flush_seconds", 5)
    return ScoreHistory(store=batches.append, submit=lambda fn, batch: fn(batch), clock=clock, **kw)


def at(seconds_after_t0):
    return datetime.fromtimestamp(T0 + seconds_after_t0, tz=dt_timezone.utc)


def bucket(camera, seconds_after_t0, peak, mean=None, count=5, seconds=10):
    return ScoreBucket.objects.create(camera=camera, start=at(seconds_after_t0), seconds=seconds, max_score=peak,
                                      mean_score=peak if mean is None else mean, count=count)


# -- the worker side: buckets in memory, batches to the database ------------------------------------------
def test_scores_become_buckets_with_max_mean_and_count_per_camera():
    clock, batches = Clock(), []
    scores = history(clock, batches, flush_seconds=30)
    for i, value in enumerate([0.2, 0.8, 0.5, 0.1]):  # camera 1: four scores in the first 10 s
        clock.t = T0 + i * 2
        scores.add(1, value)
        scores.add(2, 0.3)
    clock.t = T0 + 12  # the next bucket: the first ones are finished, not yet written (flush every 30 s)
    scores.add(1, 0.4)
    scores.add(2, float("nan"))  # not a score: ignored
    assert batches == []
    clock.t = T0 + 31
    scores.add(1, 0.9)
    assert len(batches) == 1  # one write for every camera
    rows = sorted(batches[0])
    assert rows[0] == (1, T0, 10, 0.8, pytest.approx(0.4), 4)
    assert rows[1] == (1, T0 + 10, 10, 0.4, 0.4, 1)
    assert rows[2] == (2, T0, 10, 0.3, pytest.approx(0.3), 4)
    assert len(rows) == 3  # camera 1's bucket at T0+30 is still open; camera 2 went quiet after T0+10


def test_a_quiet_cameras_last_bucket_is_written_once_it_ended_and_close_writes_the_rest():
    clock, batches = Clock(), []
    scores = history(clock, batches)
    scores.add(1, 0.5)
    clock.t = T0 + 3
    scores.add(2, 0.7)
    clock.t = T0 + 11  # camera 1 is silent from now on; camera 2 goes on
    scores.add(2, 0.6)
    assert [sorted(b) for b in batches] == [[(1, T0, 10, 0.5, 0.5, 1), (2, T0, 10, 0.7, 0.7, 1)]]
    clock.t = T0 + 14
    scores.add(2, 0.2)
    scores.close()  # shutdown: the open bucket too
    assert batches[-1] == [(2, T0 + 10, 10, 0.6, pytest.approx(0.4), 2)]
    assert scores.stored == 3 and scores.dropped == 0


def test_a_failing_write_is_logged_and_loses_only_its_batch(caplog):
    clock, stored = Clock(), []
    fail = {"now": True}

    def store(batch):
        if fail["now"]:
            raise RuntimeError("database is down")
        stored.extend(batch)

    scores = ScoreHistory(store=store, submit=lambda fn, batch: fn(batch), clock=clock, bucket_seconds=10,
                          flush_seconds=5)
    with caplog.at_level(logging.ERROR, logger="runtime.scores"):
        for i in range(10):  # 0..18 s: the camera loop goes on whatever the database does
            clock.t = T0 + 2 * i
            scores.add(1, 0.1 * i)
    assert scores.dropped == 1 and stored == []
    assert "Storing 1 score-history buckets failed" in caplog.text and "database is down" in caplog.text
    fail["now"] = False
    clock.t = T0 + 26
    scores.add(1, 0.5)
    assert stored == [(1, T0 + 10, 10, pytest.approx(0.9), pytest.approx(0.7), 5)]  # the next batch is kept


@pytest.mark.django_db(transaction=True)
def test_the_worker_callbacks_store_buckets_through_the_db_writer(settings):
    settings.SCORE_HISTORY_BUCKET_SECONDS = 10
    settings.SCORE_HISTORY_FLUSH_SECONDS = 5
    camera, other = CameraFactory(), CameraFactory()
    clock, writer = Clock(), Inline()
    callbacks = WorkerCallbacks("worker-test", logger=None, db_writer=writer, clock=clock)
    for i in range(12):  # 0..22 s, two cameras
        clock.t = T0 + 2 * i
        callbacks.on_score(camera.pk, 0.0, SimpleNamespace(score=0.1 + 0.05 * i))
        callbacks.on_score(other.pk, 0.0, SimpleNamespace(score=0.2))
    other.delete()  # its buckets still in memory are skipped, not an error that loses camera's
    callbacks.scores.close()
    rows = list(ScoreBucket.objects.order_by("start").values_list("camera_id", "start", "max_score", "count"))
    assert rows[:2] == [(camera.pk, at(0), pytest.approx(0.3), 5), (camera.pk, at(10), pytest.approx(0.55), 5)]
    assert (camera.pk, at(20), pytest.approx(0.65), 2) in rows
    assert {r[0] for r in rows} <= {camera.pk, other.pk} and callbacks.scores.dropped == 0
    assert not ScoreBucket.objects.filter(camera_id=other.pk).exists()


class Activity:
    """runtime.recording.Recordings as WorkerCallbacks.on_score sees it: what each score marked."""

    def __init__(self):
        self.calls = []

    def on_activity(self, camera_id, wall, *, motion=True, objects=False):
        self.calls.append((camera_id, motion, objects))


@pytest.mark.django_db
def test_the_worker_callbacks_tell_the_recorder_motion_and_objects_apart(settings):
    """Regions are motion, the object detector's labels are objects: each marks the segment on its own (the
    timeline's lanes, the motion mode's retention); a score with neither marks nothing."""
    activity = Activity()
    callbacks = WorkerCallbacks("worker-test", logger=None, db_writer=Inline(), clock=Clock(), recordings=activity)
    person = [{"label": "person", "score": 0.9, "box": [1, 2, 3, 4]}]
    for regions, details in (([], {}), ([(1, 2, 3, 4)], {}), ([], {"objects": person}),
                             ([(1, 2, 3, 4)], {"objects": person}), ([], {"objects": []}), ([], None)):
        callbacks.on_score(7, 0.0, SimpleNamespace(score=0.1, regions=regions, details=details))
    assert activity.calls == [(7, True, False), (7, False, True), (7, True, True)]
    callbacks.scores.close()


@pytest.mark.django_db
def test_storing_skips_deleted_cameras_in_one_insert(camera, django_assert_num_queries):
    with django_assert_num_queries(2):  # the live cameras, then one insert
        stored = score_buckets_store(buckets=[(camera.pk, T0, 10, 0.5, 0.25, 50), (999999, T0, 10, 0.9, 0.9, 5)])
    assert stored == 1
    row = ScoreBucket.objects.get()
    assert (row.camera_id, row.start, row.max_score, row.mean_score, row.count) == (camera.pk, at(0), 0.5, 0.25, 50)


# -- retention ----------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_pruning_deletes_what_is_older_than_the_retention_days(settings, camera):
    settings.SCORE_HISTORY_DAYS = 7
    now = timezone.now()
    other = CameraFactory()
    for cam in (camera, other):
        for days in (0, 6.9, 7.1, 30):
            ScoreBucket.objects.create(camera=cam, start=now - timedelta(days=days), max_score=0.5, mean_score=0.2,
                                       count=3)
    assert score_history_prune(now=now) == 4
    assert score_history_prune(now=now) == 0  # safe to run twice
    assert ScoreBucket.objects.count() == 4
    assert not ScoreBucket.objects.filter(start__lt=now - timedelta(days=7)).exists()
    settings.SCORE_HISTORY_DAYS = 0  # 0: kept
    assert score_history_prune(now=now + timedelta(days=365)) == 0


@pytest.mark.django_db
def test_pruning_runs_on_beat(settings, camera):
    spec = beat_schedules()["events-score-history-prune"]
    assert spec == {"task": "events.tasks.events_score_history_prune", "every": settings.SCORE_HISTORY_PRUNE_SECONDS}
    from events.tasks import events_score_history_prune

    ScoreBucket.objects.create(camera=camera, start=timezone.now() - timedelta(days=settings.SCORE_HISTORY_DAYS + 1),
                               max_score=0.5, mean_score=0.2, count=3)
    assert events_score_history_prune.run() == 1 and not ScoreBucket.objects.exists()


# -- reading: merged to a bounded number of points ------------------------------------------------------------
@pytest.mark.django_db
def test_history_merges_buckets_into_at_most_max_points(settings, camera):
    settings.SCORE_HISTORY_BUCKET_SECONDS = 10
    for i in range(60):  # ten minutes of buckets, 0.01 .. 0.60
        bucket(camera, 10 * i, peak=0.01 * (i + 1), mean=0.005 * (i + 1), count=2)
    bucket(camera, 0, peak=0.9, mean=0.1, count=6)  # the same span written by a second worker: merged
    bucket(CameraFactory(), 0, peak=1.0)  # another camera: not in this one's history
    full = score_history(camera_id=camera.pk, since=at(0), until=at(600))
    assert full["step_seconds"] == 10 and len(full["t"]) == 60 and full["t"][0] == T0
    assert full["max"][0] == 0.9 and full["count"][0] == 8
    assert full["mean"][0] == pytest.approx((0.005 * 2 + 0.1 * 6) / 8, abs=1e-4)
    merged = score_history(camera_id=camera.pk, since=at(0), until=at(600), max_points=7)
    assert len(merged["t"]) <= 7 and merged["step_seconds"] % 10 == 0
    assert merged["max"][0] == 0.9 and merged["max"][-1] == 0.6
    assert sum(merged["count"]) == sum(full["count"]) == 126
    assert all(b - a == merged["step_seconds"] for a, b in zip(merged["t"], merged["t"][1:]))
    part = score_history(camera_id=camera.pk, since=at(100), until=at(200))
    assert part["t"] == [T0 + 100 + 10 * i for i in range(10)]


# -- the API ------------------------------------------------------------------------------------------------
@pytest.fixture
def day_of_scores(camera):
    now = timezone.now()
    for minutes in (5, 60, 23 * 60):
        ScoreBucket.objects.create(camera=camera, start=now - timedelta(minutes=minutes), max_score=0.42,
                                   mean_score=0.2, count=50)
    ScoreBucket.objects.create(camera=camera, start=now - timedelta(hours=25), max_score=0.99, mean_score=0.5,
                               count=50)  # older than the default 24 hours
    return now


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["owner", "viewer", "staff"])
def test_the_api_answers_the_last_24_hours_to_whoever_may_view(api_as, camera, day_of_scores, who, request):
    response = api_as(request.getfixturevalue(who)).get(f"/api/v1/cameras/{camera.pk}/scores/")
    assert response.status_code == 200
    data = response.json()
    assert data["camera"] == camera.pk and len(data["t"]) == 3 and data["max"] == [0.42, 0.42, 0.42]
    assert data["count"] == [50, 50, 50] and data["bucket_seconds"] == 10
    since, until = datetime.fromisoformat(data["since"]), datetime.fromisoformat(data["until"])
    assert until - since == timedelta(hours=24) and abs(until - timezone.now()) < timedelta(minutes=1)


@pytest.mark.django_db
def test_the_api_takes_since_and_until_and_bounds_the_points(api_as, settings, owner, camera, day_of_scores):
    settings.SCORE_HISTORY_MAX_POINTS = 50
    now = day_of_scores
    client = api_as(owner)
    data = client.get(f"/api/v1/cameras/{camera.pk}/scores/",
                      {"since": (now - timedelta(hours=26)).isoformat(), "until": now.isoformat()}).json()
    assert data["max"][0] == 0.99 and len(data["t"]) == 4 and data["step_seconds"] >= 26 * 3600 / 50
    assert len(data["t"]) <= 50
    data = client.get(f"/api/v1/cameras/{camera.pk}/scores/", {"since": (now - timedelta(minutes=30)).isoformat()})
    assert data.json()["t"] and len(data.json()["t"]) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("query,field", [
    ({"since": "yesterday"}, "since"),
    ({"until": "2026-13-45T00:00:00Z"}, "until"),
    ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
    ({"since": "2999-01-01T00:00:00Z"}, "since"),
])
def test_bad_since_or_until_is_a_400_naming_it(api_as, owner, camera, query, field):
    response = api_as(owner).get(f"/api/v1/cameras/{camera.pk}/scores/", query)
    assert response.status_code == 400 and field in response.json()


@pytest.mark.django_db
def test_outsiders_and_unknown_cameras_get_404_and_anonymous_401(api_as, client, outsider, owner, camera,
                                                                 day_of_scores):
    assert api_as(outsider).get(f"/api/v1/cameras/{camera.pk}/scores/").status_code == 404
    assert api_as(outsider).get(f"/api/v1/cameras/{camera.pk}/scores/", {"since": "bad"}).status_code == 404
    assert api_as(owner).get("/api/v1/cameras/999999/scores/").status_code == 404
    assert client.get(f"/api/v1/cameras/{camera.pk}/scores/").status_code == 401


@pytest.mark.django_db
def test_the_endpoint_is_in_the_openapi_schema(api_as, owner):
    schema = api_as(owner).get("/api/v1/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/cameras/{camera_id}/scores/"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"since", "until", "camera_id"}
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert {"t", "max", "mean", "count", "step_seconds"} <= set(schema["components"]["schemas"][ref]["properties"])


# -- the camera page ------------------------------------------------------------------------------------------
def timeline_of(html):
    match = re.search(r'<script id="timeline" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(match.group(1))


@pytest.mark.django_db
def test_the_camera_page_shows_the_24_hours_of_scores_with_the_events(client, owner, camera, day_of_scores):
    event = EventFactory(camera=camera, started_at=day_of_scores - timedelta(hours=2))
    client.force_login(owner)
    html = client.get(reverse("camera-page", args=[camera.pk])).content.decode()
    timeline = timeline_of(html)
    assert len(timeline["history"]["t"]) == 3 and 0.99 not in timeline["history"]["max"]  # only the last 24 hours
    assert timeline["history"]["step_seconds"] >= 10
    assert [e["id"] for e in timeline["events"]] == [str(event.pk)]  # marked on the chart
    assert f'data-scores-url="/api/v1/cameras/{camera.pk}/scores/"' in html
    assert "js/charts.js" in html and "vendor/uplot/uPlot.iife.min.js" in html


@pytest.mark.django_db
def test_the_camera_page_stays_small_and_cheap_with_a_full_day_of_buckets(client, settings, owner, camera,
                                                                          django_assert_max_num_queries):
    settings.SCORE_HISTORY_MAX_POINTS = 300
    now = timezone.now()
    ScoreBucket.objects.bulk_create([
        ScoreBucket(camera=camera, start=now - timedelta(seconds=10 * i), max_score=(i % 7) / 10, mean_score=0.1,
                    count=50) for i in range(1, 8640)])
    client.force_login(owner)
    with django_assert_max_num_queries(12):  # 10 + the open-alerts badge (2)
        html = client.get(reverse("camera-page", args=[camera.pk])).content.decode()
    history = timeline_of(html)["history"]
    assert len(history["t"]) <= 300 and max(history["max"]) == 0.6


def test_a_writer_that_refuses_work_does_not_reach_the_camera_loop(caplog):
    clock = Clock()

    def refuse(fn, batch):
        raise RuntimeError("cannot schedule new futures after shutdown")

    scores = ScoreHistory(store=lambda batch: None, submit=refuse, clock=clock, bucket_seconds=10, flush_seconds=5)
    with caplog.at_level(logging.ERROR, logger="runtime.scores"):
        for i in range(8):
            clock.t = T0 + 2 * i
            scores.add(1, 0.5)
    assert scores.dropped == 1 and "Could not queue 1 score-history buckets" in caplog.text
