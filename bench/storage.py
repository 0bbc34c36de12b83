"""Event storage on the real PostgreSQL: batched against per-event writes, and the events API
with 1,000,000 events stored.

- Writes: the worker's path, ``event_records_store`` (one upsert transaction per batch, with its
  on-commit live push and alert routing), in batches of EVENT_BATCH_SIZE and of 100, against
  saving each event in its own transaction (``AnomalyEvent.save()``, what a system without
  batching does). Events per second.
- Reads: 1,000,000 events over 20 cameras (6 months), a viewer allowed on 10 of them; the
  events API (``GET /api/v1/events/``, in-process through Django and DRF with JWT, no network)
  with the filters operators use and the next page by cursor. p50 / p95 per query shape.

It needs PostgreSQL: ``BENCH_DATABASE_URL`` (default postgres://postgres@127.0.0.1:5432/...), in
a database of its own (``surveillance_bench``), created and dropped here. The measuring runs in
a child process so that it gets its own Django settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone

from bench.report import pct

DB_NAME = "surveillance_bench"
SERVER = os.getenv("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
CAMERAS = 20
VIEWER_CAMERAS = 10


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(sql)


def _record(camera_id: int, started: datetime, i: int) -> dict:
    severity = ("low", "medium", "high", "critical")[i % 4 if i % 10 else 3]
    return {
        "id": str(uuid.uuid4()), "camera_id": camera_id, "started_at": started.isoformat(),
        "ended_at": (started + timedelta(seconds=8)).isoformat(), "peak_score": 0.8, "mean_score": 0.6,
        "severity": severity, "description": "A person runs across the walkway.",
        "decision": {"severity": severity, "actions": ["store", "push"], "reasons": ["score 0.80"],
                     "policy": "rules"},
        "details": {"detector": "motion", "regions": [[10, 20, 30, 40]], "score_curve": [[0, 0.6], [1, 0.8]]},
    }


def _writes(n: int, camera_ids) -> dict:
    from django.conf import settings

    from events import services
    from events.models import AnomalyEvent

    now = datetime.now(timezone.utc)
    results = {}

    def fresh(count):
        return [_record(camera_ids[i % len(camera_ids)], now - timedelta(seconds=i), i) for i in range(count)]

    def timed(label, count, fn):
        t0 = time.perf_counter()
        fn()
        results[label] = count / (time.perf_counter() - t0)
        print(f"  {label}: {results[label]:,.0f} events/s", file=sys.stderr)

    def per_event_saves(records):
        for r in records:
            AnomalyEvent(
                id=uuid.UUID(r["id"]), camera_id=r["camera_id"], started_at=services._parse_time(r["started_at"]),
                ended_at=services._parse_time(r["ended_at"]), peak_score=r["peak_score"],
                mean_score=r["mean_score"], severity=r["severity"], description=r["description"],
                decision=r["decision"], details=r["details"],
            ).save(force_insert=True)

    def batched(records, size, fn):
        return lambda: [fn(records[i:i + size]) for i in range(0, len(records), size)]

    timed("per-event save()", n, lambda: per_event_saves(fresh(n)))
    # The database write alone: what event_records_store writes (validation and the upsert), without
    # its live push and alert routing, against the same number of per-event save()s.
    write = services._upsert_postgresql if services.connection.vendor == "postgresql" else services._upsert_orm
    for size in (1, settings.EVENT_BATCH_SIZE, 100):
        timed(f"batched upsert, batches of {size}", n,
              batched(fresh(n), size, lambda batch: write(services._event_rows(batch))))
    # The ORM's bulk upsert (what the store used before): where the time went.
    for size in (settings.EVENT_BATCH_SIZE, 100):
        timed(f"ORM bulk upsert, batches of {size}", n,
              batched(fresh(n), size, lambda batch: services._upsert_orm(services._event_rows(batch))))
    # One call per event costs 10-20 ms here (the live push and alert routing): a fifth of the events do.
    for size in (1, settings.EVENT_BATCH_SIZE, 100):
        label = "event_records_store, 1 per call" if size == 1 else f"event_records_store, batches of {size}"
        count = n // 5 if size == 1 else n
        timed(label, count, batched(fresh(count), size, services.event_records_store))
    AnomalyEvent.objects.all().delete()
    return results


def _fill(total: int, camera_ids) -> float:
    """Insert ``total`` events over 6 months in one server-side statement, then VACUUM ANALYZE.

    Camera, severity and status repeat in the same patterns as ``_record`` gives the write tests;
    every payload column is filled as the worker fills it.
    """
    from django.db import connection

    t0 = time.perf_counter()
    decision = json.dumps(_record(0, datetime.now(timezone.utc), 1)["decision"])
    details = json.dumps(_record(0, datetime.now(timezone.utc), 1)["details"])
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO events_anomalyevent (id, camera_id, started_at, ended_at, peak_score, mean_score,
                severity, status, description, decision, snapshot, clip, details, created_at, updated_at)
            SELECT gen_random_uuid(), (%s::int[])[1 + i %% %s], t, t + interval '8 s', 0.8, 0.6,
                CASE WHEN i %% 10 = 0 THEN 'critical' ELSE (ARRAY['low', 'medium', 'high', 'critical'])[1 + i %% 4] END,
                CASE WHEN i <= 5000 THEN 'new' ELSE (ARRAY['new', 'acknowledged', 'resolved', 'false_alarm'])[1 + (i / 7) %% 4] END,
                'A person runs across the walkway.', %s::jsonb, '', '', %s::jsonb, t, t
            FROM (SELECT i, now() - (interval '182 days' / %s) * i AS t FROM generate_series(0, %s - 1) AS i) AS s
            """,
            [list(camera_ids), len(camera_ids), decision, details, total, total],
        )
        cur.execute("VACUUM ANALYZE events_anomalyevent")
    return time.perf_counter() - t0


def _reads(user, camera_ids, rounds: int) -> list[tuple[str, float, float, int]]:
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    week_ago = (datetime.now(timezone.utc) - timedelta(days=7)).isoformat()
    month_ago = (datetime.now(timezone.utc) - timedelta(days=60)).isoformat()
    shapes = {
        "newest page (no filter)": {},
        "one camera": {"camera": camera_ids[3]},
        "severity=critical": {"severity": "critical"},
        "status=new, last 7 days": {"status": "new", "since": week_ago},
        "camera + severity=high + older than 60 days": {"camera": camera_ids[6], "severity": "high", "until": month_ago},
    }
    rows = []
    for label, params in shapes.items():
        times, count = [], 0
        client.get("/api/v1/events/", params)  # warm the plan cache
        for _ in range(rounds):
            t0 = time.perf_counter()
            response = client.get("/api/v1/events/", params)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.content[:300]
            count = len(response.json()["results"])
        rows.append((label, pct(times, 0.5), pct(times, 0.95), count))
        print(f"  {label}: p50 {rows[-1][1]:.1f} ms, p95 {rows[-1][2]:.1f} ms", file=sys.stderr)
        # The next page, by the cursor the first page gave.
        nxt = client.get("/api/v1/events/", params).json().get("next")
        if nxt:
            times = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                response = client.get(nxt)
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200
            rows.append((f"{label}, page 2", pct(times, 0.5), pct(times, 0.95), len(response.json()["results"])))
    return rows


def child(quick: bool) -> dict:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    from django.contrib.auth import get_user_model
    from guardian.shortcuts import assign_perm

    from cameras.models import Camera

    cameras = [Camera.objects.create(name=f"bench {i}", source_url="demo://") for i in range(CAMERAS)]
    ids = [c.pk for c in cameras]
    viewer = get_user_model().objects.create_user("viewer", password="bench-pass-123")
    for camera in cameras[:VIEWER_CAMERAS]:
        assign_perm("cameras.view_camera", viewer, camera)
    writes = _writes(400 if quick else 1000, ids)
    total = 100_000 if quick else 1_000_000
    fill_seconds = _fill(total, ids)
    reads = _reads(viewer, ids[:VIEWER_CAMERAS], 30 if quick else 40)
    from django.conf import settings

    return {"writes": writes, "total": total, "fill_seconds": fill_seconds, "reads": reads,
            "batch_size": settings.EVENT_BATCH_SIZE}


def run(quick: bool = False) -> str:
    try:
        _admin(f"DROP DATABASE IF EXISTS {DB_NAME}")
        _admin(f"CREATE DATABASE {DB_NAME}")
    except Exception as exc:
        line = f"skipped: PostgreSQL is needed ({SERVER}): {exc}"
        print(f"storage: {line}", file=sys.stderr)
        return line
    base = SERVER.rsplit("/", 1)[0]
    env = dict(os.environ, DATABASE_URL=f"{base}/{DB_NAME}", DJANGO_SETTINGS_MODULE="surveillance.settings",
               DATA_DIR=tempfile.mkdtemp(prefix="bench-storage-"), LOG_LEVEL="WARNING", DEBUG="0", ALLOWED_HOSTS="testserver", SECURE_SSL_REDIRECT="0",
               SECRET_KEY=os.getenv("SECRET_KEY", "bench-" + uuid.uuid4().hex))
    try:
        out = subprocess.run([sys.executable, "-m", "bench.storage", "--child"] + (["--quick"] if quick else []),
                             env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    finally:
        _admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    result = json.loads(out.strip().splitlines()[-1])
    writes, size = result["writes"], result["batch_size"]
    single = writes["per-event save()"]
    batched_key = f"batched upsert, batches of {size}"
    speedup = writes[batched_key] / single
    full_one = writes["event_records_store, 1 per call"]
    full_key = f"event_records_store, batches of {size}"
    # Where the batched write's time goes: a fixed cost per statement (round trip, planning, commit)
    # and a cost per event (validation, JSON, the row and its indexes), from the batches of 1 and 100.
    per_stmt = 1 / writes["batched upsert, batches of 1"]
    per_row = max(0.0, (100 / writes["batched upsert, batches of 100"] - per_stmt) / 99)
    fixed = max(0.0, per_stmt - per_row)
    table = "| write path | events/s | vs per-event save() |\n|---|---|---|\n" + "".join(
        f"| {k} | {v:,.0f} | {v / single:.1f}x |\n" for k, v in writes.items())
    reads = result["reads"]
    worst = max(p95 for _, _, p95, _ in reads)
    rtable = "| query (viewer on 10 of 20 cameras) | p50 | p95 | rows |\n|---|---|---|---|\n" + "".join(
        f"| {label} | {p50:.1f} ms | {p95:.1f} ms | {rows} |\n" for label, p50, p95, rows in reads)
    body = (
        f"Database writes: the batched upsert (batches of the default EVENT_BATCH_SIZE, {size}) stores "
        f"**{writes[batched_key]:,.0f} events/s, {speedup:.1f}x** per-event saves ({single:,.0f} events/s); "
        f"batches of 100 (what the event log flushes at once when events arrive faster than it stores "
        f"them: each flush takes every waiting record): "
        f"**{writes['batched upsert, batches of 100'] / single:.1f}x**.\n\n"
        f"Why batches of {size} stay under 10x here: one statement costs about {fixed * 1e6:.0f} µs whatever "
        f"its size (round trip, planning, commit with its WAL flush) and each event about {per_row * 1e6:.0f} µs "
        f"more (validation, JSON, the row and its indexes), while a per-event save() costs "
        f"{1e6 / single:.0f} µs on this machine, where PostgreSQL is local and a commit's flush is cheap. "
        f"A batch of {size} can therefore reach at most about {(1 / single) / (fixed / size + per_row):.1f}x; "
        f"the ratio grows with the cost of a commit and a round trip (a database on another machine, a disk "
        f"with slower flushes), which batching pays once per batch.\n\n"
        f"The whole storing step (`event_records_store`: the upsert, then after commit the live push and alert "
        f"routing) batched against one call per event: **{writes[full_key] / full_one:.1f}x** at the default batch "
        f"size, **{writes['event_records_store, batches of 100'] / full_one:.1f}x** with batches of 100. Per call "
        f"it costs far more than a bare save() because it also pushes the events to their cameras' live groups "
        f"and routes their alerts; batching spreads that over the batch.\n\n"
        f"{table}\n"
        f"Events API with **{result['total']:,} events** stored (filled in {result['fill_seconds']:.0f} s): "
        f"worst p95 **{worst:.1f} ms** over the query shapes below (in-process Django + DRF + JWT, "
        f"PostgreSQL on the same 2 cores, no HTTP server).\n\n{rtable}"
    )
    from bench.report import write_section

    write_section("storage", "Event storage (PostgreSQL)", body, "python -m bench storage" + (" --quick" if quick else ""))
    return (f"batched upsert {speedup:.1f}x per-event save, whole step {writes[full_key] / full_one:.1f}x; "
            f"API worst p95 {worst:.1f} ms at {result['total']:,} events")


if __name__ == "__main__":
    if "--child" in sys.argv:
        print(json.dumps(child("--quick" in sys.argv)))
    else:
        print(run("--quick" in sys.argv))
