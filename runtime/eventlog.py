"""EventLogger: append every event record to a JSON-lines log, then store them in batches.

An event is durable once ``append`` returns: the line is written and fsynced before
it joins the in-memory batch. A background thread stores the batch at most once every
``flush_interval`` seconds, or as soon as ``batch_size`` records wait, whichever
comes first, and then advances a committed-offset marker beside the log. No record
waits longer than ``flush_interval``, and one that finds no flush in the last
``flush_interval`` (the first event after a quiet second, the usual case) is stored
at once: a steady stream of events is stored in one batch a second, a lone event
without waiting for the timer. A record that opens an event (an id this logger has not logged
lately: the first the operators hear of it, and what an immediate alert waits on) is stored
within ``open_flush_gap`` (0.1 s) of the last flush instead of waiting for the interval: events
that open together still go in one batch, their later updates (peaks, descriptions, the close)
wait for the interval as before. After a
crash, ``start()`` stores whatever lies past that marker; the store is an upsert by
event UUID, so a record stored twice is still one row.

Each worker owns one log file, locked with flock while it lives. A worker that
starts, and every live worker every ``adopt_interval`` seconds, adopts the logs of
workers that died (files nobody holds a lock on), so events appended by a killed
worker are stored by the workers still running, not only by the next one to start.

Bounds, for a database that stays away (settings ``EVENT_BACKLOG_MAX``, ``EVENT_LOG_MAX_MB``):

* Memory: at most ``backlog_max`` records wait in memory. Past that, a new record is only
  written to the log (fsynced as always; ``spilled`` counts them) and a counter says how many
  wait there; when the database takes records again, each stored batch is followed by reading
  the next ones back from the log, in order, ``backlog_max`` at a time. Replaying a log at start
  and adopting a dead worker's log read it the same way, a batch at a time. So the memory a
  backlog takes is bounded whatever the outage, and no record is dropped: every record appended
  is stored, in the order it was logged, once the database is back.
* Disk: the log keeps every record until it is stored (it is the only copy), then is emptied
  once everything in it is stored and it is over ``ROTATE_BYTES``. ``log_max_bytes`` is an alarm,
  not a cut: past it an error is logged (once, until the log is emptied) and ``over_cap`` counts
  the records written beyond it, but they are still written: dropping one would lose an event
  for good, while a full disk is seen (and fixed) by whoever watches the machine.
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

    def uncommitted(self, limit: int | None = None) -> list[tuple[dict, int]]:
        """Records past the committed marker (at most ``limit``), with the offset just past each.

        A torn last line (a crash in the middle of a write) is cut off: its event was
        never acknowledged as appended.
        """
        return self.read_records(self.committed(), limit, cut_torn=True)[0]

    def read_records(self, start: int, limit: int | None = None, *,
                     cut_torn: bool = False) -> tuple[list[tuple[dict, int]], int, bool]:
        """Up to ``limit`` records from offset ``start``: (records with the offset just past each, the
        offset just past the last line read, whether the end of the file was reached).

        A last line without its newline is torn: cut off with ``cut_torn`` (nobody appends: at start,
        adopting), else left for a later read. Reads line by line: memory is that of the records.
        """
        self.fh.seek(start)
        out: list[tuple[dict, int]] = []
        offset = start
        while limit is None or len(out) < limit:
            raw = self.fh.readline()
            if not raw:
                return out, offset, True
            if not raw.endswith(b"\n"):
                if cut_torn:
                    self.fh.truncate(offset)
                return out, offset, True
            offset += len(raw)
            if not raw.strip():
                continue
            try:
                out.append((json.loads(raw), offset))
            except ValueError:
                log.error("Skipping an unreadable line in %s before offset %d", self.path, offset)
        return out, offset, offset >= os.fstat(self.fh.fileno()).st_size

    def count_records(self, start: int, *, cut_torn: bool = False) -> int:
        """Complete non-blank lines from ``start`` to the end (read, not kept); a torn last line as above."""
        self.fh.seek(start)
        count, offset = 0, start
        for raw in iter(self.fh.readline, b""):
            if not raw.endswith(b"\n"):
                if cut_torn:
                    self.fh.truncate(offset)
                break
            offset += len(raw)
            count += bool(raw.strip())
        return count

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
    #: Event ids remembered to tell an opening record from an update (far more than the events open at once).
    SEEN_MAX = 4096

    def __init__(
        self,
        path: Path,
        *,
        store: Callable[[list[dict]], None],
        flush_interval: float = 1.0,
        batch_size: int = 10,
        retry_max: float = 30.0,
        adopt_interval: float | None = 10.0,
        backlog_max: int = 1000,
        log_max_bytes: int | None = None,
        open_flush_gap: float | None = 0.1,
    ):
        self.file = LogFile(path)
        self.store = store
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.retry_max = retry_max
        self.adopt_interval = adopt_interval
        #: Records held in memory at most; the others wait only in the log (module docstring).
        self.backlog_max = max(1, int(backlog_max))
        #: Past this size the log still takes every record, but says so (None: no alarm).
        self.log_max_bytes = log_max_bytes or None
        #: An opening record is stored this long after the last flush at most (None: it waits like the rest).
        self.open_flush_gap = None if open_flush_gap is None or open_flush_gap < 0 else float(open_flush_gap)
        self._seen: dict[str, None] = {}  # ids logged lately, oldest first (bounded by SEEN_MAX)
        self._opening = False  # an opening record waits to be stored
        self._pending: list[tuple[dict, int]] = []  # in memory: the oldest records not yet stored, in order
        self._on_disk = 0  # records logged after those, waiting only in the log
        self._tail = 0  # offset just past the last record read into memory (where the ones on disk start)
        self._over_cap_said = False
        self._lock = threading.Lock()  # guards the file, _pending, _on_disk and _tail
        self._flush_lock = threading.Lock()  # one flush at a time
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.flushes = 0
        self.stored = 0
        self.failures = 0
        self.rejected = 0
        #: Records written past backlog_max (kept only in the log until read back); records past log_max_bytes.
        self.spilled = 0
        self.over_cap = 0
        #: Flushes brought forward by an opening record.
        self.open_flushes = 0

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
            committed = self.file.committed()
            self._pending, self._tail, at_end = self.file.read_records(committed, self.backlog_max, cut_torn=True)
            self._on_disk = 0 if at_end else self.file.count_records(self._tail, cut_torn=True)
            if not self._pending:
                self._tail = committed
        if self._pending:
            log.info("Replaying %d event records from %s", len(self._pending) + self._on_disk, self.file.path)
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
        key = str(record.get("id"))
        with self._lock:
            offset = self.file.append(line)
            opening = key not in self._seen
            if opening:
                self._seen[key] = None
                if len(self._seen) > self.SEEN_MAX:
                    del self._seen[next(iter(self._seen))]
                self._opening = self._opening or self.open_flush_gap is not None
            if self._on_disk or len(self._pending) >= self.backlog_max:
                self._on_disk += 1  # in the log only: read back once the ones before it are stored
                self.spilled += 1
            else:
                self._pending.append((record, offset))
                self._tail = offset
            waiting = len(self._pending) + self._on_disk
            over = self.log_max_bytes is not None and offset > self.log_max_bytes
            if over:
                self.over_cap += 1
                say, self._over_cap_said = not self._over_cap_said, True
        if over and say:
            log.error("Event log %s is past EVENT_LOG_MAX_MB (%.0f MB) with %d records waiting for the database; "
                      "every record is still written (none is dropped): bring the database back or make room",
                      self.file.path, self.log_max_bytes / 1024 / 1024, waiting)
        if waiting == 1 or waiting >= self.batch_size or opening:  # the flusher re-decides when its wait ends
            self._wake.set()

    def pending(self) -> int:
        """Records not yet stored: in memory and in the log only."""
        with self._lock:
            return len(self._pending) + self._on_disk

    def in_memory(self) -> int:
        """Records not yet stored that are held in memory (at most ``backlog_max``)."""
        with self._lock:
            return len(self._pending)

    def _refill(self) -> None:
        """Under the lock: read the records waiting only in the log back into memory, up to the bound."""
        if not self._on_disk or len(self._pending) >= self.backlog_max:
            return
        records, self._tail, at_end = self.file.read_records(self._tail, self.backlog_max - len(self._pending))
        self._pending.extend(records)
        self._on_disk = 0 if at_end else max(0, self._on_disk - len(records))

    def flush(self) -> int:
        """Store what waits (in memory, then read back from the log, a batch of at most ``backlog_max``
        at a time); after each stored batch advance the committed marker. Raises on failure."""
        with self._flush_lock:
            with self._lock:
                waiting = len(self._pending) + self._on_disk
            done = 0
            while done < waiting:
                with self._lock:
                    self._refill()
                    batch = list(self._pending)
                if not batch:
                    break
                self._store(merge_records([record for record, _ in batch]))
                offset = batch[-1][1]
                with self._lock:
                    del self._pending[: len(batch)]
                    self.file.set_committed(offset)
                    if not self._pending and not self._on_disk and self.file.rotate_if_done(offset):
                        self._tail = 0
                        self._over_cap_said = False
                    self._refill()
                self.flushes += 1
                self.stored += len(batch)
                done += len(batch)
            return done

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
                start, stored, at_end = orphan.committed(), 0, False
                while not at_end:  # a batch of at most backlog_max at a time: bounded memory
                    records, end, at_end = orphan.read_records(start, self.backlog_max, cut_torn=True)
                    if records:
                        self._store(merge_records([r for r, _ in records]))
                        stored += len(records)
                    if end > start:
                        orphan.set_committed(end)
                    start = end
                if stored:
                    adopted += stored
                    log.warning("Stored %d event records left by a dead worker in %s", stored, path)
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
                if self._opening:  # a new event: its alert and live push wait on this store
                    due = min(due, last + self.open_flush_gap)
            wake_at = min(due, next_adopt) if self.adopt_interval is not None else due
            if wake_at > now:
                # append() wakes this for the first waiting record and for a full batch: re-decide then.
                self._wake.wait(None if wake_at == float("inf") else wake_at - now)
                self._wake.clear()
                continue
            with self._lock:
                if self._opening and now < last + self.flush_interval:
                    self.open_flushes += 1
                self._opening = False  # what waits now goes in this flush; later openings set it again
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
