"""PredictionDetector ("predict"): registry, learning, persistence, batching across cameras, feedback.

Plain pytest functions on a tiny synthetic scene (no footage needed): a textured walkway where
"people" (dark blocks) walk left and right along a lane at walking speed. Anomalies: a block
moving five times faster in the lane, and a block moving on the top strip where nothing ever
moves. Tiny settings (48 px wide network, 4 channels) keep every test to a few seconds; no
timing assertions (speed is measured by the benchmarks).
"""

from __future__ import annotations

import json
import threading

import cv2
import numpy as np
import pytest

from inference.base import Detector, DetectorResult
from inference.learned import STATE_VERSION, PredictionDetector, PredictRunner
from inference.pool import ResourcePool
from inference.registry import make_detector

W, H = 96, 64
FPS = 10.0
TINY = {"input_width": 48, "channels": 4, "cell_size": 4, "max_epochs": 16, "max_train_seconds": 600,
        "batch_size": 16, "learning_rate": 0.005, "device": "cpu", "smoothing": 0.2, "top_cells": 1,
        "feedback_steps": 20}


def scene(n: int, seed: int, *, fast: tuple[int, int] | None = None, top: tuple[int, int] | None = None):
    """n gray frames of the walkway. ``fast``/``top``: frame range of a fast walker / a top-strip mover."""
    rng = np.random.default_rng(1000)  # the same background for every clip: one camera
    background = cv2.GaussianBlur(rng.integers(70, 180, (H, W)).astype(np.uint8), (5, 5), 1.5)
    walk = np.random.default_rng(seed)
    walkers = [(walk.uniform(0, W), walk.choice([-1.0, 1.0]) * walk.uniform(0.8, 1.2), walk.integers(24, 40))
               for _ in range(3)]
    frames = []
    for i in range(n):
        img = background.copy()
        for x0, v, y in walkers:
            x = int((x0 + v * i) % (W + 10)) - 5
            cv2.rectangle(img, (x, int(y)), (x + 4, int(y) + 9), 30, -1)
        if fast and fast[0] <= i < fast[1]:
            x = int(5 + 5.0 * (i - fast[0])) % W
            cv2.rectangle(img, (x, 30), (x + 4, 39), 30, -1)
        if top and top[0] <= i < top[1]:
            x = int(10 + 1.0 * (i - top[0])) % W
            cv2.rectangle(img, (x, 2), (x + 4, 11), 30, -1)
        frames.append(img)
    return frames


def normal_footage():
    """Three normal clips, None between them (the form vad_eval and the learning task give)."""
    for seed in (1, 2, 3):
        yield None
        yield from scene(120, seed)


def run(detector, frames, t0: float = 0.0) -> list[DetectorResult]:
    detector.reset()
    return [detector.score(f, t0 + i / FPS) for i, f in enumerate(frames)]


@pytest.fixture(scope="module")
def fitted_state():
    detector = PredictionDetector(**TINY)
    detector.fit(normal_footage(), fps=FPS)
    assert detector.trained and detector.info["samples"] > 300 and detector.info["held_out"] > 0
    return json.loads(json.dumps(detector.state_dict()))


def fitted(state, **params) -> PredictionDetector:
    detector = PredictionDetector(**{**TINY, **params})
    detector.load_state_dict(state)
    return detector


# ------------------------------------------------------------------------------------------------
# registry, untrained behaviour, parameters
# ------------------------------------------------------------------------------------------------
def test_registered_and_built_by_make_detector_with_a_shared_runner():
    with ResourcePool() as pool:
        a = make_detector({"detector": "predict", "detector_params": dict(TINY)}, pool=pool)
        b = make_detector({"detector": "predict", "detector_params": dict(TINY)}, pool=pool)
        assert isinstance(a, PredictionDetector) and isinstance(a, Detector) and a.name == "predict"
        assert a.needs_pool and a.params["threshold"] == 0.5
        assert isinstance(a.runner, PredictRunner) and a.runner is b.runner  # one runner per worker
        assert a.runner.clients == 2
        assert [k[0] for k in pool.loaded()] == ["predict-runner"]
    with pytest.raises(ValueError, match="unknown PredictionDetector parameter"):
        PredictionDetector(hidden=3)
    with pytest.raises(ValueError, match="input_width"):
        PredictionDetector(input_width=8)


def test_untrained_scores_zero_and_does_not_crash():
    detector = PredictionDetector(**TINY)
    for i, frame in enumerate(scene(5, 1)):
        result = detector.score(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if i % 2 else frame, i / FPS)
        assert result.score == 0.0 and result.details == {"untrained": True} and result.regions == []
    state = json.loads(json.dumps(detector.state_dict()))
    assert state == {"version": STATE_VERSION, "name": "predict", "trained": False}
    detector.load_state_dict(state)
    assert not detector.trained
    with pytest.raises(ValueError, match="fit it before feedback"):
        detector.feedback(scene(10, 1), fps=FPS)
    with pytest.raises(ValueError, match="not enough footage"):
        detector.fit([scene(1, 1)[0]], fps=FPS)


# ------------------------------------------------------------------------------------------------
# learning and scoring
# ------------------------------------------------------------------------------------------------
def test_anomalies_score_clearly_higher_than_normal_motion(fitted_state):
    detector = fitted(fitted_state)
    normal = run(detector, scene(100, 7))  # unseen normal clip
    assert normal[0].details["reason"] == "no previous frame" and normal[0].score == 0.0
    normal_scores = np.array([r.score for r in normal[1:]])
    fast = run(detector, scene(100, 7, fast=(40, 60)))
    top = run(detector, scene(100, 7, top=(40, 70)))
    fast_peak = max(r.score for r in fast[40:62])
    top_peak = max(r.score for r in top[40:72])
    normal_high = float(np.quantile(normal_scores, 0.95))
    assert normal_high < 0.5 and normal_scores.mean() < 0.2
    assert fast_peak > 0.5 and top_peak > 0.5
    assert fast_peak > normal_high + 0.3 and top_peak > normal_high + 0.3
    # where: the region and the top cell are on the fast walker's lane (y 30..39 of 64)
    peak = max(fast[40:62], key=lambda r: r.score)
    assert peak.regions and all(0 <= v for box in peak.regions for v in box)
    x, y, w, h = peak.regions[0]
    assert y < 39 and y + h > 30
    cell = peak.details["top_cells"][0]
    assert cell["speed"] > cell["expected_speed"] and cell["z"] > peak.details["z_threshold"]
    # the frame history: reset (a cut) and a long gap both restart the motion chain
    detector.reset()
    assert detector.score(scene(1, 7)[0], 0.0).details["warmup"]
    assert detector.score(scene(2, 7)[1], 50.0).details["reason"] == "no previous frame"


def test_fit_continues_from_a_loaded_state_and_restores_torch_threads(fitted_state):
    import torch

    before = torch.get_num_threads()
    detector = fitted(fitted_state, max_epochs=2)
    detector.fit(scene(60, 9), fps=FPS)  # a clip as one item: continues from the weights
    assert detector.trained and detector.info["frames"] == 60
    assert torch.get_num_threads() == before
    fresh = fitted(fitted_state, max_epochs=1, input_width=32)
    fresh.fit(normal_footage(), fps=FPS, from_scratch=True)
    assert fresh.input_size[0] == 32


# ------------------------------------------------------------------------------------------------
# persistence
# ------------------------------------------------------------------------------------------------
def test_state_round_trips_through_json_with_equal_scores(fitted_state):
    frames = scene(60, 8, fast=(20, 35))
    a = fitted(fitted_state)
    text = json.dumps(a.state_dict())
    b = fitted(json.loads(text))
    assert json.loads(text)["version"] == STATE_VERSION and json.loads(text)["grid"] == list(a.grid)
    sa = [r.score for r in run(a, frames)]
    sb = [r.score for r in run(b, frames)]
    assert sa == pytest.approx(sb, abs=1e-6) and max(sa) > 0.5


@pytest.mark.parametrize("change,message", [
    (lambda s: s.update(version=99), "version"),
    (lambda s: s.update(name="motion"), "'motion' detector"),
    (lambda s: s.pop("weights"), "missing 'weights'"),
    (lambda s: s.update(weights="not base64!"), "base64"),
    (lambda s: s.update(weights="AAAA"), "do not load"),
    (lambda s: s.update(channels=5), "do not load"),
    (lambda s: s.update(grid=[1, 1]), "grid"),
    (lambda s: s["calibration"].update(mean=[[0.0]]), "shapes"),
    (lambda s: s["calibration"].update(z_threshold=-1), "non-finite"),
    (lambda s: s["calibration"].pop("scale"), "malformed"),
    (lambda s: s.update(input_size=[50, "x"]), "integers"),
])
def test_bad_state_raises_a_value_error_naming_the_problem(fitted_state, change, message):
    state = json.loads(json.dumps(fitted_state))
    change(state)
    detector = fitted(fitted_state)
    before = detector.state_dict()
    with pytest.raises(ValueError, match=message):
        detector.load_state_dict(state)
    assert detector.state_dict()["calibration"] == before["calibration"]  # unchanged
    assert detector.trained
    with pytest.raises(ValueError, match="JSON object"):
        detector.load_state_dict([1, 2])


# ------------------------------------------------------------------------------------------------
# batching across cameras
# ------------------------------------------------------------------------------------------------
def test_batched_scores_equal_one_at_a_time_and_a_batch_is_formed(fitted_state):
    import torch

    frames = scene(30, 11, fast=(10, 20))
    params = {**TINY, "max_wait": 0.05}
    with ResourcePool() as pool:
        cameras = [make_detector({"detector": "predict", "detector_params": params}, pool=pool) for _ in range(3)]
        for k, detector in enumerate(cameras):  # each camera its own weights
            detector.load_state_dict(fitted_state)
            with torch.no_grad():
                for p in detector._model.parameters():
                    p.mul_(1.0 + 0.05 * k)
        runner = cameras[0].runner
        assert all(d.runner is runner for d in cameras) and runner.clients == 3

        runner.batching = False  # one at a time, in the caller's thread
        alone = []
        for detector in cameras:
            out = [runner.predict(detector._model, detector._input(detector._prepare(f)[0])) for f in frames]
            alone.append((out, [r.score for r in run(detector, frames)]))
        assert runner.batcher.stats()["calls"] == 0
        runner.batching = True  # every call through the batcher

        barrier = threading.Barrier(len(cameras))
        together: list = [None] * len(cameras)

        def camera(k):
            detector = cameras[k]
            detector.reset()
            out = []
            for i, f in enumerate(frames):
                barrier.wait()
                out.append(detector.score(f, i / FPS).score)
            together[k] = out

        threads = [threading.Thread(target=camera, args=(k,)) for k in range(len(cameras))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert runner.largest_group >= 2  # several cameras in one forward pass
        assert runner.batcher.stats()["largest_batch"] >= 2
        for k in range(len(cameras)):
            assert together[k] == pytest.approx(alone[k][1], abs=1e-5)
        assert alone[0][1] != pytest.approx(alone[2][1], abs=1e-3)  # really different weights

        # the runner itself: a stacked (vmapped) pass equals separate passes
        x = [cameras[k]._input(cameras[k]._prepare(frames[5])[0]) for k in range(3)]
        stacked = runner._run_batch([(cameras[k]._model, x[k]) for k in range(3)])
        for k in range(3):
            np.testing.assert_allclose(stacked[k], alone[k][0][5], atol=1e-5)


# ------------------------------------------------------------------------------------------------
# operator feedback
# ------------------------------------------------------------------------------------------------
def test_feedback_stops_the_fed_situation_firing_and_keeps_other_anomalies(fitted_state):
    detector = fitted(fitted_state)
    fast = scene(80, 12, fast=(30, 50))
    before = max(r.score for r in run(detector, fast)[30:52])
    assert before > 0.5
    detector.feedback(fast[25:55], fps=FPS)  # the operator: "this was normal"
    after = max(r.score for r in run(detector, fast)[30:52])
    assert after < 0.5 and after < before
    assert detector.info["feedback_rounds"] == 1
    top = run(detector, scene(100, 7, top=(40, 70)))  # another anomaly, elsewhere: still caught
    assert max(r.score for r in top[40:72]) > 0.5
    restored = fitted(json.loads(json.dumps(detector.state_dict())))  # feedback persists
    assert max(r.score for r in run(restored, fast)[30:52]) == pytest.approx(after, abs=1e-6)


# ------------------------------------------------------------------------------------------------
# vad_eval end to end
# ------------------------------------------------------------------------------------------------
def _write_clip(path, frames):
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    writer.release()


@pytest.mark.django_db
def test_vad_eval_runs_the_predict_detector_on_a_ucsd_layout_dataset(tmp_path, capsys):
    from django.core.management import call_command

    for k, seed in enumerate((1, 2, 3), start=1):
        _write_clip(tmp_path / "videos" / "training" / f"Train{k:03d}.mp4", scene(120, seed))
    labels = []
    for k, (kind, seed) in enumerate((("fast", 21), ("top", 22)), start=1):
        span = (40, 70)
        frames = scene(100, seed, **{kind: span})
        _write_clip(tmp_path / "videos" / "testing" / f"Test{k:03d}.mp4", frames)
        lab = [1 if span[0] <= i < span[1] else 0 for i in range(100)]
        (tmp_path / "labels").mkdir(exist_ok=True)
        (tmp_path / "labels" / f"Test{k:03d}.txt").write_text("\n".join(map(str, lab)) + "\n")
        labels.append(lab)
    call_command("vad_eval", str(tmp_path), "--detector", "predict", "--params", json.dumps(TINY))
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[1].startswith("Test001") and lines[2].startswith("Test002")
    summary = json.loads(lines[-1])
    assert summary["detector"] == "predict" and summary["frames"] == 200
    assert summary["auc_causal"] > 0.8 and summary["auc_per_clip"] > 0.8
    assert summary["train_seconds"] > 0 and summary["ms_per_frame"] > 0
