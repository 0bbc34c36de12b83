"""MotionDetector: warm-up, persistence, learning, and detection on the demo scene and real footage.

Plain pytest functions: no database, no Django. Tests that need the shared footage skip with
a reason when ../shared/datasets is absent (a fresh clone). No timing assertions: speed is
measured by the benchmarks, not here.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from inference.base import Detector, DetectorResult
from inference.detectors import COMPONENTS, MotionDetector
from inference.demo import DemoSource

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
VTEST = DATASETS / "pets-walkway" / "vtest.avi"

# The demo scene at a typical analysis size (360 px wide), rendered directly at that size.
W, H = 360, 202
FPS = 10.0


def demo_frames(seed: int, n: int, anomaly_every: float = 0.0):
    """(gray frames, timestamps, per-frame anomaly kind or None, intervals) of a demo scene."""
    source = DemoSource(f"demo://?seed={seed}&anomaly_every={anomaly_every:g}&width={W}&height={H}&fps={FPS:g}")
    source.open()
    grays, stamps, kinds = [], [], []
    for _ in range(n):
        frame = source.read()
        grays.append(cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY))
        stamps.append(frame.timestamp)
        kinds.append(source.current_anomaly)
    return grays, stamps, kinds, source.anomaly_intervals(n / FPS)


@pytest.fixture(scope="module")
def fitted_state():
    """A detector fitted on 150 s of anomaly-free demo footage (another seed than the test scene)."""
    grays, _, _, _ = demo_frames(seed=101, n=1500)
    detector = MotionDetector()
    detector.fit(grays, fps=FPS)
    return detector.state_dict()


@pytest.fixture(scope="module")
def demo_run(fitted_state):
    """Scores of a 180 s demo scene with anomalies every ~20 s, from the fitted model."""
    grays, stamps, kinds, intervals = demo_frames(seed=1, n=1800, anomaly_every=20)
    detector = MotionDetector()
    detector.load_state_dict(fitted_state)
    results = [detector.score(g, t) for g, t in zip(grays, stamps)]
    return results, np.array(stamps), kinds, intervals


def moving_square_frames(n: int, start: int = 0, speed: int = 3):
    rng = np.random.default_rng(0)
    base = rng.integers(90, 110, (H, W), dtype=np.uint8)
    frames = []
    for i in range(start, start + n):
        img = base.copy()
        x = 20 + (i * speed) % (W - 60)
        cv2.rectangle(img, (x, 80), (x + 14, 120), 30, -1)
        frames.append(img)
    return frames


# --------------------------------------------------------------------------------------------
# interface, warm-up, parameters
# --------------------------------------------------------------------------------------------


def test_is_a_detector_named_motion_with_defaults():
    detector = MotionDetector()
    assert isinstance(detector, Detector) and detector.name == "motion"
    assert detector.params["warmup_frames"] == 50
    assert detector.params["learn_below"] == pytest.approx(0.8 * detector.params["threshold"])
    custom = MotionDetector(warmup_frames=5, threshold=0.6, weights={"dwell": 0.0})
    assert custom.params["learn_below"] == pytest.approx(0.48)
    assert custom.weights["dwell"] == 0.0 and custom.weights["speed"] == 1.0
    with pytest.raises(ValueError, match="unknown MotionDetector parameter"):
        MotionDetector(grid_size=3)
    with pytest.raises(ValueError, match="unknown weight"):
        MotionDetector(weights={"colour": 1.0})


def test_warmup_returns_zero_and_learns():
    detector = MotionDetector(warmup_frames=20)
    frames = moving_square_frames(40)
    results = [detector.score(f, i / FPS) for i, f in enumerate(frames)]
    assert all(isinstance(r, DetectorResult) for r in results)
    assert all(r.score == 0.0 for r in results[:21])  # the first frame has no motion yet, then 20
    assert all(r.details["warmup"] for r in results[:21])
    assert not results[21].details["warmup"]
    assert detector.frames_learned >= 20
    assert all(0.0 <= r.score <= 1.0 for r in results)


def test_accepts_bgr_and_other_sizes_and_restarts_on_gaps():
    detector = MotionDetector(warmup_frames=2)
    frames = moving_square_frames(10)
    for i, f in enumerate(frames[:5]):
        detector.score(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR), i / FPS)  # BGR is converted
    assert detector.shape == (H, W)
    bigger = cv2.resize(frames[5], (W * 2, H * 2))  # same aspect ratio: resized to the model
    result = detector.score(bigger, 0.5)
    assert detector.shape == (H, W) and 0.0 <= result.score <= 1.0
    gap = detector.score(frames[6], 100.0)  # a long gap restarts the motion chain
    assert gap.score == 0.0 and gap.details["reason"] == "no previous frame"
    back = detector.score(frames[7], 50.0)  # time going backwards too
    assert back.score == 0.0
    other = detector.score(np.zeros((100, 100), np.uint8), 50.1)  # another aspect: relearn
    assert detector.shape == (100, 100) and other.score == 0.0


# --------------------------------------------------------------------------------------------
# persistence and bulk learning
# --------------------------------------------------------------------------------------------


def test_state_dict_round_trips_through_json():
    grays, stamps, _, _ = demo_frames(seed=11, n=260)
    detector = MotionDetector(warmup_frames=10)
    detector.fit(grays[:200], fps=FPS)
    state = json.loads(json.dumps(detector.state_dict()))  # JSON-serialisable
    assert state["shape"] == [H, W] and state["name"] == "motion"
    assert state["frames_learned"] == pytest.approx(199)  # every frame after the first of the clip

    restored = MotionDetector(warmup_frames=10)
    restored.load_state_dict(state)
    detector.load_state_dict(state)  # the same rounding for both
    a = [detector.score(g, t).score for g, t in zip(grays[200:], stamps[200:])]
    b = [restored.score(g, t).score for g, t in zip(grays[200:], stamps[200:])]
    assert a == pytest.approx(b, abs=1e-9)
    assert max(a) > 0.0  # scoring, not warming up

    empty = MotionDetector().state_dict()
    assert json.loads(json.dumps(empty))["shape"] is None
    fresh = MotionDetector()
    fresh.load_state_dict(empty)
    assert fresh.score(grays[0], 0.0).score == 0.0


def test_load_state_dict_rejects_other_geometry_and_versions():
    grays, _, _, _ = demo_frames(seed=12, n=30)
    detector = MotionDetector(warmup_frames=5).fit(grays, fps=FPS)
    state = detector.state_dict()
    with pytest.raises(ValueError, match="geometry"):
        MotionDetector(cell_size=12).load_state_dict(state)
    with pytest.raises(ValueError, match="version"):
        MotionDetector().load_state_dict({**state, "version": 999})
    broken = json.loads(json.dumps(state))
    broken["model"]["p_act"] = [[0.0]]
    with pytest.raises(ValueError, match="p_act"):
        MotionDetector().load_state_dict(broken)


def test_fit_treats_clips_separately_and_learns_the_scene():
    grays, _, _, _ = demo_frames(seed=13, n=120)
    clips = [np.stack(grays[:60]), grays[60:]]  # a 3-D array and a list: two clips
    detector = MotionDetector().fit(clips, fps=FPS)
    assert detector.frames_learned == pytest.approx(118)  # no motion measured across the cut
    activity = np.array(detector.state_dict()["model"]["p_act"])
    # people walk on the walkway (middle rows), never in the sky / building rows at the top
    assert activity[3:6].mean() > 0.05
    assert activity[0].max() == 0.0


def test_online_learning_skips_anomalous_frames():
    detector = MotionDetector(warmup_frames=5)
    frames = moving_square_frames(200)
    results = [detector.score(f, i / FPS) for i, f in enumerate(frames)]
    learned_before = detector.frames_learned
    # a big bright blob racing across the scene: anomalous for this model
    fast = []
    for i in range(200, 215):
        img = frames[i % 200].copy()
        x = (i - 200) * 22
        cv2.rectangle(img, (x, 20), (x + 40, 180), 250, -1)
        fast.append(img)
    scores = [detector.score(f, i / FPS) for f, i in zip(fast, range(200, 215))]
    flagged = [r for r in scores if r.score >= detector.learn_below]
    assert flagged, "a fast, large, novel object must stand out"
    assert all(not r.details["learned"] for r in flagged)
    assert detector.frames_learned == learned_before + sum(r.details["learned"] for r in scores)
    assert max(r.score for r in results[50:]) < 0.5  # the square it learned is normal


# --------------------------------------------------------------------------------------------
# detection on the demo scene
# --------------------------------------------------------------------------------------------


def test_demo_anomalies_score_clearly_higher_than_normal_frames(demo_run):
    results, stamps, kinds, intervals = demo_run
    scores = np.array([r.score for r in results])
    anomalous = np.array([k is not None for k in kinds])
    assert anomalous.sum() > 100 and len(intervals) >= 6
    normal = scores[~anomalous]
    assert (normal < 0.5).mean() > 0.97  # ordinary walking stays below the threshold
    assert scores[anomalous].mean() > 0.25
    assert scores[anomalous].mean() > 5 * normal.mean()
    # every kind produces a clear spike above the threshold
    for kind in ("running", "fall", "forbidden_area"):
        peaks = [scores[(stamps >= s) & (stamps <= e)].max() for s, e, k in intervals if k == kind]
        assert peaks, kind
        assert max(peaks) > 0.6, (kind, peaks)
        assert np.mean([p > 0.5 for p in peaks]) >= 0.5, (kind, peaks)


def test_demo_detections_point_at_the_anomaly(demo_run):
    results, stamps, kinds, intervals = demo_run
    top_by_kind = {}
    for result, kind in zip(results, kinds):
        if kind and result.score > 0.5:
            assert result.regions, "an alarm names where it is"
            for x, y, w, h in result.regions:
                assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= W and y + h <= H
            assert set(result.details["components"]) == set(COMPONENTS)
            json.dumps({"regions": result.regions, "details": result.details})  # storable as is
            assert result.details["top_cells"][0]["score"] > 0
            top_by_kind.setdefault(kind, []).append(result.details["top_cells"][0]["top"])
    assert set(top_by_kind) == {"running", "fall", "forbidden_area"}
    # the components that explain each kind are the expected ones
    assert "speed" in top_by_kind["running"]
    assert "dwell" in top_by_kind["fall"]
    assert {"novelty", "area"} & set(top_by_kind["forbidden_area"])


def test_scores_barely_depend_on_the_analysis_fps(fitted_state):
    """Speeds are per second: a model learned at 10 fps still sees 5 fps walking as normal."""
    grays, stamps, _, _ = demo_frames(seed=21, n=600)
    for step in (1, 2):
        detector = MotionDetector()
        detector.load_state_dict(fitted_state)
        scores = np.array([detector.score(g, t).score for g, t in list(zip(grays, stamps))[::step]])
        assert (scores < 0.5).mean() > 0.97, step


# --------------------------------------------------------------------------------------------
# real footage
# --------------------------------------------------------------------------------------------


def test_real_walking_footage_stays_mostly_below_threshold():
    """pets-walkway/vtest.avi is ordinary walking: online learning from scratch, no fit."""
    if not VTEST.is_file():
        pytest.skip(f"needs the shared footage {VTEST} (../shared/datasets beside the project), absent here")
    capture = cv2.VideoCapture(str(VTEST))
    detector = MotionDetector()
    scores = []
    index = 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        gray = cv2.resize(gray, (360, 270), interpolation=cv2.INTER_AREA)
        scores.append(detector.score(gray, index / 10.0).score)
        index += 1
    capture.release()
    assert index > 700
    after_warmup = np.array(scores[detector.warmup_frames + 1:])
    assert (after_warmup >= 0.5).mean() < 0.05
    assert np.median(after_warmup) < 0.1
