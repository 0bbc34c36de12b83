"""BoundedExecutor: a thread pool whose queue of waiting tasks has a fixed bound.

Plain Python (no Django, no cv2/torch). It is a ``concurrent.futures.Executor``, so it goes
wherever one is used (``E2ESystem(executor=...)``, ``Executor.map``, ``with`` blocks).

Up to ``max_workers`` tasks run at once, each in a daemon thread started on demand and kept
for the next task. Up to ``max_queue`` more tasks wait for a worker. What happens at the bound,
i.e. when ``max_queue`` tasks are already waiting and every worker is busy:

* ``submit(fn, ...)`` raises ``QueueFull`` (a ``RuntimeError``); ``try_submit(fn, ...)`` returns
  None instead. Either way the task is not run, now or later: it is the caller's to handle
  (run it itself, retry it later, or give it up knowingly);
* the ``rejected`` counter goes up by one;
* a WARNING is logged (logger ``inference.executors``) naming the executor and the number of
  rejections so far, at most once every ``log_interval`` seconds per executor, so a burst of
  rejections gives one line, not thousands.

A task is "waiting" from its submission until a worker takes it; a worker that is free (or
not started yet) takes a task at once, so a submission is refused only when the tasks already
waiting, less the free workers, reach ``max_queue``. Counters: ``submitted`` (accepted),
``rejected``, ``completed`` (finished running, with a result or an exception; ``failed`` counts
the latter), and the properties ``qsize`` (accepted, not started) and ``pending`` (accepted, not
finished: waiting or running). ``shutdown(wait=True)`` lets the accepted tasks finish (unless
``cancel_futures``) and joins the workers; a submission after it raises ``RuntimeError``, as
``ThreadPoolExecutor`` does (that is not a rejection: nothing is counted).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Executor, Future
from typing import Callable

log = logging.getLogger(__name__)

__all__ = ["BoundedExecutor", "QueueFull"]


class QueueFull(RuntimeError):
    """The executor's queue is at its bound: the task was not accepted and will not run."""


class BoundedExecutor(Executor):
    def __init__(self, max_workers: int, max_queue: int, name: str, *, log_interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        if max_queue < 0:
            raise ValueError("max_queue must not be negative")
        self.max_workers = max_workers
        self.max_queue = max_queue
        self.name = name
        self.log_interval = log_interval
        self._clock = clock
        self.submitted = 0
        self.rejected = 0
        self.completed = 0
        self.failed = 0
        self._tasks: deque = deque()  # (future, fn, args, kwargs), accepted and not taken by a worker
        self._threads: list[threading.Thread] = []
        self._idle = 0  # workers not running a task (each takes the next waiting one)
        self._running = 0
        self._shutdown = False
        self._cond = threading.Condition(threading.Lock())
        self._last_warning: float | None = None
        self._rejected_at_warning = 0

    # -- submitting ------------------------------------------------------------------
    def submit(self, fn, /, *args, **kwargs) -> Future:
        """Queue ``fn(*args, **kwargs)``; its future. ``QueueFull`` at the bound (the task is not run)."""
        future = self._offer(fn, args, kwargs)
        if future is None:
            raise QueueFull(f"executor {self.name!r} is full ({self.max_queue} tasks waiting)")
        return future

    def try_submit(self, fn, /, *args, **kwargs) -> Future | None:
        """As ``submit``, but None at the bound (counted and logged the same way; the task is not run)."""
        return self._offer(fn, args, kwargs)

    def _offer(self, fn, args, kwargs) -> Future | None:
        with self._cond:
            if self._shutdown:
                raise RuntimeError(f"cannot schedule new futures after shutdown (executor {self.name!r})")
            free = self._idle + (self.max_workers - len(self._threads))
            if len(self._tasks) >= self.max_queue + free:
                self.rejected += 1
                rejected = self.rejected
                warn = self._last_warning is None or self._clock() - self._last_warning >= self.log_interval
                if warn:
                    self._last_warning = self._clock()
                    since, self._rejected_at_warning = rejected - self._rejected_at_warning, rejected
                waiting, running = len(self._tasks), self._running
            else:
                future: Future = Future()
                self._tasks.append((future, fn, args, kwargs))
                self.submitted += 1
                if len(self._tasks) > self._idle and len(self._threads) < self.max_workers:
                    self._start_worker()
                self._cond.notify()
                return future
        if warn:  # log outside the lock
            log.warning(
                "Executor %s is full (%d waiting, %d running, %d workers): a task was rejected, not run; "
                "%d rejected since the last warning, %d in all",
                self.name, waiting, running, self.max_workers, since, rejected)
        return None

    def _start_worker(self) -> None:
        thread = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True)
        self._threads.append(thread)
        self._idle += 1
        thread.start()

    # -- the workers -----------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._tasks and not self._shutdown:
                    self._cond.wait()
                if not self._tasks:  # shut down and nothing left to run
                    self._idle -= 1
                    return
                future, fn, args, kwargs = self._tasks.popleft()
                self._idle -= 1
                self._running += 1
            ran = failed = False
            result = None
            try:
                if future.set_running_or_notify_cancel():  # False: cancelled while it waited
                    ran = True
                    try:
                        result = fn(*args, **kwargs)
                    except BaseException as exc:
                        failed = True
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
            finally:
                with self._cond:
                    self._running -= 1
                    self._idle += 1
                    self.completed += ran
                    self.failed += failed
            del future, fn, args, kwargs, result  # drop references before waiting for the next task

    # -- state -----------------------------------------------------------------------
    @property
    def qsize(self) -> int:
        """Tasks accepted and not started yet."""
        with self._cond:
            return len(self._tasks)

    @property
    def pending(self) -> int:
        """Tasks accepted and not finished: waiting or running."""
        with self._cond:
            return len(self._tasks) + self._running

    def stats(self) -> dict:
        """The counters, JSON-able."""
        with self._cond:
            return {"name": self.name, "workers": self.max_workers, "max_queue": self.max_queue,
                    "waiting": len(self._tasks), "running": self._running, "submitted": self.submitted,
                    "completed": self.completed, "failed": self.failed, "rejected": self.rejected}

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No more submissions; the accepted tasks still run (cancelled with ``cancel_futures``)."""
        with self._cond:
            self._shutdown = True
            if cancel_futures:
                while self._tasks:
                    future = self._tasks.popleft()[0]
                    future.cancel()
            self._cond.notify_all()
            threads = list(self._threads)
        if wait:
            current = threading.current_thread()
            for thread in threads:
                if thread is not current:
                    thread.join()

    def __repr__(self) -> str:
        return (f"<BoundedExecutor {self.name} workers={self.max_workers} max_queue={self.max_queue} "
                f"waiting={len(self._tasks)} rejected={self.rejected}>")
