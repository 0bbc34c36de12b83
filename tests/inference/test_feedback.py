"""Operator feedback for MotionDetector: an event marked false alarm stops firing, the rest does not.

Plain pytest functions: no database, no Django. The synthetic tests draw a walkway scene; the
real-footage test uses ucsd-ped1 through ``tests/conftest.py``'s ``dataset()`` helper and skips
with a reason when ../shared/datasets is absent. No timing assertions.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from inference.detectors import COMPONENTS, MotionDetector
from inference.evaluation import clip_frames, read_labels, roc_auc
from tests.conftest import dataset

W, H = 360, 202
FPS = 10.0
_BASE = cv2.GaussianBlur(np.random.default_rng(0).integers(60, 140, (H, W), dtype=np.uint8), (5, 5), 2)


def walkway(i: int, fast_blob: tuple[int, int, int] | None = None, j: int = 0) -> np.ndarray:
    """Frame ``i`` of a walkway where two people walk at 3 px/frame, both ways. ``fast_blob``:
    (x0, y0, speed) of a third one racing along the walkway, at its ``j``-th frame."""
    img = _BASE.copy()
    for k, (y, speed) in enumerate(((85, 3), (100, -3))):
        x = 20 + (i * speed + k * 150) % (W - 60)
        cv2.rectangle(img, (x, y), (x + 12, y + 30), 30, -1)
    if fast_blob is not None:
        x0, y0, speed = fast_blob
        x = x0 + j * speed
        cv2.rectangle(img, (x, y0), (x + 12, y0 + 30), 30, -1)
    return img


def racer(x0: int, speed: int = 10, y0: int = 88, start: int = 100, n: int = 14) -> list[np.ndarray]:
    return [walkway(start + j, (x0, y0, speed), j) for j in range(n)]


LEFT = 10  # a racer on the left half of the walkway (cells 0-7)
RIGHT = 200  # the same on the right half (cells 8-14)


@pytest.fixture(scope="module")
def fitted_state():
    """A detector that learned 60 s of the ordinary walkway."""
    return MotionDetector().fit([walkway(i) for i in range(600)], fps=FPS).state_dict()


def peak_score(state: dict, situation: list[np.ndarray]) -> float:
    """The highest score while ``situation`` plays, after 10 s of the ordinary walkway."""
    detector = MotionDetector()
    detector.load_state_dict(state)
    frames = [walkway(i) for i in range(100)] + situation + [walkway(i) for i in range(114, 134)]
    scores = [detector.score(f, i / FPS).score for i, f in enumerate(frames)]
    return max(scores[100:110 + len(situation)])


def false_alarm_clip() -> list[np.ndarray]:
    """The event clip an operator marks false alarm: 2 s before, the racer on the left, 1 s after."""
    return [walkway(i) for i in range(80, 100)] + racer(LEFT) + [walkway(i) for i in range(114, 124)]


# --------------------------------------------------------------------------------------------
# synthetic scene
# --------------------------------------------------------------------------------------------


def test_feedback_stops_the_same_situation_firing_and_keeps_the_rest(fitted_state):
    assert peak_score(fitted_state, racer(LEFT)) >= 0.5  # a false alarm, as the operator sees it
    assert peak_score(fitted_state, racer(RIGHT)) >= 0.5

    detector = MotionDetector()
    detector.load_state_dict(fitted_state)
    summary = detector.feedback(false_alarm_clip(), fps=FPS)
    assert summary["frames"] == 43 and summary["clips_fired"] == 1
    assert summary["cells"]["speed"] >= 1
    state = detector.state_dict()

    # the same situation, a little shifted (another person, another time), no longer fires
    assert peak_score(state, racer(LEFT)) < 0.5
    assert peak_score(state, racer(LEFT + 3, y0=90)) < 0.5
    # an anomaly elsewhere (the same speed, on the other half of the walkway) still fires,
    # and so does something clearly faster where the false alarm was
    assert peak_score(state, racer(RIGHT)) >= 0.5
    assert peak_score(state, racer(LEFT, speed=25)) >= 0.5


def test_feedback_is_local_to_the_cells_and_terms_that_fired(fitted_state):
    detector = MotionDetector()
    detector.load_state_dict(fitted_state)
    detector.feedback(false_alarm_clip(), fps=FPS)
    accepted = detector.state_dict()["accepted"]
    assert set(accepted) == set(COMPONENTS)
    speed = np.array(accepted["speed"])
    rows, cols = np.nonzero(speed)
    assert len(rows) and set(rows) <= {3, 4, 5}  # the walkway rows the racer crossed
    assert cols.max() <= 7  # the left half only: the right half keeps its full sensitivity
    assert speed[:, 8:].max() == 0.0
    for name in ("direction", "novelty", "area", "dwell"):  # it was only too fast
        assert np.array(accepted[name]).max() == 0.0


def test_feedback_on_footage_that_does_not_fire_accepts_nothing(fitted_state):
    detector = MotionDetector()
    detector.load_state_dict(fitted_state)
    learned = detector.frames_learned
    summary = detector.feedback([walkway(i) for i in range(200, 240)], fps=FPS)
    assert summary["clips_fired"] == 0 and not any(summary["cells"].values())
    assert detector.state_dict()["accepted"] is None
    assert detector.frames_learned == learned + 39  # still learned as normal footage
    assert peak_score(detector.state_dict(), racer(LEFT)) >= 0.5


def test_feedback_accepts_clips_and_keeps_the_live_motion_chain(fitted_state):
    detector = MotionDetector()
    detector.load_state_dict(fitted_state)
    for i in range(60):
        detector.score(walkway(i), i / FPS)
    seen = detector.frames_seen
    clip = false_alarm_clip()
    # None separates clips; a 3-D array is a clip of its own
    summary = detector.feedback([None, *clip[:5], None, np.stack(clip[5:])], fps=FPS)
    assert summary["frames"] == 4 + len(clip) - 6 and summary["clips_fired"] == 1
    assert detector.frames_seen == seen
    after = detector.score(walkway(60), 6.0)  # the chain goes on: no restart
    assert "reason" not in after.details and after.score < 0.5
    with pytest.raises(ValueError, match="feedback frames are 100x100"):
        detector.feedback([np.zeros((100, 100), np.uint8)] * 3)


def test_feedback_survives_the_state_round_trip_and_old_states_still_load(fitted_state):
    detector = MotionDetector()
    detector.load_state_dict(fitted_state)
    detector.feedback(false_alarm_clip(), fps=FPS)
    state = json.loads(json.dumps(detector.state_dict()))  # JSON-serialisable
    assert state["version"] == 3 and state["accepted"] is not None
    restored = MotionDetector()
    restored.load_state_dict(state)
    assert restored.state_dict()["accepted"] == state["accepted"]
    assert peak_score(state, racer(LEFT)) < 0.5 and peak_score(state, racer(RIGHT)) >= 0.5

    # feedback accumulates: a second clip only raises levels
    again = MotionDetector()
    again.load_state_dict(state)
    again.feedback(racer(RIGHT), fps=FPS)
    both = again.state_dict()
    assert (np.array(both["accepted"]["speed"]) >= np.array(state["accepted"]["speed"])).all()
    assert peak_score(both, racer(RIGHT)) < 0.5

    # a state saved before feedback existed (version 2, no "accepted") loads, with no feedback
    old = {k: v for k, v in fitted_state.items() if k != "accepted"} | {"version": 2}
    legacy = MotionDetector()
    legacy.load_state_dict(old)
    assert legacy.state_dict()["accepted"] is None
    broken = json.loads(json.dumps(state))
    broken["accepted"]["speed"] = [[0.0]]
    with pytest.raises(ValueError, match="accepted.speed"):
        MotionDetector().load_state_dict(broken)
    del broken["accepted"]["speed"]
    with pytest.raises(ValueError, match="accepted"):
        MotionDetector().load_state_dict(broken)


# --------------------------------------------------------------------------------------------
# real footage: ucsd-ped1
# --------------------------------------------------------------------------------------------

PED1_FPS = 5.0  # the product's default analysis rate: every second frame of the 10 fps clips
PRE_S, CLOSE_S = 4.0, 3.0  # an event clip: 4 s of pre-roll; an episode closes after 3 s below threshold


def ped1_clip(path) -> tuple[np.ndarray, list[np.ndarray]]:
    stamps, frames = zip(*clip_frames(path, 360))
    step = int(round(10 / PED1_FPS))
    return np.array(stamps[::step]), list(frames[::step])


def episodes(scores: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(first, last) frame of each alarm episode, as the live loop groups them into events."""
    close = int(round(CLOSE_S * PED1_FPS))
    found: list[list[int]] = []
    for i in np.flatnonzero(scores >= threshold):
        if found and i - found[-1][1] <= close:
            found[-1][1] = int(i)
        else:
            found.append([int(i), int(i)])
    return [(a, b) for a, b in found]


def run_dev_set(state: dict, clips: dict) -> dict[str, np.ndarray]:
    """Each dev clip scored causally from ``state``, learning online as live (vad_eval's protocol)."""
    detector = MotionDetector()
    detector.load_state_dict(state)
    out = {}
    for name, (stamps, frames, _) in clips.items():
        detector.reset()
        out[name] = np.array([detector.score(f, t).score for f, t in zip(frames, stamps)])
    return out


def figures(scores: dict[str, np.ndarray], clips: dict) -> dict:
    s = np.concatenate([scores[n] for n in clips])
    y = np.concatenate([clips[n][2] for n in clips])
    return {"auc": roc_auc(s, y), "false_alarm_rate": float((s[y == 0] >= 0.5).mean()),
            "recall": float((s[y == 1] >= 0.5).mean())}


def false_alarm_events(scores: dict[str, np.ndarray], clips: dict) -> list[tuple[str, int, int, int, int]]:
    """(clip, first, last, clip start, clip end) of every event whose whole clip (pre-roll to
    close) shows no labelled anomaly: what an operator would mark false alarm."""
    out = []
    for name, s in scores.items():
        labels = clips[name][2]
        for first, last in episodes(s, 0.5):
            c0 = max(0, first - int(PRE_S * PED1_FPS))
            c1 = min(len(s), last + 1 + int(CLOSE_S * PED1_FPS))
            if not labels[c0:c1].any():
                out.append((name, first, last, c0, c1))
    return out


def test_false_alarms_fall_after_feedback_on_real_footage_and_anomalies_are_still_caught():
    """ucsd-ped1: learn normal from 5 training clips, run the 36 labelled test clips (the dev
    set), feed back every false-alarm event (its clip: pre-roll, episode, tail, as the live
    loop records it), then run the same clips again from the fitted state plus the feedback."""
    root = dataset("ucsd-ped1")
    detector = MotionDetector()
    train = [ped1_clip(root / "videos" / "training" / f"Train{i:03d}.mp4")[1] for i in range(1, 6)]
    detector.fit(train, fps=PED1_FPS)
    fitted = detector.state_dict()
    clips = {}
    for path in sorted((root / "videos" / "testing").glob("Test*.mp4")):
        stamps, frames = ped1_clip(path)
        labels = read_labels(root / "labels" / f"{path.stem}.txt")[:: int(round(10 / PED1_FPS))][: len(frames)]
        clips[path.stem] = (stamps[: len(labels)], frames[: len(labels)], labels)
    assert len(clips) == 36

    before = run_dev_set(fitted, clips)
    fb_before = figures(before, clips)
    events = false_alarm_events(before, clips)
    assert len(events) >= 3, events  # enough false alarms for the comparison to mean something

    operator = MotionDetector()
    operator.load_state_dict(fitted)
    for name, _, _, c0, c1 in events:
        operator.feedback(clips[name][1][c0:c1], fps=PED1_FPS)
    accepted = np.array([operator.state_dict()["accepted"][k] for k in COMPONENTS])
    assert 0 < (accepted > 0).sum() <= 0.05 * accepted.size  # a few (cell, term) pairs, not the scene

    after = run_dev_set(operator.state_dict(), clips)
    fb_after = figures(after, clips)
    print(f"\nfeedback on {len(events)} false-alarm events: before {fb_before}, after {fb_after}, "
          f"false-alarm events after {len(false_alarm_events(after, clips))}")
    # the events marked false alarm do not fire again
    for name, first, last, _, _ in events:
        assert after[name][first:last + 1].max() < 0.5, (name, first, last)
    assert len(false_alarm_events(after, clips)) <= len(events) // 2
    # the false-alarm rate (every normal frame above threshold) at least halves
    assert fb_after["false_alarm_rate"] <= 0.5 * fb_before["false_alarm_rate"]
    # while the labelled anomalies are still caught
    assert fb_after["recall"] >= 0.9 * fb_before["recall"]
    assert fb_after["auc"] >= fb_before["auc"] - 0.01
