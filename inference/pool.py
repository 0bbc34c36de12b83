"""Sharing loaded models between the camera threads of one worker process.

* ``Batcher`` turns single calls from many threads into batched calls of one
  function, on one background thread.
* ``ResourcePool`` loads each backend once per (kind, name, config) and hands the
  same object to every camera; ``vlm()`` wraps a VLM so that concurrent
  ``describe()`` calls from different cameras become one ``describe_batch()``.

Generic on purpose: a loader is ``callable(name, config) -> backend``. The Django
side passes a ``resolve(kind, name) -> class`` built from its settings registries
to ``default_loaders``. No Django imports here.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from .base import VLMAnswer, VLMBackend

logger = logging.getLogger(__name__)

__all__ = ["Batcher", "ResourcePool", "SharedVLM", "config_key", "default_loaders"]

_STOP = object()


class Batcher:
    """Collects items submitted from many threads and calls ``fn(items) -> results`` in batches.

    One daemon thread takes the first waiting item, then up to ``max_batch - 1``
    more that arrive within ``max_wait`` seconds of it, calls ``fn`` once with the
    list and resolves each item's future with its result (same order). When ``fn``
    raises, or returns the wrong number of results, every future of that batch
    gets the exception and the thread goes on with the next batch.
    """

    def __init__(self, fn: Callable[[list], list], *, max_batch: int = 16, max_wait: float = 0.005, name: str = ""):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.fn = fn
        self.max_batch = int(max_batch)
        self.max_wait = max(0.0, float(max_wait))
        self.name = name
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        #: calls of fn, items passed to fn, largest batch, batches that raised.
        self.calls = 0
        self.items = 0
        self.largest_batch = 0
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name=f"batcher-{name or id(self)}", daemon=True)
        self._thread.start()

    # -- callers

    def submit(self, item) -> Future:
        """Queue ``item``; the future resolves to its result. RuntimeError once closed."""
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"Batcher {self.name!r} is closed")
            self._queue.put((item, future))
        return future

    def __call__(self, item, timeout: float | None = None):
        """Submit and wait: the result, or the exception ``fn`` raised."""
        return self.submit(item).result(timeout)

    def map(self, items, timeout: float | None = None) -> list:
        """Submit several items at once and wait for all their results, in order."""
        futures = [self.submit(i) for i in items]
        return [f.result(timeout) for f in futures]

    def stats(self) -> dict:
        with self._lock:
            return {
                "name": self.name,
                "calls": self.calls,
                "items": self.items,
                "largest_batch": self.largest_batch,
                "errors": self.errors,
                "max_batch": self.max_batch,
            }

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop taking items; those already queued are still processed. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- worker thread

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            batch = [first]
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    nxt = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                batch.append(nxt)
            self._process(batch)
        # Nothing can be queued after _STOP (submit checks _closed under the lock),
        # but fail anything left over rather than leave a caller waiting forever.
        while True:
            try:
                left = self._queue.get_nowait()
            except queue.Empty:
                break
            if left is not _STOP:
                left[1].set_exception(RuntimeError(f"Batcher {self.name!r} closed"))

    def _process(self, batch: list) -> None:
        live = [(item, fut) for item, fut in batch if fut.set_running_or_notify_cancel()]
        if not live:
            return
        items = [item for item, _ in live]
        with self._lock:
            self.calls += 1
            self.items += len(items)
            self.largest_batch = max(self.largest_batch, len(items))
        try:
            results = self.fn(items)
            results = list(results)
            if len(results) != len(items):
                raise RuntimeError(
                    f"Batcher {self.name!r}: fn returned {len(results)} results for {len(items)} items"
                )
        except BaseException as exc:  # noqa: BLE001 - every caller must hear about it
            with self._lock:
                self.errors += 1
            for _, fut in live:
                fut.set_exception(exc)
            if not isinstance(exc, Exception):  # KeyboardInterrupt/SystemExit: let it end the thread
                raise
            return
        for (_, fut), result in zip(live, results):
            fut.set_result(result)


def config_key(config: dict | None) -> str:
    """Canonical JSON of a config: the same settings give the same key whatever the key order."""
    return json.dumps(config or {}, sort_keys=True, separators=(",", ":"), default=str)


class SharedVLM(VLMBackend):
    """A shared VLM whose ``describe()`` calls from many threads are batched.

    Concurrent ``describe(image, prompt)`` calls are gathered by a ``Batcher`` into
    one ``backend.describe_batch()`` of up to ``backend.max_batch`` images.
    """

    def __init__(self, backend: VLMBackend, *, max_wait: float = 0.01):
        self.backend = backend
        self.config = getattr(backend, "config", {})
        self.name = getattr(backend, "name", "")
        self.max_batch = max(1, int(getattr(backend, "max_batch", 1) or 1))
        self.batcher = Batcher(self._run_batch, max_batch=self.max_batch, max_wait=max_wait, name=f"vlm:{self.name}")

    def _run_batch(self, items: list) -> list:
        images = [image for image, _ in items]
        prompts = [prompt for _, prompt in items]
        return self.backend.describe_batch(images, prompts)

    def describe(self, image, prompt: str) -> VLMAnswer | None:
        return self.batcher((image, prompt))

    def describe_batch(self, images, prompts) -> list[VLMAnswer | None]:
        if len(images) != len(prompts):
            raise ValueError(f"describe_batch: {len(images)} images but {len(prompts)} prompts")
        return self.batcher.map(list(zip(images, prompts)))

    def stats(self) -> dict:
        return self.batcher.stats()

    def close(self) -> None:
        self.batcher.close()

    def __repr__(self) -> str:
        return f"<SharedVLM {self.backend!r}>"


class ResourcePool:
    """Thread-safe registry of loaded backends, shared by the camera threads of a worker.

    ``get(kind, name, config)`` runs ``loaders[kind](name, config)`` at most once per
    (kind, name, canonical JSON of config), even when many threads ask at the same
    moment; a failed load raises to its caller and is tried again by the next get.
    """

    def __init__(self, loaders: dict[str, Callable[[str, dict], object]] | None = None, *, vlm_max_wait: float = 0.01,
                 options: dict[str, dict] | None = None):
        self.loaders: dict[str, Callable[[str, dict], object]] = dict(loaders or {})
        #: What the process tells the detectors that share its models, by kind; ``options["objects"]``:
        #: ``live`` (a worker running cameras: object detection goes through its scheduler),
        #: ``budget_fps``, ``max_batch``, ``model_dir`` (inference/object_detector.py).
        self.options: dict[str, dict] = dict(options or {})
        self.vlm_max_wait = vlm_max_wait
        self._lock = threading.Lock()
        self._key_locks: dict[tuple, threading.Lock] = {}
        self._objects: dict[tuple, object] = {}
        self._runs: dict[tuple, int] = {}
        self._shared_vlms: dict[tuple, SharedVLM] = {}
        self._closed = False

    @staticmethod
    def key(kind: str, name: str, config: dict | None) -> tuple[str, str, str]:
        return (kind, name, config_key(config))

    def get(self, kind: str, name: str, config: dict | None = None) -> object:
        key = self.key(kind, name, config)
        with self._lock:
            if self._closed:
                raise RuntimeError("ResourcePool is closed")
            if key in self._objects:
                return self._objects[key]
            loader = self.loaders.get(kind)
            if loader is None:
                raise KeyError(f"no loader for kind {kind!r}; known kinds: {sorted(self.loaders)}")
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._objects:
                    return self._objects[key]
                self._runs[key] = self._runs.get(key, 0) + 1
            logger.info("loading %s %r", kind, name)
            obj = loader(name, dict(config or {}))  # raises to the caller; nothing cached
            with self._lock:
                self._objects[key] = obj
            return obj

    def vlm(self, name: str, config: dict | None = None) -> SharedVLM:
        """The VLM (kind "vlm") wrapped so that concurrent describe() calls are batched."""
        key = self.key("vlm", name, config)
        with self._lock:
            shared = self._shared_vlms.get(key)
        if shared is not None:
            return shared
        backend = self.get("vlm", name, config)
        with self._lock:
            shared = self._shared_vlms.get(key)
            if shared is None:
                shared = SharedVLM(backend, max_wait=self.vlm_max_wait)
                self._shared_vlms[key] = shared
            return shared

    def agent(self, name: str, config: dict | None = None) -> object:
        """The agent policy (kind "agent")."""
        return self.get("agent", name, config)

    def shared(self, kind: str, config: dict, factory: Callable[[dict], object]) -> object:
        """The object ``factory(config)`` builds, built once per (kind, config) and shared.

        For models that detectors of many cameras share (a CLIP model, a batched torch
        runner): ``pool.shared("clip", {"model_path": p}, ClipScorer)``.
        """
        with self._lock:
            self.loaders.setdefault(kind, lambda _name, cfg: factory(cfg))
        return self.get(kind, kind, config)

    def loaded(self) -> dict[tuple[str, str, str], int]:
        """{(kind, name, config_json): loader runs} for every loaded backend."""
        with self._lock:
            return {key: self._runs.get(key, 0) for key in self._objects}

    def load_attempts(self) -> dict[tuple[str, str, str], int]:
        """{key: loader runs} including loads that failed."""
        with self._lock:
            return dict(self._runs)

    def stats(self) -> dict:
        with self._lock:
            return {
                "loaded": [
                    {"kind": k[0], "name": k[1], "config": json.loads(k[2]), "loads": self._runs.get(k, 0)}
                    for k in self._objects
                ],
                "batchers": [s.stats() for s in self._shared_vlms.values()],
            }

    def close(self) -> None:
        """Stop the batchers and close backends that have a ``close()``; forget everything."""
        with self._lock:
            self._closed = True
            shared = list(self._shared_vlms.values())
            objects = list(self._objects.values())
            self._shared_vlms.clear()
            self._objects.clear()
            self._key_locks.clear()
        for s in shared:
            s.close()
        for obj in objects:
            close = getattr(obj, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:  # pragma: no cover
                    logger.exception("closing %r failed", obj)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def default_loaders(
    resolve: Callable[[str, str], type], kinds: tuple[str, ...] = ("vlm", "agent")
) -> dict[str, Callable[[str, dict], object]]:
    """Loaders for ``ResourcePool``: ``resolve(kind, name)`` gives the class, built with ``cls(**config)``."""

    def make(kind: str):
        def load(name: str, config: dict):
            cls = resolve(kind, name)
            if cls is None:
                raise KeyError(f"no {kind} backend named {name!r}")
            return cls(**(config or {}))

        load.__name__ = f"load_{kind}"
        return load

    return {kind: make(kind) for kind in kinds}
