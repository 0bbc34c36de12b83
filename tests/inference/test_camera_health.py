"""Camera health (inference/camera_health.py) on real footage: tampered clips are caught with the
right kind within a few seconds, untouched clips raise nothing.

The footage is ../shared/datasets (tests skip with the reason where it is absent); the tampered
streams are built by ``bench.health`` (the benchmark measures the same things at more length):
from a moment of a real clip on, every frame is covered, blurred, shifted, rotated, frozen,
darkened or flooded with white. No timing assertions other than frame time.
"""

import json
import re

import numpy as np
import pytest

from bench import health as hb
from inference.camera_health import CONDITIONS, HEALTH_DEFAULTS, STATE_VERSION, CameraHealth


def need(path):
    if not path.exists():
        pytest.skip(f"real footage {path} is not present (../shared/datasets is absent in this clone)")
    return path


@pytest.fixture(scope="module")
def walkway_state():
    need(hb.VTEST)
    return hb.fitted("pets-walkway").state_dict()


def walkway_monitor(state, **params):
    health = CameraHealth(**params)
    health.load_state_dict(json.loads(json.dumps(state)))  # through JSON, as it is stored
    return health


# -- parameters and state ---------------------------------------------------------------
def test_unknown_parameters_are_refused_by_name():
    with pytest.raises(ValueError, match="covred_share"):
        CameraHealth(covred_share=0.5)
    with pytest.raises(ValueError, match="grid"):
        CameraHealth(grid=[1])
    assert CameraHealth(confirm_seconds=1).params["confirm_seconds"] == 1.0
    assert set(CONDITIONS) == {"covered", "blurred", "moved", "frozen", "dark", "blinded"}


def test_state_round_trips_through_json_and_bad_states_are_named(walkway_state):
    assert walkway_state["version"] == STATE_VERSION and walkway_state["fitted"]
    a = walkway_monitor(walkway_state)
    assert a.state_dict() == json.loads(json.dumps(walkway_state))
    frames = list(hb.tampered(hb.clip_frames(hb.VTEST, start=25.0), "covered_grey", 30.0))[:150]
    b = walkway_monitor(walkway_state)
    first = [c.as_dict() for f in frames for c in a.update(*f)]
    second = [c.as_dict() for f in frames for c in b.update(*f)]
    assert first and first == second  # deterministic: same frames, same changes
    fresh = CameraHealth()
    for bad, message in [
        ({**walkway_state, "version": 99}, "version 99"),
        ({k: v for k, v in walkway_state.items() if k != "tex"}, "missing 'tex'"),
        ({**walkway_state, "std": [[1.0] * 3]}, "'std' has shape"),
        ({**walkway_state, "image_png": "not base64!"}, "image_png"),
        ({**walkway_state, "grid": [8, 6]}, "grid"),
        ({**walkway_state, "noise_floor": "low"}, "noise_floor"),
        ("nonsense", "must be a dict"),
    ]:
        with pytest.raises(ValueError, match=message):
            fresh.load_state_dict(bad)
        assert not fresh.fitted  # nothing changed
    unfitted = CameraHealth().state_dict()
    assert unfitted == {"version": STATE_VERSION, "fitted": False}


# -- tampered real footage -------------------------------------------------------------------
def _delays(changes, at, want):
    starts = [c for c in changes if c.started]
    assert {c.condition for c in starts} == {want}, [c.sentence for c in starts]
    assert len(starts) == 1
    return starts[0].ts - at, starts[0]


def _limit(kind):
    want = hb.TAMPERS[kind]
    confirm = {"blurred": HEALTH_DEFAULTS["blur_confirm_seconds"],
               "frozen": HEALTH_DEFAULTS["frozen_seconds"]}.get(want, HEALTH_DEFAULTS["confirm_seconds"])
    return confirm + 2.0  # a few seconds: the confirmation plus at most 2 s of measuring


@pytest.mark.parametrize("kind", list(hb.TAMPERS))
def test_each_tamper_of_the_walkway_is_reported_with_its_kind(walkway_state, kind):
    health = walkway_monitor(walkway_state)
    frames = hb.tampered(hb.clip_frames(hb.VTEST, start=hb.LEARN_SECONDS), kind, hb.TAMPER_AT)
    changes = hb.run_stream(health, frames)
    delay, start = _delays(changes, hb.TAMPER_AT, hb.TAMPERS[kind])
    assert 0 <= delay <= _limit(kind), (kind, delay)
    assert start.kind == hb.TAMPERS[kind] and start.sentence.startswith("Camera")
    assert all(isinstance(v, (int, float, type(None))) for v in start.measurements.values())
    assert hb.TAMPERS[kind] in health.active


@pytest.mark.parametrize("camera,folder", [("ucsd-ped1", hb.PED1), ("ucsd-ped2", hb.PED2)])
def test_each_tamper_of_a_ucsd_camera_is_reported_with_its_kind(camera, folder):
    clip = need(folder / "Train002.mp4")
    need(folder / "Train001.mp4")
    state = hb.fitted(camera).state_dict()  # learned on Train001, another clip of the same camera
    for kind in hb.TAMPERS:
        health = CameraHealth()
        health.load_state_dict(state)
        changes = hb.run_stream(health, hb.tampered(hb.clip_frames(clip), kind, hb.UCSD_TAMPER_AT))
        delay, _ = _delays(changes, hb.UCSD_TAMPER_AT, hb.TAMPERS[kind])
        assert 0 <= delay <= _limit(kind), (camera, kind, delay)


def test_a_cover_part_way_through_starts_and_ends(walkway_state):
    """Covered from 30 s to 45 s of the walkway: one start, one end, with how long it lasted."""
    health = walkway_monitor(walkway_state)
    changes = []
    for image, ts in hb.clip_frames(hb.VTEST, start=hb.LEARN_SECONDS):
        if 30.0 <= ts < 45.0:
            image = hb.tamper(image, "covered_black")
        changes += health.update(image, ts)
    assert [(c.condition, c.started) for c in changes] == [("covered", True), ("covered", False)]
    start, end = changes
    assert start.measurements["covered"] >= 0.6 and "% of the image lost its texture" in start.sentence
    assert 45.0 <= end.ts <= 45.0 + HEALTH_DEFAULTS["clear_seconds"] + 1.0
    assert abs(end.seconds - 15.0) <= 1.0 and "no longer covered (lasted" in end.sentence
    assert health.active == []


# -- untouched real footage -----------------------------------------------------------------
@pytest.mark.parametrize("camera,folder,clips", [("pets-walkway", None, 1), ("ucsd-ped1", hb.PED1, 34),
                                                 ("ucsd-ped2", hb.PED2, 16)])
def test_untouched_footage_raises_nothing(camera, folder, clips):
    """The whole walkway (reference from its first 20 s) and every UCSD training clip of each camera
    played as one stream (reference from Train001 of that camera): no health change at all."""
    need(hb.VTEST if folder is None else folder)
    assert len(hb.cameras()[camera][1]) == clips
    health = hb.fitted(camera)
    changes, seconds = hb.untouched(camera, health)
    assert changes == [], [c.sentence for c in changes]
    assert health.samples >= seconds / HEALTH_DEFAULTS["sample_seconds"] * 0.9


def test_a_monitor_without_state_learns_online_then_watches():
    """No reference: the first learn_seconds of frames teach it; nothing is reported meanwhile, then
    the untouched rest of the walkway raises nothing and a blackout is caught."""
    need(hb.VTEST)
    health = CameraHealth(learn_seconds=20.0)
    changes = []
    for image, ts in hb.clip_frames(hb.VTEST):
        if ts >= 60.0:
            image = hb.tamper(image, "dark")
        changes += health.update(image, ts)
        if ts < 19.0:
            assert not health.fitted
    assert health.fitted
    assert [(c.condition, c.started) for c in changes] == [("dark", True)]
    assert 60.0 <= changes[0].ts <= 60.0 + _limit("dark")


def test_a_static_scene_with_sensor_noise_is_not_frozen():
    """The same frame with a little real-looking noise is a quiet scene; the exact same frame is frozen."""
    need(hb.VTEST)
    image, _ = next(hb.clip_frames(hb.VTEST, start=40.0))
    health = hb.fitted("pets-walkway")
    rng = np.random.default_rng(0)
    noisy = []
    for i in range(60):
        noise = rng.normal(0, 2.0, image.shape)
        noisy += health.update(np.clip(image + noise, 0, 255).astype(np.uint8), 100.0 + i * 0.5)
    assert noisy == []
    frozen = []
    for i in range(60):
        frozen += health.update(image, 200.0 + i * 0.5)
    assert [c.condition for c in frozen] == ["frozen"]


@pytest.mark.parametrize("params, says", [
    ({"orb_features": 1e300}, "'orb_features' must be at most 5000"),
    ({"width": 1e9}, "'width' must be at most 1280"),
    ({"grid": [1000, 2]}, "'grid' must be at most 64"),
])
def test_parameters_that_would_cost_too_much_are_refused_by_name(params, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        CameraHealth(**params)


# -- learning the reference with "learn what is normal now" ---------------------------------------------
def test_learning_the_cameras_normal_also_learns_its_health_reference():
    """``learn(kind="live")`` with a health monitor: the walkway's first 20 s teach the detector and the
    camera's health reference together; the reference, through JSON, catches a blackout and nothing
    else on the untouched rest."""
    from inference.learning import learn
    from tests.inference.test_learning_runner import Recorder

    need(hb.VTEST)
    result = learn(Recorder(), kind="live", source_url=str(hb.VTEST), minutes=hb.LEARN_SECONDS / 60,
                   analysis_fps=5.0, width=360, health=CameraHealth())
    state = json.loads(json.dumps(result.health_state))
    # a sample at most every 0.5 s of the frames analysed at 5 fps: one every 0.6 s
    assert state["fitted"] and state["samples"] >= 0.9 * hb.LEARN_SECONDS / 0.6
    assert "camera health reference from" in result.note
    health = walkway_monitor(state)
    changes = []
    for image, ts in hb.clip_frames(hb.VTEST, start=hb.LEARN_SECONDS):
        if ts >= 60.0:
            image = hb.tamper(image, "dark")
        changes += health.update(image, ts)
    assert [(c.condition, c.started) for c in changes] == [("dark", True)]


def test_a_false_alarms_clip_teaches_no_health_reference(tmp_path):
    from inference.learning import learn
    from tests.inference.test_learning_runner import Recorder, write_clip

    clip = write_clip(tmp_path / "fa.mp4", seconds=3.0)
    assert learn(Recorder(), kind="feedback", clips=[clip], health=CameraHealth()).health_state is None
    assert learn(Recorder(), kind="upload", clips=[clip], health=CameraHealth()).health_state["fitted"]
    assert learn(Recorder(), kind="upload", clips=[clip]).health_state is None  # no monitor: nothing learned


def test_the_reference_learner_keeps_bounded_evenly_spaced_samples():
    from inference.camera_health import _MAX_LEARN_SAMPLES, ReferenceLearner

    rng = np.random.default_rng(0)
    scene = rng.integers(0, 255, (90, 160), dtype=np.uint8)
    learner = ReferenceLearner(CameraHealth())
    for i in range(2000):  # 1,000 s of frames at 2 fps: one sample each
        learner.add((scene, i * 0.5))
    assert learner.measured == 2000
    assert _MAX_LEARN_SAMPLES <= len(learner.samples) < 2 * _MAX_LEARN_SAMPLES
    assert all(s["mad"] is not None for s in learner.samples[1:])  # measured with its neighbour, not the kept one
    assert learner.finish().fitted
    with pytest.raises(ValueError, match="no frames"):
        ReferenceLearner(CameraHealth()).finish()
