"""The zero-shot semantic detector and its fusion with motion, on a tiny random CLIP.

The tiny model (tests/inference/tiny_models.build_tiny_clip) is saved with save_pretrained and
loaded through the real code (CLIPModel, CLIPTokenizer, the pillow image processor). Its
weights are random, so the tests check the pipeline, the calibration arithmetic, sharing,
batching and rate limiting, never that it recognises anything.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import threading

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import cv2
import numpy as np
import pytest
from django.core.management import CommandError, call_command

from inference.detectors import MotionDetector
from inference.e2e import analysis_images, detector_input
from inference.pool import ResourcePool
from inference.registry import make_detector
from inference.semantic import ClipScorer, FusedDetector, SemanticDetector, calibrated_score

from .tiny_models import build_tiny_clip, build_tiny_vlm

WAIT = 10  # seconds; only a safety net against hangs


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    return str(build_tiny_clip(tmp_path_factory.mktemp("tiny_clip")))


@pytest.fixture
def pool():
    with ResourcePool() as p:
        yield p


def frames(n=12, size=(96, 64), seed=0):
    """Colour BGR frames: a bright square moving over a noisy background."""
    rng = np.random.default_rng(seed)
    w, h = size
    out = []
    for i in range(n):
        img = rng.integers(40, 80, (h, w, 3), dtype=np.uint8)
        x = 4 + (3 * i) % (w - 20)
        img[20:36, x:x + 14] = (30, 90, 220)
        out.append(img)
    return out


# ----------------------------------------------------------------------------- loading


def test_loads_the_tiny_clip_and_scores_colour_frames(clip_path, pool):
    det = SemanticDetector(pool=pool, model_path=clip_path, device="cpu")
    assert det.wants_color and det.needs_pool and det.name == "semantic"
    assert det.scorer.device == "cpu"
    assert det.text_features.shape == (len(det.prompts), 16)
    assert np.allclose(np.linalg.norm(det.text_features, axis=1), 1.0, atol=1e-5)
    image = frames(1)[0]
    result = det.score(image, 0.0)
    assert 0.0 < result.score < 1.0
    details = result.details
    assert details["fresh"] is True and details["age"] == 0.0
    assert len(details["top"]) == 3
    assert {t["prompt"] for t in details["top"]} <= set(det.prompts)
    probs = [t["p"] for t in details["top"]]
    assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)
    for top in details["top"]:
        assert top["abnormal"] == (top["prompt"] in SemanticDetector.DEFAULT_ABNORMAL)
    # the score is the calibrated abnormal mass: recompute it from the logits
    logits = det.logits(image)
    probs_all = np.exp(logits - logits.max())
    probs_all /= probs_all.sum()
    mass = float(probs_all[: det.n_abnormal].sum())
    assert details["abnormal_mass"] == pytest.approx(mass, abs=1e-4)
    n_a, n_n = det.n_abnormal, len(det.prompts) - det.n_abnormal
    expected = 1 / (1 + math.exp(-(math.log(mass / (1 - mass)) - math.log(n_a / n_n))))
    assert result.score == pytest.approx(expected, abs=1e-5)
    assert details["calibrated"] == pytest.approx(expected, abs=1e-4)
    # whole frame as the region when it fires, nothing otherwise
    assert result.regions == ([(0, 0, 96, 64)] if result.score >= 0.5 else [])
    # gray frames are accepted too (replicated to three channels)
    assert 0.0 < det.score(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), 5.0).score < 1.0


def test_calibration_maps_an_indifferent_image_to_one_half():
    # equal logits: the abnormal mass is the prompt-count prior (6 of 8), which maps to 0.5
    assert calibrated_score(np.zeros(8), 6) == pytest.approx(0.5)
    assert calibrated_score(np.zeros(3), 1) == pytest.approx(0.5)
    logits = np.array([30.0, 10.0, 10.0, 12.0, 12.0])  # one abnormal prompt clearly wins
    assert calibrated_score(logits, 3) > 0.9
    assert calibrated_score(logits[::-1].copy(), 3) < 0.5
    # bias asks for a clearer margin: the same image scores lower
    assert calibrated_score(logits, 3, bias=5.0) < calibrated_score(logits, 3)
    # equals sigmoid(logit(mass) - log(n_abnormal / n_normal))
    p = np.exp(logits - logits.max())
    p /= p.sum()
    mass = p[:3].sum()
    expected = 1 / (1 + math.exp(-(math.log(mass / (1 - mass)) - math.log(3 / 2))))
    assert calibrated_score(logits, 3) == pytest.approx(expected)


@pytest.mark.parametrize("bad,message", [
    (None, "'model_path' is required"),
    ("{tmp}/missing", "does not exist"),
    ("{tmp}", "no config.json"),
    ("{vlm}", "not a CLIP model"),
])
def test_missing_or_bad_model_path_is_a_clear_value_error(bad, message, tmp_path, pool):
    vlm = build_tiny_vlm(tmp_path / "vlm") if bad == "{vlm}" else None
    path = None if bad is None else bad.replace("{tmp}", str(tmp_path / "empty")).replace("{vlm}", str(vlm))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=message):
        SemanticDetector(pool=pool, model_path=path)
    assert pool.loaded() == {}  # nothing half-loaded is kept


def test_a_broken_model_folder_names_the_problem(tmp_path, clip_path, pool):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(open(os.path.join(clip_path, "config.json")).read())
    with pytest.raises(ValueError, match="cannot load the CLIP"):
        SemanticDetector(pool=pool, model_path=str(broken))


@pytest.mark.parametrize("params,message", [
    ({"abnormal": []}, "at least one prompt"),
    ({"normal": ["people walking", ""]}, "non-empty string"),
    ({"abnormal": 3}, "list of text prompts"),
    ({"template": "no placeholder"}, "must contain"),
    ({"interval": -1}, "must not be negative"),
    ({"prompts": ["x"]}, "unknown SemanticDetector parameter"),
])
def test_bad_parameters_are_value_errors(params, message, clip_path, pool):
    with pytest.raises(ValueError, match=message):
        SemanticDetector(pool=pool, model_path=clip_path, **params)


# ----------------------------------------------------------------------------- sharing and batching


def test_two_cameras_share_one_loaded_model(clip_path, pool):
    config = {"detector": "semantic", "detector_params": {"model_path": clip_path, "device": "cpu"}}
    a = make_detector(config, pool)
    b = make_detector({**config, "detector_params": {**config["detector_params"], "abnormal": ["fire"]}}, pool)
    assert isinstance(a, SemanticDetector) and isinstance(b, SemanticDetector)
    assert a.scorer is b.scorer
    assert list(pool.loaded().values()) == [1]  # one CLIP, loaded once
    (kind, _, cfg), = pool.loaded()
    assert kind == "clip" and json.loads(cfg) == {"model_path": os.path.abspath(clip_path), "device": "cpu"}
    assert a.scorer.stats()["text_sets"] == 2  # each camera's own prompts, embedded once


def test_concurrent_cameras_are_embedded_in_one_batch(clip_path, pool):
    n = 6
    detectors = [SemanticDetector(pool=pool, model_path=clip_path, device="cpu") for _ in range(n)]
    scorer = detectors[0].scorer
    images = frames(n, seed=3)
    sequential = [detectors[0].logits(img) for img in images]
    calls_before = scorer.image_calls

    # hold the first forward pass until every camera has submitted, so the rest pile up
    submitted, all_in, first = [0], threading.Event(), [True]
    lock = threading.Lock()
    original_submit, original_fn = scorer.batcher.submit, scorer.batcher.fn

    def submit(item):
        future = original_submit(item)
        with lock:
            submitted[0] += 1
            if submitted[0] >= n:
                all_in.set()
        return future

    def fn(items):
        if first[0]:
            first[0] = False
            assert all_in.wait(WAIT)
        return original_fn(items)

    scorer.batcher.submit, scorer.batcher.fn = submit, fn
    results, errors = [None] * n, []
    barrier = threading.Barrier(n)

    def camera(i):
        try:
            barrier.wait(WAIT)
            results[i] = detectors[i].score(images[i], 0.0)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=camera, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 3)
    scorer.batcher.submit, scorer.batcher.fn = original_submit, original_fn
    assert not errors and not any(t.is_alive() for t in threads)
    assert scorer.batcher.largest_batch > 1
    assert scorer.image_calls - calls_before < n  # fewer forward passes than cameras
    # batching changes nothing: each camera gets the score of its own frame
    for det, img, logits, result in zip(detectors, images, sequential, results):
        assert result.score == pytest.approx(calibrated_score(logits.astype(np.float64), det.n_abnormal), abs=1e-4)


def test_pool_close_stops_the_batcher(clip_path):
    pool = ResourcePool()
    det = SemanticDetector(pool=pool, model_path=clip_path, device="cpu")
    pool.close()
    assert det.scorer.batcher.closed


# ----------------------------------------------------------------------------- time


def test_the_model_runs_at_most_once_per_interval_of_frame_time(clip_path, pool):
    det = SemanticDetector(pool=pool, model_path=clip_path, device="cpu", interval=1.0, smoothing=0)
    images = frames(25)
    results = [det.score(img, i * 0.1) for i, img in enumerate(images)]  # 10 fps, 2.4 s
    fresh = [i for i, r in enumerate(results) if r.details["fresh"]]
    assert fresh == [0, 10, 20]
    assert det.model_runs == 3
    for i, r in enumerate(results):  # frames in between reuse the last score
        assert r.score == results[(i // 10) * 10].score
        assert r.details["age"] == pytest.approx((i % 10) * 0.1, abs=1e-6)
    # time going back (a new clip) restarts at once; so does reset()
    assert det.score(images[0], 0.05).details["fresh"]
    det.reset()
    assert det.score(images[1], 0.1).details["fresh"]
    # interval 0: every frame
    every = SemanticDetector(pool=pool, model_path=clip_path, device="cpu", interval=0)
    assert all(every.score(img, i * 0.1).details["fresh"] for i, img in enumerate(images[:4]))


def test_smoothing_is_causal_and_follows_frame_time(clip_path, pool):
    images = frames(8, seed=5)
    raw_det = SemanticDetector(pool=pool, model_path=clip_path, device="cpu", interval=0, smoothing=0)
    raw = [raw_det.score(img, float(i)).score for i, img in enumerate(images)]
    assert len(set(round(r, 6) for r in raw)) > 1  # different frames, different scores
    det = SemanticDetector(pool=pool, model_path=clip_path, device="cpu", interval=0, smoothing=2.0)
    smoothed = [det.score(img, float(i)).score for i, img in enumerate(images)]
    expected, s = [], None
    for r in raw:
        s = r if s is None else s + (1 - math.exp(-1 / 2.0)) * (r - s)
        expected.append(s)
    assert smoothed == pytest.approx(expected, abs=1e-6)


def test_per_camera_prompts_change_the_result(clip_path, pool):
    image = frames(1, seed=9)[0]
    default = SemanticDetector(pool=pool, model_path=clip_path, device="cpu")
    custom = SemanticDetector(pool=pool, model_path=clip_path, device="cpu",
                              abnormal=["a person climbing the fence", "a dog on the lawn"],
                              normal=["an empty parking lot"], template="{}")
    a, b = default.score(image, 0.0), custom.score(image, 0.0)
    assert custom.prompts == ["a person climbing the fence", "a dog on the lawn", "an empty parking lot"]
    assert {t["prompt"] for t in b.details["top"]} <= set(custom.prompts)
    assert a.score != pytest.approx(b.score, abs=1e-6)
    # swapping what counts as abnormal and normal turns the score around
    swapped = SemanticDetector(pool=pool, model_path=clip_path, device="cpu", template="{}",
                               abnormal=["an empty parking lot"],
                               normal=["a person climbing the fence", "a dog on the lawn"])
    assert swapped.score(image, 0.0).score == pytest.approx(1.0 - b.score, abs=1e-5)


# ----------------------------------------------------------------------------- fusion


def _fused(pool, clip_path, **params):
    return FusedDetector(pool=pool, motion={"warmup_frames": 2, "confidence_frames": 1},
                         semantic={"model_path": clip_path, "device": "cpu", "interval": 0.3}, **params)


@pytest.mark.parametrize("mode,weights", [("max", None), ("weighted", {"motion": 3.0, "semantic": 1.0})])
def test_fused_combines_the_parts_as_configured(mode, weights, clip_path, pool):
    fused = _fused(pool, clip_path, mode=mode, **({"weights": weights} if weights else {}))
    assert fused.wants_color and fused.needs_pool
    motion = MotionDetector(warmup_frames=2, confidence_frames=1)
    semantic = SemanticDetector(pool=pool, model_path=clip_path, device="cpu", interval=0.3)
    assert semantic.scorer is fused.semantic.scorer
    for i, img in enumerate(frames(20, seed=1)):
        t = i * 0.1
        r = fused.score(img, t)
        m = motion.score(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), t).score  # motion gets grayscale
        s = semantic.score(img, t).score  # semantic gets colour
        expected = max(m, s) if mode == "max" else (3.0 * m + s) / 4.0
        assert r.score == pytest.approx(expected, abs=1e-9)
        assert r.details["mode"] == mode
        assert r.details["motion"]["score"] == pytest.approx(m, abs=1e-4)
        assert r.details["semantic"]["score"] == pytest.approx(s, abs=1e-4)
        assert r.details["fired"] == [n for n, v in (("motion", m), ("semantic", s)) if v >= 0.5]
        wm, ws = (1, 1) if mode == "max" else (3, 1)
        assert r.details["driver"] == ("motion" if wm * m >= ws * s else "semantic")


def test_fused_regions_say_which_part_fired(clip_path, pool):
    image = frames(1)[0]
    # a negative bias makes the semantic part fire; the motion part has no previous frame
    fused = FusedDetector(pool=pool, semantic={"model_path": clip_path, "device": "cpu", "bias": -20})
    r = fused.score(image, 0.0)
    assert r.details["fired"] == ["semantic"] and r.details["driver"] == "semantic"
    assert r.regions == [(0, 0, 96, 64)]
    quiet = FusedDetector(pool=pool, semantic={"model_path": clip_path, "device": "cpu", "bias": 20})
    r = quiet.score(image, 0.0)
    assert r.details["fired"] == [] and r.regions == [] and r.score < 0.5


def test_fused_fit_and_state_are_the_motion_parts(clip_path, pool):
    clip = frames(30, seed=2)
    fused = _fused(pool, clip_path)
    assert fused.fit([None] + clip, fps=10) is fused  # colour frames, converted inside
    reference = MotionDetector(warmup_frames=2, confidence_frames=1)
    reference.fit([None] + [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in clip], fps=10)
    state = fused.state_dict()
    assert state["frames_learned"] == reference.frames_learned > 0
    assert state == reference.state_dict()
    # a saved state loads back, and a motion state fits a fused camera (same format)
    other = _fused(pool, clip_path)
    other.load_state_dict(json.loads(json.dumps(state)))
    assert other.state_dict() == state
    # reset forgets both chains
    fused.score(clip[0], 0.0)
    fused.reset()
    assert fused.motion._prev is None and fused.semantic._last_run is None


def test_fused_feedback_is_the_motion_parts_when_it_has_one(clip_path, pool):
    fused = _fused(pool, clip_path)
    clip = frames(30, seed=6)
    fused.fit([None] + clip, fps=5)
    if not hasattr(MotionDetector, "feedback"):
        assert not hasattr(fused, "feedback")
    else:  # the real thing: colour frames in, the motion part learns exactly what it would alone
        reference = MotionDetector(warmup_frames=2, confidence_frames=1)
        gray = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in clip]
        reference.fit([None] + gray, fps=5)
        assert fused.feedback(iter(clip), fps=5) == reference.feedback(iter(gray), fps=5)
        assert fused.state_dict() == reference.state_dict()
    # the learning runner passes fps= only to methods whose signature names it
    assert "fps" in inspect.signature(fused.fit).parameters
    seen = []
    fused.motion.feedback = lambda frames, fps=10.0: seen.append((list(frames), fps)) or "learned"
    assert "fps" in inspect.signature(fused.feedback).parameters
    assert fused.feedback(clip[:3], fps=5) == "learned"
    (got, fps), = seen
    assert fps == 5 and len(got) == 3 and all(f.ndim == 2 for f in got)  # grayscale reached the motion part


def test_fused_bad_parameters_are_value_errors(clip_path, pool):
    with pytest.raises(ValueError, match="mode"):
        _fused(pool, clip_path, mode="min")
    with pytest.raises(ValueError, match="weights"):
        _fused(pool, clip_path, weights={"motion": 0, "semantic": 0})
    with pytest.raises(ValueError, match="unknown FusedDetector"):
        _fused(pool, clip_path, model_path=clip_path)
    with pytest.raises(ValueError, match="model_path"):
        FusedDetector(pool=pool)


def test_make_detector_builds_both_from_a_camera_config(clip_path):
    semantic = make_detector({"detector": "semantic", "threshold": 0.6,
                              "detector_params": {"model_path": clip_path, "device": "cpu", "interval": 2}})
    assert isinstance(semantic, SemanticDetector)
    assert semantic.threshold == 0.6 and semantic.interval == 2.0
    fused = make_detector({"detector": "fused", "threshold": 0.6, "detector_params": {
        "mode": "weighted", "motion": {"cell_size": 12}, "semantic": {"model_path": clip_path, "device": "cpu"}}})
    assert isinstance(fused, FusedDetector) and fused.mode == "weighted"
    assert fused.motion.cell_size == 12 and fused.motion.threshold == 0.6 and fused.semantic.threshold == 0.6
    # the colour analysis frame reaches them, as in the live loop and vad_eval
    small, gray = analysis_images(frames(1)[0], 360)
    assert detector_input(fused, small, gray) is small and detector_input(semantic, small, gray) is small
    assert 0 <= fused.score(small, 0.0).score <= 1


def test_scorer_embeds_a_batch_like_single_images(clip_path):
    scorer = ClipScorer({"model_path": clip_path, "device": "cpu"})
    try:
        images = frames(4, seed=4)
        batch = scorer.embed_images(images)
        singles = np.stack([scorer.embed_image(img) for img in images])
        assert batch.shape == (4, 16)
        assert np.allclose(batch, singles, atol=1e-5)
        with pytest.raises(ValueError, match="not an image"):
            scorer.preprocess(np.zeros((2, 2, 7), np.uint8))
    finally:
        scorer.close()


# ----------------------------------------------------------------------------- vad_eval


def _write_clip(path, n, seed, anomalous=()):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (96, 64))
    assert writer.isOpened()
    for i, img in enumerate(frames(n, seed=seed)):
        if i in anomalous:
            img[:, :] = (0, 0, 255)  # the frame turns red
        writer.write(img)
    writer.release()


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """A UCSD-layout dataset: one normal training clip, one labelled test clip."""
    root = tmp_path_factory.mktemp("tiny_vad")
    (root / "videos" / "training").mkdir(parents=True)
    (root / "videos" / "testing").mkdir(parents=True)
    (root / "labels").mkdir()
    _write_clip(root / "videos" / "training" / "Train001.mp4", 20, seed=1)
    anomalous = set(range(15, 30))
    _write_clip(root / "videos" / "testing" / "Test001.mp4", 30, seed=2, anomalous=anomalous)
    (root / "labels" / "Test001.txt").write_text("\n".join("1" if i in anomalous else "0" for i in range(30)))
    return root


@pytest.mark.django_db
@pytest.mark.parametrize("detector,params", [
    ("semantic", {"model_path": "{clip}", "device": "cpu"}),
    ("fused", {"semantic": {"model_path": "{clip}", "device": "cpu"}, "motion": {"warmup_frames": 5}}),
])
def test_vad_eval_runs_the_semantic_detectors(detector, params, clip_path, tiny_dataset, capsys):
    params = json.loads(json.dumps(params).replace("{clip}", clip_path))
    call_command("vad_eval", str(tiny_dataset), "--detector", detector, "--params", json.dumps(params))
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[1].startswith("Test001")
    summary = json.loads(lines[-1])
    assert summary["detector"] == detector and summary["frames"] == 30
    assert 0.0 <= summary["auc_causal"] <= 1.0 and summary["ms_per_frame"] > 0


@pytest.mark.django_db
def test_vad_eval_bad_model_path_is_a_clear_error(tiny_dataset, tmp_path):
    with pytest.raises(CommandError, match="Bad --params for 'semantic'.*does not exist"):
        call_command("vad_eval", str(tiny_dataset), "--detector", "semantic",
                     "--params", json.dumps({"model_path": str(tmp_path / "nothing")}))


def test_the_live_loop_and_vad_eval_give_the_same_semantic_scores(clip_path, tiny_dataset, pool):
    from inference.base import Decision
    from inference.e2e import Callbacks, E2ESystem
    from inference.evaluation import evaluate
    from inference.sources import open_source

    class Scores(Callbacks):
        def __init__(self):
            self.values = []

        def on_score(self, camera_id, timestamp, result):
            self.values.append(result.score)

    class Agent:
        def decide(self, episode):
            return Decision("low", ["record"], ["test"], "test")

    params = {"model_path": clip_path, "device": "cpu", "interval": 0.5}
    clip = tiny_dataset / "videos" / "testing" / "Test001.mp4"
    live = Scores()
    config = {"id": 1, "threshold": 0.5, "analysis_fps": 10, "analysis_width": 360, "event_close_seconds": 3}
    system = E2ESystem(config, source=open_source(str(clip)), detector=SemanticDetector(pool=pool, **params),
                       agent=Agent(), callbacks=live, realtime=False)
    system.run(threading.Event())
    offline = evaluate(tiny_dataset, SemanticDetector(pool=pool, **params), name="semantic", threshold=0.5)
    assert len(live.values) == len(offline.clips[0].scores) == 30
    assert live.values == pytest.approx(list(offline.clips[0].scores), abs=1e-6)
