"""Sharing loaded models between the camera threads of one worker process.

* ``Batcher`` turns single calls from many threads into batched calls of one
  function, on one background thread.
* ``ResourcePool`` loads each backend once per (kind, name, config) and hands the
  same object to every camera; ``vlm()`` wraps a VLM so that concurrent
  ``describe()`` calls from different cameras become one ``describe_batch()``.
  Model folders can be confined to allowed roots, and the number of loaded models
  bounded (least recently used models no camera holds are evicted): see ``ResourcePool``.

Generic on purpose: a loader is ``callable(name, config) -> backend``. The Django
side passes a ``resolve(kind, name) -> class`` built from its settings registries
to ``default_loaders``. No Django imports here.
"""

from __future__ import annotations

import gc
import json
import logging
import queue
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future

from .base import VLMAnswer, VLMBackend

logger = logging.getLogger(__name__)

__all__ = ["Batcher", "Hold", "ResourcePool", "SharedVLM", "config_key", "default_loaders"]

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


def _close_quietly(obj) -> None:
    """``obj.close()`` where it has one; a failure is logged, never raised (the pool goes on)."""
    close = getattr(obj, "close", None)
    if callable(close):
        try:
            close()
        except Exception:  # pragma: no cover
            logger.exception("closing %r failed", obj)


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


#: Config entries that name a model folder: with ``model_roots``, each must lie in them (checked, and
#: replaced by the resolved folder, before anything is loaded).
MODEL_FOLDER_PARAMS = ("model_path", "model_dir")
#: Config entries that, with the folder, decide a model's weights in memory. Entries with the same
#: values are one model for the bound (a model and the scheduler or batcher built around it).
WEIGHT_PARAMS = ("model_path", "model_dir", "device", "dtype")


class Hold:
    """The pool entries one user (a camera, a learning job) uses; while held, none is evicted.

    ``with pool.hold() as hold:`` records every entry this thread gets from the pool inside the
    block. Leaving the block releases them, unless ``hold.bind(owner)`` was called: then they are
    released when ``owner`` (the camera's E2ESystem) is garbage collected, however it went away.
    """

    def __init__(self, pool: "ResourcePool"):
        self.pool = pool
        self.keys: set[tuple] = set()
        self.bound = False
        self.released = False

    def __enter__(self) -> "Hold":
        self.pool._hold_stack().append(self)
        return self

    def __exit__(self, *exc) -> None:
        stack = self.pool._hold_stack()
        if stack and stack[-1] is self:
            stack.pop()
        elif self in stack:  # pragma: no cover - holds left out of order
            stack.remove(self)
        if not self.bound or exc[0] is not None:
            self.release()

    def bind(self, owner) -> None:
        """Keep what is held until ``owner`` is garbage (a weak reference: the pool never keeps it alive)."""
        self.bound = True
        # The finalizer only queues the hold (no lock: it may run inside any allocation, in any thread);
        # the pool releases queued holds at its next call.
        weakref.finalize(owner, self.pool._released.append, self)

    def release(self) -> None:
        """Give back what is held now (idempotent)."""
        self.pool._release_now(self)


class ResourcePool:
    """Thread-safe registry of loaded backends, shared by the camera threads of a worker.

    ``get(kind, name, config)`` runs ``loaders[kind](name, config)`` at most once per
    (kind, name, canonical JSON of config), even when many threads ask at the same
    moment; a failed load raises to its caller and is tried again by the next get.

    Model folders: with ``model_roots`` (the site's ``MODEL_ROOTS``), every ``model_path`` and
    ``model_dir`` in a config must lie in them (``inference.modelfiles.check_model_root``: absolute,
    symlinks and ``..`` resolved; a ValueError otherwise, the same whether or not the path exists);
    the resolved folder replaces it in the config, so that the loader opens what was checked.

    Keys: a config is keyed as given, so backends should be asked with what decides their weights.
    ``agent()`` does that for policies that declare ``weight_params`` and ``with_params``
    (``LLMPolicy``): one model per (name, model folder, device, dtype), each camera getting a view with
    its own decision parameters, so editing a camera's prompt-like parameters loads nothing.

    Bound (``max_models``, the worker's ``WORKER_MAX_MODELS``; None: no bound, the library's
    default): at most that many models stay loaded, a model being the entries that share a model
    folder, device and dtype (the object model and its scheduler are one). Entries used inside a
    ``hold()`` are held until released; the least recently used model that nothing holds is
    evicted (its entries dropped and closed) to make room before another loads. A model still in
    use is never evicted: when every slot is held, the new model is loaded anyway, past the bound,
    logged as a warning and counted in ``over_bound`` (refusing would stop a camera for want of
    memory that may well be there); the pool comes back under the bound as holders go. Entries
    without a model folder (the rule policy, a batch runner) do not count and are dropped as soon
    as nothing holds them. Anything got outside a hold may be evicted (and closed) once the pool
    is past its bound: hold what you use.
    """

    def __init__(self, loaders: dict[str, Callable[[str, dict], object]] | None = None, *, vlm_max_wait: float = 0.01,
                 options: dict[str, dict] | None = None, model_roots=None, max_models: int | None = None):
        self.loaders: dict[str, Callable[[str, dict], object]] = dict(loaders or {})
        #: What the process tells the detectors that share its models, by kind; ``options["objects"]``:
        #: ``live`` (a worker running cameras: object detection goes through its scheduler),
        #: ``budget_fps``, ``max_batch``, ``model_dir`` (inference/object_detector.py).
        self.options: dict[str, dict] = dict(options or {})
        self.vlm_max_wait = vlm_max_wait
        #: Allowed model folders (None: any folder; the library and command-line tools).
        self.model_roots = None if model_roots is None else [str(r) for r in model_roots]
        if max_models is not None and int(max_models) < 1:
            raise ValueError("max_models must be at least 1 (or None for no bound)")
        self.max_models = None if max_models is None else int(max_models)
        self._lock = threading.Lock()
        self._key_locks: dict[tuple, threading.Lock] = {}
        self._objects: OrderedDict[tuple, object] = OrderedDict()  # least recently used first
        self._configs: dict[tuple, dict] = {}
        self._runs: dict[tuple, int] = {}
        self._shared_vlms: dict[tuple, SharedVLM] = {}
        self._holds: dict[tuple, int] = {}  # key -> holds on it
        self._released: deque[Hold] = deque()  # holds whose owner was collected, to release
        self._local = threading.local()
        self._closed = False
        #: Entries evicted to stay within the bound; models loaded past it (every slot in use).
        self.evictions = 0
        self.over_bound = 0

    # -- keys and configs

    @staticmethod
    def key(kind: str, name: str, config: dict | None) -> tuple[str, str, str]:
        return (kind, name, config_key(config))

    def _prepare(self, kind: str, name: str, config: dict | None) -> tuple[tuple, dict]:
        """(key, config) with each model folder checked against the roots and resolved."""
        config = dict(config or {})
        if self.model_roots is not None:
            from .modelfiles import check_model_root  # no torch: only paths

            for param in MODEL_FOLDER_PARAMS:
                if config.get(param):
                    config[param] = str(check_model_root(config[param], self.model_roots, f"{kind} {name!r}"))
        return self.key(kind, name, config), config

    @staticmethod
    def _group(config: dict):
        """What identifies the entry's weights, or None for an entry without a model folder."""
        if not any(config.get(p) for p in MODEL_FOLDER_PARAMS):
            return None
        return tuple(str(config.get(p)) for p in WEIGHT_PARAMS)

    # -- holds

    def hold(self) -> Hold:
        """``with pool.hold() as hold: ...``: the entries got in the block are not evicted while held."""
        return Hold(self)

    def _hold_stack(self) -> list[Hold]:
        stack = getattr(self._local, "holds", None)
        if stack is None:
            stack = self._local.holds = []
        return stack

    def _note_use(self, key: tuple) -> None:
        """Under the lock: ``key`` was just used; the thread's innermost hold takes it."""
        self._objects.move_to_end(key)
        stack = getattr(self._local, "holds", None)
        if stack:
            hold = stack[-1]
            if not hold.released and key not in hold.keys:
                hold.keys.add(key)
                self._holds[key] = self._holds.get(key, 0) + 1

    def _unhold(self, hold: Hold) -> None:
        """Under the lock."""
        if hold.released:
            return
        hold.released = True
        for key in hold.keys:
            left = self._holds.get(key, 0) - 1
            if left > 0:
                self._holds[key] = left
            else:
                self._holds.pop(key, None)

    def _drain(self) -> bool:
        """Under the lock: release the holds whose owners were collected since the last call (True if any)."""
        drained = False
        while self._released:
            self._unhold(self._released.popleft())
            drained = True
        return drained

    def _release_now(self, hold: Hold) -> None:
        with self._lock:
            self._unhold(hold)
            self._drain()
            evicted = self._evict()
        self._close_entries(evicted)

    def held(self) -> dict[tuple, int]:
        """{key: holds} of the entries some holder uses now."""
        with self._lock:
            self._drain()
            return dict(self._holds)

    # -- the bound

    def _models(self) -> set:
        groups = {self._group(self._configs[key]) for key in self._objects}
        groups.discard(None)
        return groups

    def _evict(self, keep=None, room: int = 0, keep_key=None) -> list[tuple[tuple, object, SharedVLM | None]]:
        """Under the lock: drop what the bound asks; the dropped entries, to close outside the lock.

        Idle entries without a model folder go at once; then idle models, least recently used
        first, until at most ``max_models - room`` are loaded. ``keep``: a group, ``keep_key``: an
        entry (the one being handed out), never evicted here.
        """
        if self.max_models is None:
            return []
        dropped = []

        def drop(key):
            obj = self._objects.pop(key)
            self._configs.pop(key, None)
            dropped.append((key, obj, self._shared_vlms.pop(key, None)))

        for key in [k for k in self._objects
                    if k != keep_key and self._group(self._configs[k]) is None and not self._holds.get(k)]:
            drop(key)
        groups: dict = {}  # group -> its keys
        recency: dict = {}  # group -> position of its most recently used entry
        for position, key in enumerate(self._objects):
            group = self._group(self._configs[key])
            if group is not None:
                groups.setdefault(group, []).append(key)
                recency[group] = position
        order = sorted(groups, key=recency.__getitem__)  # least recently used first
        loaded = len(groups)
        for group in order:
            if loaded <= self.max_models - room:
                break
            if group == keep or keep_key in groups[group] or any(self._holds.get(k) for k in groups[group]):
                continue
            for key in groups[group]:
                drop(key)
            loaded -= 1
        if dropped:
            self.evictions += len(dropped)
        return dropped

    @staticmethod
    def _close_entries(dropped) -> None:
        for key, obj, shared in dropped:
            logger.info("model pool: evicted %s %r (no camera uses it)", key[0], key[1])
            if shared is not None:
                shared.close()
            _close_quietly(obj)

    def _make_room(self, key: tuple, group) -> None:
        """Before loading a new model: evict idle ones so that it fits (best effort, outside the lock)."""
        if self.max_models is None or group is None:
            return
        for attempt in range(2):
            with self._lock:
                self._drain()
                if group in self._models() or len(self._models()) < self.max_models:
                    evicted = self._evict(keep=group)
                    full = False
                else:
                    evicted = self._evict(keep=group, room=1)
                    full = len(self._models()) >= self.max_models
            self._close_entries(evicted)
            if not full or attempt:
                return
            # Cameras stopped since may not be collected yet (reference cycles): collect, then look again.
            gc.collect()

    # -- getting

    def get(self, kind: str, name: str, config: dict | None = None) -> object:
        key, config = self._prepare(kind, name, config)
        with self._lock:
            if self._closed:
                raise RuntimeError("ResourcePool is closed")
            drained = self._drain()
            hit = key in self._objects
            if hit:
                self._note_use(key)
                obj = self._objects[key]
                evicted = self._evict(keep_key=key) if drained else []  # back under the bound as holders go
        if hit:
            self._close_entries(evicted)
            return obj
        with self._lock:
            loader = self.loaders.get(kind)
            if loader is None:
                raise KeyError(f"no loader for kind {kind!r}; known kinds: {sorted(self.loaders)}")
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._objects:
                    self._note_use(key)
                    return self._objects[key]
            group = self._group(config)
            self._make_room(key, group)
            with self._lock:
                self._runs[key] = self._runs.get(key, 0) + 1
            logger.info("loading %s %r", kind, name)
            obj = loader(name, dict(config))  # raises to the caller; nothing cached
            with self._lock:
                self._objects[key] = obj
                self._configs[key] = config
                self._note_use(key)
                evicted = self._evict(keep=group, keep_key=key)
                loaded = len(self._models())
                past = self.max_models is not None and group is not None and loaded > self.max_models
                if past:
                    self.over_bound += 1
            self._close_entries(evicted)
            if past:
                logger.warning(
                    "model pool: loaded %s %r past the bound of %d models (%d loaded, all in use by cameras); "
                    "raise WORKER_MAX_MODELS or run fewer different models on this worker",
                    kind, name, self.max_models, loaded)
            return obj

    def vlm(self, name: str, config: dict | None = None) -> SharedVLM:
        """The VLM (kind "vlm") wrapped so that concurrent describe() calls are batched."""
        key, _ = self._prepare("vlm", name, config)
        with self._lock:
            shared = self._shared_vlms.get(key)
            if shared is not None and key in self._objects:
                self._note_use(key)
                return shared
        backend = self.get("vlm", name, config)
        stale = None
        with self._lock:
            shared = self._shared_vlms.get(key)
            if shared is None or shared.backend is not backend:  # none yet, or one of an evicted copy
                stale = shared
                shared = SharedVLM(backend, max_wait=self.vlm_max_wait)
                self._shared_vlms[key] = shared
        if stale is not None:
            stale.close()
        return shared

    def agent(self, name: str, config: dict | None = None) -> object:
        """The agent policy (kind "agent").

        A policy class with a model declares ``weight_params`` (the parameters that decide its
        weights) and ``with_params(**params)`` (the same loaded model with other decision
        parameters): the pool loads one per set of weight parameters and gives each caller a view
        with its own parameters. Other policies are keyed on their whole config.
        """
        config = dict(config or {})
        weight_params = self._weight_params("agent", name)
        if weight_params and any(config.get(p) for p in MODEL_FOLDER_PARAMS):
            base = self.get("agent", name, {p: config[p] for p in weight_params if p in config})
            with_params = getattr(base, "with_params", None)
            if callable(with_params):
                return with_params(**config)
        return self.get("agent", name, config)

    def _weight_params(self, kind: str, name: str):
        """What the loader of ``kind`` says decides the weights of backend ``name`` (None: unknown)."""
        ask = getattr(self.loaders.get(kind), "weight_params", None)
        if not callable(ask):
            return None
        try:
            return tuple(ask(name) or ())
        except Exception:  # an unknown name: the load says why
            return None

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
            self._drain()
            return {key: self._runs.get(key, 0) for key in self._objects}

    def load_attempts(self) -> dict[tuple[str, str, str], int]:
        """{key: loader runs} including loads that failed."""
        with self._lock:
            return dict(self._runs)

    def stats(self) -> dict:
        with self._lock:
            self._drain()
            return {
                "loaded": [
                    {"kind": k[0], "name": k[1], "config": json.loads(k[2]), "loads": self._runs.get(k, 0),
                     "held": self._holds.get(k, 0)}
                    for k in self._objects
                ],
                "batchers": [s.stats() for s in self._shared_vlms.values()],
                "models": len(self._models()),
                "max_models": self.max_models,
                "evictions": self.evictions,
                "over_bound": self.over_bound,
            }

    def close(self) -> None:
        """Stop the batchers and close backends that have a ``close()``; forget everything."""
        with self._lock:
            self._closed = True
            shared = list(self._shared_vlms.values())
            objects = list(self._objects.values())
            self._shared_vlms.clear()
            self._objects.clear()
            self._configs.clear()
            self._key_locks.clear()
            self._holds.clear()
            self._released.clear()
        for s in shared:
            s.close()
        for obj in objects:
            _close_quietly(obj)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def default_loaders(
    resolve: Callable[[str, str], type], kinds: tuple[str, ...] = ("vlm", "agent")
) -> dict[str, Callable[[str, dict], object]]:
    """Loaders for ``ResourcePool``: ``resolve(kind, name)`` gives the class, built with ``cls(**config)``.

    Each loader also answers ``loader.weight_params(name)``: the class's ``weight_params``, for ``agent()``.
    """

    def make(kind: str):
        def load(name: str, config: dict):
            cls = resolve(kind, name)
            if cls is None:
                raise KeyError(f"no {kind} backend named {name!r}")
            return cls(**(config or {}))

        load.__name__ = f"load_{kind}"
        load.weight_params = lambda name: getattr(resolve(kind, name), "weight_params", None)
        return load

    return {kind: make(kind) for kind in kinds}
