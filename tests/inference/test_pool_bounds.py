"""The worker's model pool is bounded: keyed on weights, at most max_models loaded, LRU eviction of idle ones.

What happens at the bound (inference/pool.py ResourcePool): the least recently used model that no
camera holds is evicted (closed) to make room; a model a camera holds is never evicted; when every
slot is held, the new model is loaded anyway, logged and counted in ``over_bound``, and the pool
comes back under the bound as cameras let go.
"""

from __future__ import annotations

import copy
import gc
import json
import logging
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest

from inference.base import EpisodeSummary, VLMAnswer, VLMBackend
from inference.pool import ResourcePool, default_loaders


class FakeModel:
    def __init__(self, name, config):
        self.name, self.config, self.closed = name, config, False

    def close(self):
        self.closed = True


class Loader:
    def __init__(self):
        self.loaded: list[tuple[str, dict]] = []

    def __call__(self, name, config):
        self.loaded.append((name, config))
        return FakeModel(name, config)


class FakeLLM:
    """An agent with weights: what the pool needs of LLMPolicy (weight_params, with_params)."""

    weight_params = ("model_path", "device", "dtype")
    loads = 0

    def __init__(self, **params):
        type(self).loads += 1
        self.params = params
        self.weights = object()  # what a real one spends memory on

    def with_params(self, **params):
        view = copy.copy(self)
        view.params = {**params, **{k: self.params[k] for k in self.weight_params if k in self.params}}
        return view


class Owner:
    """Stands for a camera's E2ESystem: what a hold is bound to."""


def model(path, device="cpu", **extra):
    return {"model_path": path, "device": device, **extra}


# -- keyed on the weights ------------------------------------------------------------------------------

def test_editing_an_llm_agents_parameters_loads_no_new_copy():
    FakeLLM.loads = 0
    pool = ResourcePool(default_loaders(lambda kind, name: FakeLLM), max_models=4)
    agents = [pool.agent("llm", model("/models/llm", max_new_tokens=n, rules={"medium_ratio": 1 + n / 100}))
              for n in range(1, 11)]  # ten edits of the camera's agent parameters
    assert FakeLLM.loads == 1 and len(pool.loaded()) == 1
    assert len({id(a.weights) for a in agents}) == 1  # one set of weights
    assert [a.params["max_new_tokens"] for a in agents] == list(range(1, 11))  # each its own parameters
    pool.agent("llm", model("/models/other", max_new_tokens=5))  # other weights: another model
    pool.agent("llm", model("/models/llm", device="cuda:1"))
    assert FakeLLM.loads == 3
    pool.close()


def test_a_real_llm_policy_shares_its_weights_between_parameter_sets(tmp_path, settings):
    from runtime.process import create_pool
    from tests.inference.tiny_models import build_tiny_causal_lm

    settings.MODEL_ROOTS = [str(tmp_path)]
    path = build_tiny_causal_lm(tmp_path / "lm")
    pool = create_pool()
    try:
        a = pool.agent("llm", {"model_path": str(path), "device": "cpu", "max_new_tokens": 4})
        b = pool.agent("llm", {"model_path": str(path), "device": "cpu", "max_new_tokens": 2,
                               "use_chat_template": False, "rules": {"medium_ratio": 1.2}})
        assert list(pool.loaded().values()) == [1]
        assert a.model is b.model and a.tokenizer is b.tokenizer and a._lock is b._lock
        assert (a.max_new_tokens, b.max_new_tokens) == (4, 2) and b.fallback.medium_ratio == 1.2
        episode = EpisodeSummary(peak_score=0.9, mean_score=0.7, duration=5.0, threshold=0.5)
        assert a.decide(episode).severity and b.decide(episode).severity
    finally:
        pool.close()


# -- the bound -----------------------------------------------------------------------------------------

def test_least_recently_used_idle_models_are_evicted_at_the_bound():
    loader = Loader()
    pool = ResourcePool({"vlm": loader}, max_models=2)
    a = pool.get("vlm", "x", model("/a"))
    b = pool.get("vlm", "x", model("/b"))
    assert pool.get("vlm", "x", model("/a")) is a  # a used again: b is now the least recently used
    c = pool.get("vlm", "x", model("/c"))
    assert b.closed and not a.closed and not c.closed
    assert sorted(json.loads(key[2])["model_path"] for key in pool.loaded()) == ["/a", "/c"]
    assert pool.evictions == 1 and pool.over_bound == 0
    again = pool.get("vlm", "x", model("/b"))  # loaded again when asked again
    assert again is not b and len(loader.loaded) == 4 and a.closed  # a was now the oldest
    assert pool.stats()["models"] == 2
    pool.close()


def test_a_model_in_use_is_never_evicted_and_past_the_bound_it_is_logged_and_counted(caplog):
    pool = ResourcePool({"vlm": Loader()}, max_models=2)
    owners = [Owner(), Owner()]
    held = []
    for owner, path in zip(owners, ("/a", "/b")):
        with pool.hold() as hold:
            held.append(pool.get("vlm", "x", model(path)))
            hold.bind(owner)  # a camera runs with it
    with caplog.at_level(logging.WARNING, logger="inference.pool"):
        with pool.hold():
            c = pool.get("vlm", "x", model("/c"))  # every slot is in use: loaded anyway
            assert not any(m.closed for m in held)
            assert pool.over_bound == 1 and pool.stats()["models"] == 3
    assert any("past the bound of 2 models" in r.getMessage() for r in caplog.records)
    del owners[0]  # the first camera stopped
    gc.collect()
    d = pool.get("vlm", "x", model("/d"))  # room is made from what nobody holds now: /a, then /c
    assert held[0].closed and c.closed and not held[1].closed and not d.closed
    assert pool.stats()["models"] == 2 and pool.over_bound == 1
    pool.close()


def test_the_pool_comes_back_under_the_bound_as_cameras_let_go():
    pool = ResourcePool({"vlm": Loader()}, max_models=1)
    owners = [Owner(), Owner()]
    models = []
    for owner, path in zip(owners, ("/a", "/b")):
        with pool.hold() as hold:
            models.append(pool.get("vlm", "x", model(path)))
            hold.bind(owner)
    assert pool.over_bound == 1 and len(pool.loaded()) == 2
    owners.clear()
    gc.collect()
    pool.get("vlm", "x", model("/b"))  # any call: the released holds are counted, the oldest idle model goes
    assert models[0].closed and not models[1].closed and len(pool.loaded()) == 1
    pool.close()


def test_holds_follow_their_owner_and_a_failed_build_holds_nothing():
    pool = ResourcePool({"vlm": Loader(), "agent": Loader()}, max_models=4)
    owner = Owner()
    with pool.hold() as hold:
        pool.get("vlm", "x", model("/a"))
        pool.get("agent", "rules", {})
        hold.bind(owner)
    assert sorted(k[0] for k in pool.held()) == ["agent", "vlm"]
    del owner
    gc.collect()
    assert pool.held() == {}
    with pytest.raises(RuntimeError):
        with pool.hold() as hold:
            pool.get("vlm", "x", model("/b"))
            raise RuntimeError("the camera could not start")
    assert pool.held() == {}
    with pool.hold():  # a learning job: held while the block runs
        pool.get("vlm", "x", model("/a"))
        assert len(pool.held()) == 1
    assert pool.held() == {}
    pool.close()


def test_a_model_and_what_is_built_around_it_count_once_and_weightless_entries_not_at_all():
    pool = ResourcePool(max_models=1)
    with pool.hold() as hold:
        objects = pool.shared("objects", {"model_dir": "/m", "device": "cpu", "threads": 1},
                              lambda cfg: FakeModel("objects", cfg))
        scheduler = pool.shared("object-scheduler", {"model_dir": "/m", "device": "cpu", "threads": 1,
                                                     "budget_fps": 4.0}, lambda cfg: FakeModel("scheduler", cfg))
        runner = pool.shared("predict-runner", {"device": "cpu"}, lambda cfg: FakeModel("runner", cfg))
        owner = Owner()
        hold.bind(owner)
    assert pool.stats()["models"] == 1 and pool.over_bound == 0
    del owner
    gc.collect()
    other = pool.shared("objects", {"model_dir": "/n", "device": "cpu", "threads": 1},
                        lambda cfg: FakeModel("objects", cfg))
    # the idle model goes with its scheduler; the idle runner (no weights of its own) goes too
    assert objects.closed and scheduler.closed and runner.closed and not other.closed
    assert pool.stats()["models"] == 1 and pool.over_bound == 0
    pool.close()


class RecordingVLM(VLMBackend):
    name = "recording"
    max_batch = 2

    def __init__(self, **config):
        super().__init__(**config)
        self.closed = False

    def describe_batch(self, images, prompts):
        return [VLMAnswer(summary=p) for p in prompts]

    def close(self):
        self.closed = True


def test_an_evicted_vlm_stops_its_batcher():
    pool = ResourcePool({"vlm": lambda name, config: RecordingVLM(**config)}, max_models=1)
    first = pool.vlm("recording", model("/v1"))
    assert first.describe(np.zeros((4, 4, 3), np.uint8), "hello").summary == "hello"
    second = pool.vlm("recording", model("/v2"))
    assert first.batcher.closed and first.backend.closed and not second.batcher.closed
    assert pool.vlm("recording", model("/v2")) is second
    pool.close()


def test_an_unbounded_pool_is_the_librarys_default():
    pool = ResourcePool({"vlm": Loader()})
    loaded = [pool.get("vlm", "x", model(f"/m{i}")) for i in range(10)]
    assert len(pool.loaded()) == 10 and not any(m.closed for m in loaded) and pool.max_models is None
    pool.close()


# -- the worker -----------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_the_worker_bounds_its_pool_and_its_cameras_hold_their_models(settings, tmp_path):
    from runtime.process import create_logger, create_manager, create_pool
    from tests.factories import CameraFactory

    settings.WORKER_MAX_MODELS = 3
    settings.EVENT_LOG_DIR = tmp_path / "eventlog"
    pool = create_pool()
    assert pool.max_models == 3 and pool.model_roots == [str(r) for r in settings.MODEL_ROOTS]
    logger = create_logger("bounds-worker").start()
    manager = create_manager("bounds-worker", logger, pool)
    try:
        camera = CameraFactory(source_url="demo://?seed=2", agent_params={"medium_ratio": 1.5})
        system = manager.build(camera.runtime_config(), manager)
        assert [k[:2] for k in pool.held()] == [("agent", "rules")]  # held while the camera's system lives
        assert system.agent.medium_ratio == 1.5
        del system
        gc.collect()
        assert pool.held() == {}
        # A camera the manager runs holds its models until it is stopped.
        running = CameraFactory(source_url="demo://?seed=3", enabled=True)
        assert manager.start(running.id) == "started"
        assert [k[:2] for k in pool.held()] == [("agent", "rules")]
        manager.stop(running.id)
        gc.collect()
        assert pool.held() == {}
    finally:
        manager.close()
        logger.close()
        pool.close()
