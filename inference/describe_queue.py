"""DescribeQueue: one worker's queue of VLM description requests, shared by all its cameras.

Plain Python (no Django). A camera loop (``inference.e2e.E2ESystem``) asks for a description when an
episode opens, when it peaks clearly higher, and when it closes without one; the request waits here
and is run by one of ``concurrency`` threads (``describe-0``, ...), so a slow model server never
holds up a camera's loop or the episode executor. What the queue does at each bound:

* **concurrency**: at most ``concurrency`` requests run at once; the others wait.
* **priority**: the waiting request with the highest severity (``low`` < ``medium`` < ``high`` <
  ``critical``), then the highest anomaly score, then the oldest, runs first (a heap).
* **per-camera budget**: at most ``per_camera_per_minute`` requests of one camera are accepted in
  any 60 s; one over it is dropped at once (``dropped_budget``) and its callback told ``"budget"``.
  0 or less: no budget.
* **bounded size**: at most ``max_size`` requests wait. When a request comes to a full queue, the
  lowest-priority request among those waiting and the new one is dropped (``dropped_bound``; on
  equal priority the newest) and its callback told ``"bound"``: a full queue keeps the most severe.
* **deadline**: a request not started within its deadline (``deadline`` seconds, or the one given
  to ``submit``) is dropped (``dropped_deadline``) and its callback told ``"deadline"``, by the
  ``describe-deadline`` thread, even while every runner is busy.
* **one waiting request per key**: a request whose ``key`` (the camera's episode) already has one
  waiting replaces it (``superseded``; the old callback told ``"superseded"``; no budget is spent).

Every accepted or refused request's ``callback(answer, reason)`` is called exactly once: with the
answer and ``""`` when it ran, or with None and the reason (``"budget"``, ``"bound"``, ``"deadline"``,
``"superseded"``, ``"closed"``, ``"timeout: ..."``, ``"failed: ..."``). Callbacks run outside the
queue's lock (a refusal at ``submit`` in the caller's thread, the rest in the queue's threads); an
exception in one is logged. ``stats()`` gives the figures (waits p50/p95/p99 and a histogram,
requests per minute, counters), published with the worker's figures (runtime/stats.py).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from .stats import Histogram

log = logging.getLogger(__name__)

__all__ = ["DescribeQueue", "DescribeRequest", "SEVERITY_RANK", "WAIT_BUCKETS"]

SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
#: Seconds a request waited before it started (upper bounds, ``le``).
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: Seconds a request ran (the model's time).
RUN_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)
RECENT_WAITS = 1000  # the waits p50/p95/p99 are computed over (the last started requests)
MINUTE = 60.0


@dataclass(eq=False)
class DescribeRequest:
    camera_id: Any
    fn: Callable[[], Any]
    callback: Callable[[Any, str], None] | None
    severity: str
    score: float
    submitted_at: float
    deadline_at: float
    seq: int
    key: Any = None
    entry: list = field(default_factory=list, repr=False)  # its heap entry while it waits

    def priority(self) -> tuple:
        """Smaller is more urgent: (−severity rank, −score, arrival)."""
        return (-SEVERITY_RANK.get(self.severity, 0), -float(self.score), self.seq)


def _timeout(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, TimeoutError) or "did not answer within" in text or "timed out" in text


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


class DescribeQueue:
    def __init__(self, concurrency: int = 2, max_size: int = 64, per_camera_per_minute: int = 6,
                 deadline: float = 10.0, *, name: str = "describe", window: float = MINUTE,
                 clock: Callable[[], float] = time.monotonic):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        if deadline <= 0:
            raise ValueError("deadline must be positive")
        self.concurrency = int(concurrency)
        self.max_size = int(max_size)
        self.per_camera_per_minute = int(per_camera_per_minute)
        self.deadline = float(deadline)
        self.name = name
        self.window = float(window)  # the budget's and the rates' window (a minute; shorter in tests)
        self.clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[list] = []  # [priority, request]
        self._keys: dict = {}  # key -> its waiting request
        self._seq = itertools.count()
        self._budget: dict[Any, deque] = {}  # camera -> times of its accepted requests in the window
        self._threads: list[threading.Thread] = []
        self._closed = False
        self.running = 0
        # Counters (since the worker started).
        self.submitted = 0  # asked for (accepted or not)
        self.accepted = 0
        self.started = 0
        self.completed = 0  # ran and gave an answer
        self.failed = 0  # ran and raised or gave no answer (timeouts included)
        self.timeouts = 0  # of which: the model did not answer in time
        self.dropped_budget = 0
        self.dropped_bound = 0
        self.dropped_deadline = 0
        self.superseded = 0
        self.dropped_closed = 0
        self.wait_s = Histogram(WAIT_BUCKETS)
        self.run_s = Histogram(RUN_BUCKETS)
        self._recent_waits: deque = deque(maxlen=RECENT_WAITS)
        self._started_times: deque = deque()  # start times in the window (requests per minute)

    # -- submitting ------------------------------------------------------------------
    def submit(self, camera_id, fn: Callable[[], Any], callback: Callable[[Any, str], None] | None = None, *,
               severity: str = "low", score: float = 0.0, deadline: float | None = None,
               key=None) -> DescribeRequest | None:
        """Queue ``fn()`` (its return value is the answer); the request, or None when it was refused
        (closed queue, budget, or itself the lowest at the bound: its callback has been told why)."""
        now = self.clock()
        dropped: list[tuple[DescribeRequest, str]] = []
        request = DescribeRequest(camera_id, fn, callback, severity, float(score or 0.0), now,
                                  now + (self.deadline if deadline is None else float(deadline)), 0, key)
        accepted = None
        with self._cond:
            self.submitted += 1
            old = self._keys.get(key) if key is not None else None
            if self._closed:
                self.dropped_closed += 1
                dropped.append((request, "closed"))
            elif old is None and not self._within_budget(camera_id, now):
                self.dropped_budget += 1
                dropped.append((request, "budget"))
            else:
                request.seq = next(self._seq)
                if old is not None:  # the same episode's newer request takes the waiting one's place
                    self._remove(old)
                    self.superseded += 1
                    dropped.append((old, "superseded"))
                if len(self._heap) >= self.max_size:
                    lowest = max(self._heap, key=lambda e: e[0])
                    if lowest[0] > request.priority():
                        self._remove(lowest[1])
                        dropped.append((lowest[1], "bound"))
                    else:
                        dropped.append((request, "bound"))
                    self.dropped_bound += 1
                if not dropped or dropped[-1][0] is not request:
                    self._push(request)
                    self.accepted += 1
                    if old is None and self.per_camera_per_minute > 0:
                        self._budget.setdefault(camera_id, deque()).append(now)
                    accepted = request
                    self._start_threads()
                    self._cond.notify_all()
        for req, reason in dropped:
            self._tell(req, None, reason)
        return accepted

    def _within_budget(self, camera_id, now: float) -> bool:
        if self.per_camera_per_minute <= 0:
            return True
        times = self._budget.get(camera_id)
        if times is None:
            return True
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self._budget[camera_id]
            return True
        return len(times) < self.per_camera_per_minute

    def _push(self, request: DescribeRequest) -> None:
        request.entry = [request.priority(), request]
        heapq.heappush(self._heap, request.entry)
        if request.key is not None:
            self._keys[request.key] = request

    def _remove(self, request: DescribeRequest) -> None:
        """Take a waiting request out (under the lock)."""
        self._heap.remove(request.entry)
        heapq.heapify(self._heap)
        self._forget_key(request)

    def _forget_key(self, request: DescribeRequest) -> None:
        if request.key is not None and self._keys.get(request.key) is request:
            del self._keys[request.key]

    def _start_threads(self) -> None:
        if self._threads:
            return
        for i in range(self.concurrency):
            thread = threading.Thread(target=self._work, name=f"{self.name}-{i}", daemon=True)
            self._threads.append(thread)
            thread.start()
        reaper = threading.Thread(target=self._reap, name=f"{self.name}-deadline", daemon=True)
        self._threads.append(reaper)
        reaper.start()

    # -- running -----------------------------------------------------------------------
    def _expired(self, now: float) -> list[DescribeRequest]:
        """Take out the waiting requests past their deadline (under the lock)."""
        late = [entry[1] for entry in self._heap if entry[1].deadline_at <= now]
        if late:
            self._heap = [entry for entry in self._heap if entry[1].deadline_at > now]
            heapq.heapify(self._heap)
            for request in late:
                self._forget_key(request)
            self.dropped_deadline += len(late)
        return late

    def _reap(self) -> None:
        """The deadline thread: drop the requests not started in time, even while every runner is busy."""
        while True:
            with self._cond:
                if self._closed:
                    return
                late = self._expired(self.clock())
                if not late:
                    soonest = min((entry[1].deadline_at for entry in self._heap), default=None)
                    self._cond.wait(None if soonest is None else max(0.005, soonest - self.clock()))
                    continue
            for request in late:
                self._tell(request, None, "deadline")

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._heap and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                now = self.clock()
                late = self._expired(now)
                request = None
                if self._heap:
                    request = heapq.heappop(self._heap)[1]
                    self._forget_key(request)
                    self.started += 1
                    self.running += 1
                    waited = now - request.submitted_at
                    self.wait_s.observe(waited)
                    self._recent_waits.append(waited)
                    self._started_times.append(now)
                    self._cond.notify_all()  # the deadline thread recomputes its wake-up
            for req in late:
                self._tell(req, None, "deadline")
            if request is None:
                continue
            started = time.monotonic()
            answer, reason = None, ""
            try:
                answer = request.fn()
                if answer is None:
                    reason = "failed: no answer"
            except Exception as exc:
                reason = f"{'timeout' if _timeout(exc) else 'failed'}: {exc}"[:300]
                log.warning("Description for camera %s failed: %s", request.camera_id, exc)
            with self._cond:
                self.running -= 1
                self.run_s.observe(time.monotonic() - started)
                if reason:
                    self.failed += 1
                    self.timeouts += reason.startswith("timeout")
                else:
                    self.completed += 1
            self._tell(request, answer, reason)

    def _tell(self, request: DescribeRequest, answer, reason: str) -> None:
        if request.callback is None:
            return
        try:
            request.callback(answer, reason)
        except Exception:
            log.exception("A description callback of camera %s failed", request.camera_id)

    # -- figures and shutdown -------------------------------------------------------------
    @property
    def waiting(self) -> int:
        return len(self._heap)

    def stats(self) -> dict:
        """The queue's figures (JSON-able): settings, counters, waits in seconds, requests per minute."""
        with self._cond:
            now = self.clock()
            while self._started_times and now - self._started_times[0] >= self.window:
                self._started_times.popleft()
            waits = sorted(self._recent_waits)
            per_minute = len(self._started_times) * MINUTE / self.window
            doc = {
                "concurrency": self.concurrency, "max_size": self.max_size,
                "per_camera_per_minute": self.per_camera_per_minute, "deadline_s": self.deadline,
                "waiting": len(self._heap), "running": self.running,
                "submitted": self.submitted, "accepted": self.accepted, "started": self.started,
                "completed": self.completed, "failed": self.failed, "timeouts": self.timeouts,
                "dropped_budget": self.dropped_budget, "dropped_bound": self.dropped_bound,
                "dropped_deadline": self.dropped_deadline, "superseded": self.superseded,
                "dropped_closed": self.dropped_closed,
                "requests_per_minute": round(per_minute, 3),
                "wait_s_p50": _round(_percentile(waits, 0.50)),
                "wait_s_p95": _round(_percentile(waits, 0.95)),
                "wait_s_p99": _round(_percentile(waits, 0.99)),
                "wait_s": self.wait_s.snapshot(),
                "run_s": self.run_s.snapshot(),
            }
        return doc

    def close(self, timeout: float | None = 5.0) -> None:
        """Drop what waits (callbacks told ``"closed"``), let the running requests finish (up to ``timeout``)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            waiting = [entry[1] for entry in self._heap]
            self._heap.clear()
            self._keys.clear()
            self.dropped_closed += len(waiting)
            self._cond.notify_all()
            threads = list(self._threads)
        for request in waiting:
            self._tell(request, None, "closed")
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
