"""Alerts test helpers: a real local HTTP receiver, recorded alert tasks, and small builders."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from alerts.models import AlertRule, NotificationChannel
from events.services import event_records_store

SECRET = "s3cret-signing-key-for-tests"


class HookServer:
    """A real HTTP server on 127.0.0.1 in a thread. ``statuses`` are answered in order, then 200."""

    def __init__(self):
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server.lock:
                    status = server.statuses.pop(0) if server.statuses else 200
                    server.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body,
                                            "at": time.time(), "status": status})
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"boom")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def json(self, i=-1) -> dict:
        return json.loads(self.requests[i]["body"])

    def wait_for(self, predicate, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [r for r in self.requests if predicate(r)]
            if found:
                return found
            time.sleep(0.02)
        return []

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hook():
    server = HookServer()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def alert_queue(request, monkeypatch):
    """Alert deliveries queued by the code under test, recorded as (delivery id, countdown).

    End-to-end tests (marked slow) use the real broker and workers instead.
    """
    queued: list[tuple[int, float | None]] = []
    if request.node.get_closest_marker("slow"):
        return queued
    from alerts import tasks

    monkeypatch.setattr(tasks.alert_deliver, "delay", lambda delivery_id: queued.append((delivery_id, None)))
    monkeypatch.setattr(tasks.alert_deliver, "apply_async",
                        lambda args, countdown=None, **kw: queued.append((args[0], countdown)))
    return queued


@pytest.fixture
def run_queued(alert_queue, django_capture_on_commit_callbacks):
    """Run the recorded deliveries as the worker would (retries included, waiting their countdown)."""
    from alerts import tasks

    def run(wait_retries=True, limit=50):
        done = []
        while alert_queue and limit:
            limit -= 1
            delivery_id, countdown = alert_queue.pop(0)
            if countdown:
                if not wait_retries:
                    alert_queue.insert(0, (delivery_id, countdown))
                    break
                time.sleep(countdown)
            with django_capture_on_commit_callbacks(execute=True):
                done.append(tasks.alert_deliver.run(delivery_id))
        return done

    return run


@pytest.fixture
def route(django_capture_on_commit_callbacks):
    """Route events as events.services does, running the on-commit callbacks (which queue tasks)."""
    from alerts.services import alerts_route_events

    def run(*events):
        with django_capture_on_commit_callbacks(execute=True):
            alerts_route_events(event_ids=[e.pk for e in events])

    return run


@pytest.fixture
def digest(django_capture_on_commit_callbacks):
    from alerts.services import alerts_digest_build

    def run(now=None):
        with django_capture_on_commit_callbacks(execute=True):
            return alerts_digest_build(now=now or timezone.now())

    return run


def make_channel(owner=None, *, group=None, kind="email", **fields) -> NotificationChannel:
    defaults = {"name": f"{kind} channel"}
    if kind == "webhook":
        defaults.update(url="https://example.com/hook", secret=SECRET)
    if kind == "apprise":
        defaults.update(url="json://127.0.0.1:9/")
    defaults.update(fields)
    channel = NotificationChannel(owner=owner, group=group, kind=kind, **defaults)
    channel.full_clean()
    channel.save()
    return channel


def make_rule(owner=None, *, group=None, channels=(), cameras=(), **fields) -> AlertRule:
    fields.setdefault("name", "rule")
    fields.setdefault("min_severity", "low")
    fields.setdefault("notify_in_app", False)
    if cameras:
        fields.setdefault("all_cameras", False)
    rule = AlertRule.objects.create(owner=owner, group=group, **fields)
    rule.channels.set(channels)
    rule.cameras.set(cameras)
    return rule


@pytest.fixture
def store(django_capture_on_commit_callbacks):
    """Store records as the worker's flusher does; routing runs after commit, as in production."""
    def run(*records):
        with django_capture_on_commit_callbacks(execute=True):
            event_records_store([dict(r) for r in records])
    return run
