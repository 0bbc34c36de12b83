"""EventLogger: append every event record to a JSON-lines log, then store them in batches.

An event is durable once ``append`` returns: the line is written and fsynced before
it joins the in-memory batch. A background thread stores the batch at most once every
``flush_interval`` seconds, or as soon as ``batch_size`` records wait, whichever
comes first, and then advances a committed-offset marker beside the log. No record
waits longer than ``flush_interval``, and one that finds no flush in the last
``flush_interval`` (the first event after a quiet second, the usual case) is stored
at once: a steady stream of events is stored in one batch a second, a lone event
without waiting for the timer. After a
crash, ``start()`` stores whatever lies past that marker; the store is an upsert by
event UUID, so a record stored twice is still one row.

Each worker owns one log file, locked with flock while it lives. A worker that
starts, and every live worker every ``adopt_interval`` seconds, adopts the logs of
workers that died (files nobody holds a lock on), so events appended by a killed
worker are stored by the workers still running, not only by the next one to start.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

ROTATE_BYTES = 8 * 1024 * 1024


class LogFile:
    """One append-only JSON-lines file and its committed-offset marker."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.marker = self.path.with_suffix(self.path.suffix + ".committed")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "a+b")

    def try_lock(self) -> bool:
        try:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def committed(self) -> int:
        try:
            return int(self.marker.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def set_committed(self, offset: int) -> None:
        tmp = self.marker.with_suffix(".tmp")
        tmp.write_text(str(offset))
        os.replace(tmp, self.marker)

    def append(self, line: bytes) -> int:
        """Write one line durably; return the file offset just past it."""
        self.fh.seek(0, os.SEEK_END)
        self.fh.write(line)
        self.fh.flush()
        os.fsync(self.fh.fileno())
        return self.fh.tell()

    def uncommitted(self) -> list[tuple[dict, int]]:
        """Records past the committed marker, with the offset just past each.

        A torn last line (a crash in the middle of a write) is cut off: its event was
        never acknowledged as appended.
        """
        start = self.committed()
        self.fh.seek(start)
        data = self.fh.read()
        lines = data.split(b"\n")
        torn = lines.pop()  # b"" when the data ends with a newline
        if torn:
            self.fh.truncate(start + len(data) - len(torn))
        out, offset = [], start
        for raw in lines:
            offset += len(raw) + 1
            if not raw.strip():
                continue
            try:
                out.append((json.loads(raw), offset))
            except ValueError:
                log.error("Skipping an unreadable line in %s before offset %d", self.path, offset)
        return out

    def rotate_if_done(self, offset: int) -> bool:
        """Empty the file once everything in it is stored and it has grown large."""
        self.fh.seek(0, os.SEEK_END)
        if offset == self.fh.tell() and offset >= ROTATE_BYTES:
            self.fh.truncate(0)
            self.set_committed(0)
            return True
        return False

    def close(self) -> None:
        self.fh.close()


class EventLogger:
    def __init__(
        self,
        path: Path,
        *,
        store: Callable[[list[dict]], None],
        flush_interval: float = 1.0,
        batch_size: int = 10,
        retry_max: float = 30.0,
        adopt_interval: float | None = 10.0,
    ):
        self.file = LogFile(path)
        self.store = store
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.retry_max = retry_max
        self.adopt_interval = adopt_interval
        self._pending: list[tuple[dict, int]] = []
        self._lock = threading.Lock()  # guards the file and _pending
        self._flush_lock = threading.Lock()  # one flush at a time
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.flushes = 0
        self.stored = 0
        self.failures = 0
        self.rejected = 0

    # -- lifecycle ---------------------------------------------------------------
    def start(self, lock_wait: float = 5.0) -> "EventLogger":
        # Another live worker may hold the lock for a moment while adopting this file (a worker
        # restarted under the same name): wait that long before calling it "in use".
        deadline = time.monotonic() + lock_wait
        while not self.file.try_lock():
            if time.monotonic() >= deadline:
                raise RuntimeError(f"Event log {self.file.path} is in use by another live process.")
            time.sleep(0.1)
        with self._lock:
            self._pending = self.file.uncommitted()
        if self._pending:
            log.info("Replaying %d event records from %s", len(self._pending), self.file.path)
        self.adopt_orphans()
        self._thread = threading.Thread(target=self._run, name="event-logger", daemon=True)
        self._thread.start()
        if self._pending:
            self._wake.set()  # store the replayed records now, not after a full interval
        return self

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)
        try:
            self.flush()
        except Exception:  # the records stay in the log for the next start
            log.exception("Final event flush failed; records remain in %s", self.file.path)
        self.file.close()

    # -- writing ----------------------------------------------------------------
    def append(self, record: dict) -> None:
        """Durably log one event record (insert or update of an event, keyed by its 'id')."""
        line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
        with self._lock:
            offset = self.file.append(line)
            self._pending.append((record, offset))
            waiting = len(self._pending)
        if waiting == 1 or waiting >= self.batch_size:  # the flusher re-decides when its wait ends
            self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self) -> int:
        """Store what waits; on success advance the committed marker. Raises on failure."""
        with self._flush_lock:
            with self._lock:
                batch = list(self._pending)
            if not batch:
                return 0
            self._store(merge_records([record for record, _ in batch]))
            offset = batch[-1][1]
            with self._lock:
                del self._pending[: len(batch)]
                self.file.set_committed(offset)
                self.file.rotate_if_done(offset)
            self.flushes += 1
            self.stored += len(batch)
            return len(batch)

    def _store(self, records: list[dict]) -> None:
        """Store a batch. A malformed record (not an outage) is set aside, never retried forever.

        Database and connection errors propagate: the batch waits in the log and is retried.
        A record the store rejects as malformed (ValueError, TypeError, KeyError) would block
        every later event, so it goes to ``<log>.rejected.jsonl`` with the reason, and the
        rest of the batch is stored.
        """
        try:
            self.store(records)
        except (ValueError, TypeError, KeyError):
            for record in records:
                try:
                    self.store([record])
                except (ValueError, TypeError, KeyError) as exc:
                    self.rejected += 1
                    log.error("Event record %s rejected and set aside: %s", record.get("id"), exc)
                    rejected = self.file.path.with_suffix(".rejected.jsonl")
                    with open(rejected, "a") as fh:
                        fh.write(json.dumps({"error": str(exc)[:300], "record": record}, default=str) + "\n")

    def adopt_orphans(self) -> int:
        """Store the uncommitted records of dead workers' logs in the same folder."""
        adopted = 0
        for path in sorted(self.file.path.parent.glob("*.jsonl")):
            if path == self.file.path:
                continue
            orphan = LogFile(path)
            try:
                if not orphan.try_lock():
                    continue  # a live worker owns it
                records = orphan.uncommitted()
                if records:
                    self._store(merge_records([r for r, _ in records]))
                    orphan.set_committed(records[-1][1])
                    adopted += len(records)
                    log.warning("Stored %d event records left by a dead worker in %s", len(records), path)
            except Exception:
                log.exception("Could not adopt event log %s; will retry at next start", path)
            finally:
                orphan.close()
        return adopted

    def _run(self) -> None:
        last = float("-inf")  # when the last flush (or failed try) began
        retry = 0.0  # after a failure: the back-off before the next try
        next_adopt = time.monotonic() + (self.adopt_interval or 0)
        while not self._stop.is_set():
            now = time.monotonic()
            if self.adopt_interval is not None and now >= next_adopt:
                next_adopt = now + self.adopt_interval
                self.adopt_orphans()  # a worker that died since we started: store what it logged
                continue
            waiting = self.pending()
            if not waiting:
                due = float("inf")
            elif retry:
                due = last + retry
            elif waiting >= self.batch_size:
                due = now
            else:
                # From the start of the last flush, not its end: a slow store must not stretch the
                # interval (nor the wait of the records behind it).
                due = last + self.flush_interval
            wake_at = min(due, next_adopt) if self.adopt_interval is not None else due
            if wake_at > now:
                # append() wakes this for the first waiting record and for a full batch: re-decide then.
                self._wake.wait(None if wake_at == float("inf") else wake_at - now)
                self._wake.clear()
                continue
            last = now
            try:
                self.flush()
                retry = 0.0
            except Exception as exc:  # database down: keep the records, back off
                self.failures += 1
                retry = min(self.retry_max, max(self.flush_interval, retry * 2))
                log.warning("Storing events failed (%s); %d wait in the log; retry in %.1fs",
                            exc, self.pending(), retry)


def merge_records(records: list[dict]) -> list[dict]:
    """One record per event id, later versions overriding earlier ones, order kept."""
    merged: dict[str, dict] = {}
    for record in records:
        key = str(record["id"])
        merged[key] = {**merged[key], **record} if key in merged else dict(record)
    return list(merged.values())
