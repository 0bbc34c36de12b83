"""The worker's description queue: priority, concurrency, per-camera budget, bound, deadline, figures."""

import threading
import time

import pytest

from inference.describe_queue import DescribeQueue


class Outcomes:
    """Records every callback: (name, answer, reason), in order."""

    def __init__(self):
        self.items = []
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)

    def callback(self, name):
        def told(answer, reason):
            with self.changed:
                self.items.append((name, answer, reason))
                self.changed.notify_all()
        return told

    def wait(self, n, timeout=5.0):
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.items) >= n, timeout), self.items
            return list(self.items)

    def reasons(self):
        return {name: reason for name, _, reason in self.items}


def blocker():
    """A request that runs until released (it holds one runner)."""
    started, release = threading.Event(), threading.Event()

    def fn():
        started.set()
        release.wait(10)
        return "blocked"
    return fn, started, release


@pytest.fixture
def queues():
    made = []

    def make(**kw):
        q = DescribeQueue(**kw)
        made.append(q)
        return q
    yield make
    for q in made:
        q.close(timeout=2)


def test_requests_run_by_severity_then_score(queues):
    q = queues(concurrency=1, max_size=10, per_camera_per_minute=0, deadline=10)
    out = Outcomes()
    fn, started, release = blocker()
    q.submit(0, fn, out.callback("blocker"))
    assert started.wait(5)
    order = []
    for name, severity, score in [("low-0.9", "low", 0.9), ("high-1.0", "high", 1.0), ("medium-3", "medium", 3.0),
                                  ("high-2.0", "high", 2.0), ("critical", "critical", 0.1), ("low-0.9b", "low", 0.9)]:
        q.submit(1, lambda name=name: order.append(name) or name, out.callback(name), severity=severity, score=score)
    release.set()
    out.wait(7)
    assert order == ["critical", "high-2.0", "high-1.0", "medium-3", "low-0.9", "low-0.9b"]
    assert all(reason == "" for _, _, reason in out.items)


def test_at_most_concurrency_requests_run_at_once(queues):
    q = queues(concurrency=2, max_size=20, per_camera_per_minute=0, deadline=10)
    out = Outcomes()
    lock, running, peak = threading.Lock(), [0], [0]

    def fn():
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return "ok"
    for i in range(8):
        q.submit(i, fn, out.callback(i))
    out.wait(8)
    assert peak[0] == 2
    assert q.stats()["completed"] == 8


def test_a_camera_over_its_budget_is_dropped_and_counted(queues):
    q = queues(concurrency=1, max_size=20, per_camera_per_minute=3, deadline=10, window=0.5)
    out = Outcomes()
    accepted = [q.submit(7, lambda: "a", out.callback(f"c7-{i}")) for i in range(5)]
    assert [r is not None for r in accepted] == [True, True, True, False, False]
    assert q.submit(8, lambda: "b", out.callback("c8")) is not None  # another camera has its own budget
    out.wait(6)
    reasons = out.reasons()
    assert reasons["c7-3"] == reasons["c7-4"] == "budget"
    assert q.stats()["dropped_budget"] == 2
    time.sleep(0.55)  # the window passed: the camera may ask again
    assert q.submit(7, lambda: "a", out.callback("later")) is not None
    out.wait(7)


def test_at_the_bound_the_lowest_priority_request_is_dropped(queues):
    q = queues(concurrency=1, max_size=3, per_camera_per_minute=0, deadline=10)
    out = Outcomes()
    fn, started, release = blocker()
    q.submit(0, fn, out.callback("blocker"))
    assert started.wait(5)
    q.submit(1, lambda: "m", out.callback("medium"), severity="medium", score=1.0)
    q.submit(2, lambda: "l", out.callback("low"), severity="low", score=5.0)
    q.submit(3, lambda: "h", out.callback("high"), severity="high", score=1.0)
    assert q.waiting == 3
    # A fourth, more urgent: the lowest waiting one goes.
    assert q.submit(4, lambda: "c", out.callback("critical"), severity="critical") is not None
    assert out.wait(1)[0] == ("low", None, "bound")
    # A fifth, less urgent than all those waiting: it is the one dropped.
    assert q.submit(5, lambda: "x", out.callback("lowest"), severity="low", score=0.1) is None
    assert out.wait(2)[1] == ("lowest", None, "bound")
    # Equal priority to the lowest waiting: the newest is dropped.
    assert q.submit(6, lambda: "m2", out.callback("medium-again"), severity="medium", score=1.0) is None
    assert out.wait(3)[2] == ("medium-again", None, "bound")
    assert q.waiting == 3 and q.stats()["dropped_bound"] == 3
    release.set()
    items = out.wait(7)
    assert [name for name, _, reason in items[3:]] == ["blocker", "critical", "high", "medium"]


def test_a_request_not_started_within_its_deadline_is_dropped_and_its_caller_told(queues):
    q = queues(concurrency=1, max_size=10, per_camera_per_minute=0, deadline=0.2)
    out = Outcomes()
    fn, started, release = blocker()
    q.submit(0, fn, out.callback("blocker"))
    assert started.wait(5)
    ran = []
    t0 = time.monotonic()
    q.submit(1, lambda: ran.append(1), out.callback("late"))
    q.submit(2, lambda: ran.append(2), out.callback("later"), deadline=0.6)
    assert out.wait(1)[0] == ("late", None, "deadline")
    assert 0.15 <= time.monotonic() - t0 < 1.5  # told while the only runner is still busy
    assert out.wait(2)[1] == ("later", None, "deadline")
    release.set()
    out.wait(3)
    assert ran == []
    assert q.stats()["dropped_deadline"] == 2


def test_a_newer_request_of_the_same_episode_replaces_the_waiting_one(queues):
    q = queues(concurrency=1, max_size=10, per_camera_per_minute=2, deadline=10)
    out = Outcomes()
    fn, started, release = blocker()
    q.submit(0, fn, out.callback("blocker"))
    assert started.wait(5)
    q.submit(1, lambda: "open", out.callback("open"), key=(1, "ep"))
    q.submit(1, lambda: "peak", out.callback("peak"), key=(1, "ep"), severity="high")
    q.submit(1, lambda: "close", out.callback("close"), key=(1, "ep"), severity="high")  # no budget spent
    assert q.waiting == 1
    release.set()
    out.wait(4)
    assert out.reasons() == {"open": "superseded", "peak": "superseded", "blocker": "", "close": ""}
    assert q.stats()["superseded"] == 2


def test_failures_and_timeouts_are_counted_and_told(queues):
    q = queues(concurrency=1, max_size=10, per_camera_per_minute=0, deadline=10)
    out = Outcomes()

    def timeout():
        raise RuntimeError("VLM http://x/v1 did not answer within 2 s")

    def crash():
        raise RuntimeError("model crashed")
    q.submit(1, timeout, out.callback("timeout"))
    q.submit(1, crash, out.callback("crash"))
    q.submit(1, lambda: None, out.callback("none"))
    out.wait(3)
    reasons = out.reasons()
    assert reasons["timeout"].startswith("timeout: ") and reasons["crash"] == "failed: model crashed"
    assert reasons["none"] == "failed: no answer"
    stats = q.stats()
    assert stats["failed"] == 3 and stats["timeouts"] == 1 and stats["completed"] == 0


def test_stats_report_waits_rates_and_every_drop(queues):
    q = queues(concurrency=1, max_size=3, per_camera_per_minute=1, deadline=0.3)
    out = Outcomes()
    fn, started, release = blocker()
    q.submit(0, fn, out.callback("blocker"))
    assert started.wait(5)
    q.submit(1, lambda: "a", out.callback("a"), severity="high")
    q.submit(2, lambda: "b", out.callback("b"), severity="high")
    q.submit(3, lambda: "c", out.callback("c"))
    q.submit(4, lambda: "x", out.callback("x"), severity="critical")  # the bound drops c
    q.submit(1, lambda: "a2", out.callback("a2"), severity="high")  # camera 1's budget drops it
    assert q.stats()["waiting"] == 3
    out.wait(5)  # the deadline takes a, b and x while the blocker runs
    release.set()
    out.wait(6)
    assert out.reasons() == {"c": "bound", "a2": "budget", "a": "deadline", "b": "deadline", "x": "deadline",
                             "blocker": ""}
    stats = q.stats()
    assert stats["submitted"] == 6 and stats["accepted"] == 5 and stats["started"] == 1 and stats["completed"] == 1
    assert stats["dropped_bound"] == 1 and stats["dropped_budget"] == 1 and stats["dropped_deadline"] == 3
    assert stats["requests_per_minute"] == 1.0
    assert stats["wait_s_p50"] is not None and stats["wait_s_p50"] <= stats["wait_s_p95"] <= stats["wait_s_p99"]
    assert stats["wait_s"]["count"] == 1 and stats["run_s"]["count"] == 1
    assert stats["waiting"] == 0 and stats["running"] == 0


def test_close_tells_the_waiting_requests(queues):
    q = queues(concurrency=1, max_size=10, per_camera_per_minute=0, deadline=10)
    out = Outcomes()
    fn, started, release = blocker()
    q.submit(0, fn, out.callback("blocker"))
    assert started.wait(5)
    q.submit(1, lambda: "a", out.callback("a"))
    threading.Timer(0.2, release.set).start()
    q.close(timeout=5)
    assert out.reasons() == {"a": "closed", "blocker": ""}
    assert q.submit(1, lambda: "b", out.callback("b")) is None
    assert out.reasons()["b"] == "closed"


def test_the_workers_figures_carry_the_queues(queues):
    from runtime.stats import StatsPublisher

    q = queues(concurrency=1, max_size=4, per_camera_per_minute=1, deadline=5)
    out = Outcomes()
    q.submit(1, lambda: "a", out.callback("a"))
    q.submit(1, lambda: "b", out.callback("b"))  # over camera 1's budget
    out.wait(2)
    doc = StatsPublisher("w1", ttl=30, client=object(), describe_queue=q).document({})
    figures = doc["describe_queue"]
    assert figures["completed"] == 1 and figures["dropped_budget"] == 1 and figures["wait_s"]["count"] == 1
    assert {"wait_s_p50", "wait_s_p95", "wait_s_p99", "requests_per_minute", "timeouts", "dropped_bound",
            "dropped_deadline"} <= set(figures)
