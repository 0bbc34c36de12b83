"""Batcher and ResourcePool: sharing and batching across camera threads.

No timing assertions: where a test needs requests to pile up, the batched
function waits on an event until every caller has submitted.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import threading
from concurrent.futures import Future

import numpy as np
import pytest

from inference.base import VLMAnswer, VLMBackend
from inference.pool import Batcher, ResourcePool, SharedVLM, config_key, default_loaders
from inference.vlm import NoVLM, TransformersVLM

from .tiny_models import build_tiny_vlm

WAIT = 10  # seconds; only a safety net against hangs


def run_threads(n, target):
    """Run target(i) on n threads started together; return results by index, re-raise errors."""
    barrier = threading.Barrier(n)
    results = [None] * n
    errors = []

    def worker(i):
        try:
            barrier.wait(WAIT)
            results[i] = target(i)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 3)
    assert not any(t.is_alive() for t in threads), "threads hung"
    if errors:
        raise errors[0]
    return results


class Gate:
    """Blocks the first batch until ``n`` items were submitted, so the rest pile up."""

    def __init__(self, n):
        self.n = n
        self.count = 0
        self.lock = threading.Lock()
        self.all_in = threading.Event()
        self.first = True

    def submitted(self):
        with self.lock:
            self.count += 1
            if self.count >= self.n:
                self.all_in.set()

    def hold_first(self):
        if self.first:
            self.first = False
            assert self.all_in.wait(WAIT)


# ----------------------------------------------------------------------------- Batcher


def test_batcher_batches_many_threads():
    n = 20
    gate = Gate(n)
    batches = []

    def fn(items):
        gate.hold_first()
        batches.append(list(items))
        return [x * 10 for x in items]

    batcher = Batcher(fn, max_batch=8, max_wait=0.005, name="t")

    def call(i):
        fut = batcher.submit(i)
        gate.submitted()
        return fut.result(WAIT)

    results = run_threads(n, call)
    batcher.close()
    assert results == [i * 10 for i in range(n)]  # each caller got its own result
    assert sorted(x for b in batches for x in b) == list(range(n))
    stats = batcher.stats()
    assert stats["calls"] == len(batches) < n
    assert stats["calls"] <= 1 + -(-(n - 1) // 8)  # first batch, then full batches
    assert stats["largest_batch"] == 8 == max(len(b) for b in batches)
    assert stats["items"] == n
    assert batcher.calls == stats["calls"] and batcher.items == n and batcher.largest_batch == 8


def test_batcher_results_in_item_order_within_a_batch():
    batcher = Batcher(lambda items: [f"r{x}" for x in items], max_batch=16, max_wait=0.05)
    try:
        # map() submits everything before waiting: one batch when the worker is idle
        assert batcher.map(list(range(10))) == [f"r{i}" for i in range(10)]
        assert batcher("x") == "rx"
        assert isinstance(batcher.submit(1), Future)
    finally:
        batcher.close()


def test_batcher_exception_fails_every_caller_and_keeps_running():
    n = 6
    gate = Gate(n)
    state = {"fail": True}

    def fn(items):
        gate.hold_first()
        if state["fail"]:
            raise ValueError(f"bad batch of {len(items)}")
        return [x + 1 for x in items]

    batcher = Batcher(fn, max_batch=16, max_wait=0.005)

    def call(i):
        fut = batcher.submit(i)
        gate.submitted()
        with pytest.raises(ValueError, match="bad batch"):
            fut.result(WAIT)
        return "raised"

    assert run_threads(n, call) == ["raised"] * n
    assert batcher.errors >= 1
    # the worker thread survived: later calls work
    state["fail"] = False
    assert batcher(41) == 42
    with pytest.raises(ValueError):
        state["fail"] = True
        batcher(1)  # __call__ re-raises
    batcher.close()


def test_batcher_wrong_result_count_is_an_error():
    batcher = Batcher(lambda items: list(items) + ["extra"], max_batch=4, max_wait=0.05)
    try:
        futures = [batcher.submit(i) for i in range(3)]
        errors = [f.exception(WAIT) for f in futures]
        assert all(isinstance(e, RuntimeError) and "results for" in str(e) for e in errors)
    finally:
        batcher.close()


def test_batcher_close():
    batcher = Batcher(lambda items: items, max_batch=2)
    assert batcher(5) == 5
    batcher.close()
    assert batcher.closed
    assert not batcher._thread.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(1)
    batcher.close()  # idempotent


def test_batcher_processes_items_queued_before_close():
    release = threading.Event()

    def fn(items):
        release.wait(WAIT)
        return [x * 2 for x in items]

    batcher = Batcher(fn, max_batch=2, max_wait=0)
    futures = [batcher.submit(i) for i in range(5)]
    closer = threading.Thread(target=batcher.close)
    closer.start()
    release.set()
    closer.join(WAIT)
    assert [f.result(WAIT) for f in futures] == [0, 2, 4, 6, 8]


# ----------------------------------------------------------------------------- ResourcePool


class CountingLoader:
    def __init__(self, fail_first=0):
        self.runs = 0
        self.lock = threading.Lock()
        self.fail_first = fail_first
        self.entered = threading.Event()

    def __call__(self, name, config):
        with self.lock:
            self.runs += 1
            run = self.runs
        self.entered.set()
        # make other threads pile up on the per-key lock while this one loads
        threading.Event().wait(0.05)
        if run <= self.fail_first:
            raise OSError(f"load {run} of {name} failed")
        return {"name": name, "config": config, "run": run}


def test_config_key_is_canonical():
    assert config_key({"b": 1, "a": [1, 2]}) == config_key({"a": [1, 2], "b": 1})
    assert config_key(None) == config_key({}) == "{}"


def test_pool_loads_once_under_16_concurrent_threads():
    loader = CountingLoader()
    pool = ResourcePool({"vlm": loader})
    configs = [{"model_path": "/m", "max_batch": 4}, {"max_batch": 4, "model_path": "/m"}]

    objs = run_threads(16, lambda i: pool.get("vlm", "transformers", configs[i % 2]))
    assert loader.runs == 1
    assert all(o is objs[0] for o in objs)
    assert objs[0]["config"] == {"model_path": "/m", "max_batch": 4}
    key = ("vlm", "transformers", config_key(configs[0]))
    assert pool.loaded() == {key: 1}

    other = pool.get("vlm", "transformers", {"model_path": "/other"})
    assert other is not objs[0] and loader.runs == 2
    assert len(pool.loaded()) == 2 and set(pool.loaded().values()) == {1}
    pool.close()


def test_pool_different_kinds_are_separate():
    a, b = CountingLoader(), CountingLoader()
    pool = ResourcePool({"vlm": a, "agent": b})
    assert pool.get("vlm", "x", {}) is not pool.get("agent", "x", {})
    assert pool.agent("x", {}) is pool.get("agent", "x")
    assert (a.runs, b.runs) == (1, 1)
    with pytest.raises(KeyError, match="detector"):
        pool.get("detector", "x", {})


def test_pool_failed_load_is_not_cached():
    loader = CountingLoader(fail_first=1)
    pool = ResourcePool({"agent": loader})
    with pytest.raises(OSError, match="load 1 of llm failed"):
        pool.get("agent", "llm", {"model_path": "/m"})
    assert pool.loaded() == {}
    obj = pool.get("agent", "llm", {"model_path": "/m"})
    assert obj["run"] == 2
    assert pool.get("agent", "llm", {"model_path": "/m"}) is obj
    assert loader.runs == 2
    assert pool.loaded() == {("agent", "llm", config_key({"model_path": "/m"})): 2}


def test_pool_failed_load_under_concurrency_reaches_callers_then_recovers():
    loader = CountingLoader(fail_first=1)
    pool = ResourcePool({"vlm": loader})

    def call(i):
        try:
            return pool.get("vlm", "x", {})
        except OSError:
            return "failed"

    results = run_threads(8, call)
    assert results.count("failed") == 1  # only the thread whose load failed
    good = [r for r in results if r != "failed"]
    assert all(r is good[0] for r in good) and loader.runs == 2


class RecordingVLM(VLMBackend):
    name = "recording"

    def __init__(self, gate=None, **config):
        super().__init__(**config)
        self.max_batch = config.get("max_batch", 4)
        self.gate = gate
        self.batches = []

    def describe_batch(self, images, prompts):
        if self.gate is not None:
            self.gate.hold_first()
        self.batches.append(len(images))
        return [VLMAnswer(summary=f"{int(img[0, 0, 0])}:{p}") for img, p in zip(images, prompts)]


def test_pool_vlm_wrapper_batches_concurrent_describes():
    n = 12
    gate = Gate(n)
    backends = []

    def load(name, config):
        backend = RecordingVLM(gate=gate, **config)
        backends.append(backend)
        return backend

    pool = ResourcePool({"vlm": load}, vlm_max_wait=0.005)
    shared = pool.vlm("recording", {"max_batch": 4})
    assert isinstance(shared, SharedVLM) and isinstance(shared, VLMBackend)
    assert shared.max_batch == 4
    assert pool.vlm("recording", {"max_batch": 4}) is shared

    def call(i):
        image = np.full((4, 4, 3), i, np.uint8)
        fut = shared.batcher.submit((image, f"cam{i}"))
        gate.submitted()
        return fut.result(WAIT)

    answers = run_threads(n, call)
    assert [a.summary for a in answers] == [f"{i}:cam{i}" for i in range(n)]
    assert len(backends) == 1  # one model in memory
    batches = backends[0].batches
    assert sum(batches) == n
    assert len(batches) < n and max(batches) == 4  # batched, never above the backend's max_batch
    assert shared.stats()["largest_batch"] == 4
    # the plain blocking API goes through the same batcher
    assert shared.describe(np.full((2, 2, 3), 7, np.uint8), "p").summary == "7:p"
    assert [a.summary for a in shared.describe_batch([np.zeros((1, 1, 3), np.uint8)] * 2, ["a", "b"])] == [
        "0:a",
        "0:b",
    ]
    pool.close()
    assert shared.batcher.closed


def test_pool_vlm_errors_reach_every_camera():
    class Broken(VLMBackend):
        max_batch = 8

        def describe_batch(self, images, prompts):
            raise RuntimeError("GPU fell over")

    pool = ResourcePool({"vlm": lambda name, config: Broken()})
    shared = pool.vlm("broken", {})
    results = run_threads(4, lambda i: pytest.raises(RuntimeError, shared.describe, np.zeros((2, 2, 3)), "x"))
    assert all("GPU fell over" in str(r.value) for r in results)
    pool.close()


def test_default_loaders_use_resolve():
    registry = {("vlm", "none"): NoVLM, ("vlm", "recording"): RecordingVLM}
    asked = []

    def resolve(kind, name):
        asked.append((kind, name))
        return registry.get((kind, name))

    loaders = default_loaders(resolve)
    assert set(loaders) == {"vlm", "agent"}
    pool = ResourcePool(loaders)
    novlm = pool.get("vlm", "none", {"note": 1})
    assert isinstance(novlm, NoVLM) and novlm.config == {"note": 1}
    assert pool.vlm("none", {"note": 1}).describe(np.zeros((2, 2, 3), np.uint8), "x") is None
    rec = pool.get("vlm", "recording", {"max_batch": 3})
    assert isinstance(rec, RecordingVLM) and rec.max_batch == 3
    with pytest.raises(KeyError, match="nope"):
        pool.get("vlm", "nope", {})
    assert asked.count(("vlm", "none")) == 1
    pool.close()


def test_pool_shares_a_real_tiny_vlm_between_threads(tmp_path):
    path = build_tiny_vlm(tmp_path / "vlm")
    pool = ResourcePool(default_loaders(lambda kind, name: TransformersVLM), vlm_max_wait=0.02)
    config = {"model_path": str(path), "device": "cpu", "max_new_tokens": 6, "max_batch": 4}

    def call(i):
        shared = pool.vlm("transformers", dict(config))
        image = np.full((40, 40, 3), 30 * i, np.uint8)
        return shared.describe(image, f"camera {i}")

    answers = run_threads(6, call)
    assert all(isinstance(a, VLMAnswer) and isinstance(a.summary, str) for a in answers)
    assert list(pool.loaded().values()) == [1]
    backend = pool.get("vlm", "transformers", config)
    assert backend.images_described == 6
    assert backend.generate_calls <= 6
    stats = pool.stats()
    assert stats["loaded"][0]["loads"] == 1 and stats["batchers"][0]["items"] == 6
    pool.close()
