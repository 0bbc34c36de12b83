"""ObjectNormal: learned normal for objects per region and class, its anomaly terms, feedback and
state. Plain pytest, synthetic detections through the real Tracker, no weights, no database.

The learned scene: a 640 x 480 view (8 x 6 cells of 80 px), people walking left and right across
the middle rows (foot points between y 200 and 300: rows 2 and 3) at 0.8 to 1.2 body heights
per second, about 100 px tall, one every 1.5 to 3.5 s, detected at 5 fps with a few pixels of
box jitter. 1,000 frames (200 s) are learned.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from inference.object_normal import STATE_VERSION, TERMS, ObjectNormal, duration, plural
from inference.objects import Detection
from inference.tracking import Tracker

W, H, FPS = 640, 480, 5.0
LEARN_FRAMES = 1000


Det = Detection  # the object model's detections, as the tracker gets them


def box_at(label: str, foot_x: float, foot_y: float, h: float, w: float | None = None, score: float = 0.9) -> Det:
    w = 0.4 * h if w is None else w
    return Det(label, 0, score, (foot_x - w / 2, foot_y - h, foot_x + w / 2, foot_y))


def walkers(seed: int, n_frames: int, extra=None, t0: float = 0.0) -> list[tuple[list[Det], float]]:
    """(detections, timestamp) of the normal scene; ``extra(t)`` adds detections."""
    rng = np.random.default_rng(seed)
    people, frames, next_birth = [], [], 0.0
    for k in range(n_frames):
        t = k / FPS
        while t >= next_birth:
            d = 1 if rng.uniform() < 0.5 else -1
            h = float(rng.uniform(90, 110))
            v = d * float(rng.uniform(0.8, 1.2)) * h
            people.append((next_birth, 30.0 if d > 0 else 610.0, float(rng.uniform(200, 300)), h, v))
            next_birth += float(rng.uniform(1.5, 3.5))
        dets = []
        for born, x0, y, h, v in people:
            x = x0 + v * (t - born)
            if 20 <= x <= 620:
                j = rng.normal(0.0, 1.5, 3)
                dets.append(box_at("person", x + j[0], y + j[1], h + j[2]))
        people = [p for p in people if 20 <= p[1] + p[4] * (t - p[0]) <= 620]
        if extra is not None:
            dets += extra(t)
        frames.append((dets, t0 + t))
    return frames


def tracked(frames) -> list[tuple[list, int, int, float]]:
    """The frames as ObjectNormal reads them: (tracks, width, height, timestamp)."""
    tracker = Tracker()
    return [(tracker.update(dets, t), W, H, t) for dets, t in frames]


def run(model: ObjectNormal, frames) -> list[tuple[float, list[dict]]]:
    return [model.score(tracks, w, h, t) for tracks, w, h, t in tracked(frames)]


def terms_of(results, term: str) -> list[dict]:
    return [d for _, terms in results for d in terms if d["term"] == term]


@pytest.fixture(scope="module")
def learned_state() -> dict:
    model = ObjectNormal(grid=(8, 6))
    model.fit(tracked(walkers(seed=1, n_frames=LEARN_FRAMES)))
    assert model.frames_learned == LEARN_FRAMES
    return json.loads(json.dumps(model.state_dict()))  # through JSON, as it is saved


@pytest.fixture
def model(learned_state) -> ObjectNormal:
    m = ObjectNormal(grid=(8, 6))
    m.load_state_dict(learned_state)
    return m


def test_similar_footage_scores_low(model):
    results = run(model, walkers(seed=2, n_frames=250))
    scores = [s for s, _ in results]
    assert max(scores) < 0.3, max(results, key=lambda r: r[0])
    assert sum(1 for _, terms in results if terms) < 0.05 * len(results)  # nearly nothing to report


def test_a_bicycle_where_only_people_were_seen(model):
    bike = lambda t: [box_at("bicycle", 60 + 110 * t, 260, 100, w=70)] if t < 5 else []  # noqa: E731
    results = run(model, walkers(seed=3, n_frames=25, extra=bike))
    rare = terms_of(results, "rare_class")
    assert rare and max(d["value"] for d in rare) > 0.5
    top = max(rare, key=lambda d: d["value"])
    assert top["label"] == "bicycle" and top["numbers"]["seen"] == 0
    assert top["numbers"]["frames"] == LEARN_FRAMES
    assert top["explain"] == "bicycle on a spot where 0 were seen in 1,000 learned frames"
    assert max(s for s, _ in results) > 0.5
    # the walkers around it are not rare
    assert all(d["label"] == "bicycle" for d in rare if d["value"] > 0.1)
    peak_terms = max(results, key=lambda r: r[0])[1]
    assert model.explain(peak_terms).startswith("bicycle")
    assert model.explain(rare, place="the walkway") == "bicycle on the walkway: 0 seen there in 1,000 learned frames"


def test_a_person_at_three_times_the_speed(model):
    runner = lambda t: [box_at("person", 40 + 300 * t, 250, 100)] if t < 1.9 else []  # noqa: E731
    results = run(model, walkers(seed=4, n_frames=12, extra=runner))
    fast = [d for d in terms_of(results, "speed") if d["value"] > 0.5]
    assert fast and max(s for s, _ in results) > 0.5
    top = max(fast, key=lambda d: d["value"])
    assert top["numbers"]["ratio"] == pytest.approx(3.0, rel=0.25)
    assert "the usual speed of people here" in top["explain"]


def test_a_backpack_left_behind(model):
    bag = lambda t: [box_at("backpack", 330, 280, 40, w=30)]  # noqa: E731
    results = run(model, walkers(seed=5, n_frames=126, extra=bag))  # 0 to 25 s
    left = terms_of(results, "left_behind")
    by_time = {round(d["numbers"]["seconds"], 1): d["value"] for d in left}
    assert all(v < 0.1 for s, v in by_time.items() if s <= 15)  # (most below report_min: not listed)
    assert by_time[20.0] == pytest.approx(0.5) and by_time[25.0] > 0.85
    values = [by_time[s] for s in sorted(by_time)]
    assert values == sorted(values)  # rising with the time it stands there
    assert results[-1][0] > 0.5
    final = [d for d in results[-1][1] if d["term"] == "left_behind"]
    assert final[0]["explain"].startswith("backpack left unattended for 25")


def test_a_person_down(model):
    def fall(t):  # walks in, stops at 2 s, goes down over 0.6 s at 3 s, lies there 5 s
        f = min(max((t - 3.0) / 0.6, 0.0), 1.0)
        x = 100 + 100 * min(t, 2.0)
        return [box_at("person", x + 30 * f, 270, 100 - 60 * f, w=40 + 70 * f)]

    results = run(model, walkers(seed=6, n_frames=44, extra=fall))  # to 8.6 s
    down = terms_of(results, "person_down")
    assert down and max(d["value"] for d in down) > 0.5
    top = max(down, key=lambda d: d["value"])
    assert top["numbers"]["seconds"] >= 4.5 and top["explain"].startswith("person lying down for")
    # upright (walking, then standing) it is never down
    assert all(d["value"] < 0.01 for (_, terms), (_, _, _, t) in zip(results, tracked(walkers(6, 44, fall)))
               for d in terms if d["term"] == "person_down" and t < 3.6)
    assert max(s for s, _ in results) > 0.5


def test_a_person_in_a_wheelchair_is_wider_than_people_here(model):
    # at a walking pace, so neither speed nor motion tells it from a walker: its outline does
    chair = lambda t: [box_at("person", 60 + 70 * t, 260, 70, w=77)] if t < 6 else []  # noqa: E731
    results = run(model, walkers(seed=13, n_frames=30, extra=chair))
    shape = [d for d in terms_of(results, "shape") if d["value"] > 0.5]
    assert shape and max(s for s, _ in results) > 0.5
    top = max(shape, key=lambda d: d["value"])
    assert top["numbers"]["ratio"] == pytest.approx(1.1 / 0.4, rel=0.1)
    assert top["explain"] == f"person {top['numbers']['ratio']:.1f}x as wide for its height as people here"
    assert top["box"][2] - top["box"][0] > 60  # the wheelchair's track, not a walker's
    # not before the track has shown its outline in shape_window detections
    first = min(t for (_, terms), (_, _, _, t) in zip(results, tracked(walkers(13, 30, chair)))
                for d in terms if d["term"] == "shape" and d["value"] > 0.5)
    assert first >= (model.params["shape_window"] - 1) / FPS


def test_a_box_that_merges_two_walkers_for_a_moment_is_not_a_shape(model):
    # one walker's box turns wide for two detections (another walker beside it), then upright again
    def merged(t):
        wide = 1.0 <= t < 1.4
        return [box_at("person", 60 + 100 * t, 260, 100, w=110 if wide else 40)] if t < 4 else []

    results = run(model, walkers(seed=14, n_frames=20, extra=merged))
    assert all(d["value"] < 0.1 for d in terms_of(results, "shape"))
    assert max(s for s, _ in results) < 0.3


def test_a_state_saved_before_the_shape_statistics_loads(learned_state):
    old = json.loads(json.dumps(learned_state))
    for stats in old["groups"].values():
        for key in ("shape_n", "shape_mean", "shape_m2", "shape_all"):
            del stats[key]
    model = ObjectNormal()
    model.load_state_dict(old)  # an installed camera's saved state keeps working after the upgrade
    assert model.frames_learned == LEARN_FRAMES
    chair = lambda t: [box_at("person", 60 + 70 * t, 260, 70, w=77)] if t < 6 else []  # noqa: E731
    results = run(model, walkers(seed=13, n_frames=30, extra=chair))
    assert terms_of(results, "shape") == []  # nothing learned of outlines yet: nothing to compare with
    assert model.state_dict()["groups"]["person"]["shape_all"] == [0.0, 0.0, 0.0]


def test_dwell_against_learned_durations(model):
    """Duck typing: any object with a track's attributes is scored."""
    stay = SimpleNamespace(id=99, label="person", box=(300, 180, 340, 280), hits=500, path=[(320, 280, 0)] * 10,
                           first_seen=0.0, last_seen=120.0, speed_rel=1.0, direction=0.0, dwell=120.0,
                           stationary_s=0.2)
    score, terms = model.score([stay], W, H, 120.0)
    (dwell,) = [d for d in terms if d["term"] == "dwell"]
    assert dwell["value"] > 0.5 and score > 0.5
    assert dwell["numbers"]["tracks"] >= 50 and dwell["explain"].startswith("person in view for 2 min")
    short = SimpleNamespace(**{**vars(stay), "id": 98, "dwell": 5.0, "first_seen": 115.0})
    assert all(d["term"] != "dwell" for d in model.score([short], W, H, 120.2)[1])


def test_state_round_trip_gives_identical_scores(learned_state):
    a = ObjectNormal()
    a.load_state_dict(learned_state)
    b = ObjectNormal()
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert b.state_dict() == a.state_dict()
    bike = lambda t: [box_at("bicycle", 60 + 110 * t, 260, 100, w=70)]  # noqa: E731
    frames = tracked(walkers(seed=7, n_frames=20, extra=bike))
    assert [a.score(*f) for f in frames] == [b.score(*f) for f in frames]


def test_a_bad_state_raises_naming_the_problem(learned_state):
    model = ObjectNormal()
    with pytest.raises(ValueError, match="version 99"):
        model.load_state_dict({**learned_state, "version": 99})
    with pytest.raises(ValueError, match="grid"):
        model.load_state_dict({**learned_state, "grid": [4, 3]})
    with pytest.raises(ValueError, match="grid"):
        ObjectNormal(grid=(4, 3)).load_state_dict(learned_state)
    broken = json.loads(json.dumps(learned_state))
    broken["groups"]["person"]["count"] = [[0.0] * 8] * 5
    with pytest.raises(ValueError, match=r"'person.count' has shape \(5, 8\), expected \(6, 8\)"):
        model.load_state_dict(broken)
    missing = json.loads(json.dumps(learned_state))
    del missing["groups"]["person"]["dir"]
    with pytest.raises(ValueError, match="missing 'dir'"):
        model.load_state_dict(missing)
    with pytest.raises(ValueError, match="unknown term 'loud'"):
        model.load_state_dict({**learned_state, "accepted": [["loud", "person", 0, 0, 1.0]]})
    with pytest.raises(ValueError, match="outside"):
        model.load_state_dict({**learned_state, "accepted": [["speed", "person", 9, 0, 1.0]]})
    assert model.frames_learned == 0  # nothing changed
    assert learned_state["version"] == STATE_VERSION


def test_feedback_lowers_the_same_situation_and_only_it(model):
    bike = lambda t: [box_at("bicycle", 60 + 110 * t, 260, 100, w=70)] if t < 5 else []  # noqa: E731
    clip = tracked(walkers(seed=8, n_frames=25, extra=bike))
    before = max(model.score(*f)[0] for f in clip)
    assert before > 0.5
    summary = model.feedback(clip)
    assert summary["frames"] == 25 and summary["terms"]["rare_class"] >= 1
    # the same situation again (new footage around it, a new tracker): no longer an alarm
    again = run(model, walkers(seed=9, n_frames=25, extra=bike))
    assert max(s for s, _ in again) < 0.3 < before
    # other situations keep their sensitivity: a person running on the same spot
    runner = lambda t: [box_at("person", 40 + 300 * t, 250, 100)] if t < 1.9 else []  # noqa: E731
    assert max(s for s, _ in run(model, walkers(seed=4, n_frames=12, extra=runner))) > 0.5
    # and feedback is part of the state
    other = ObjectNormal()
    other.load_state_dict(json.loads(json.dumps(model.state_dict())))
    assert other.state_dict()["accepted"] == model.state_dict()["accepted"] != []


def test_online_learning_only_below_the_gate(model):
    start = model.frames_learned
    normal = tracked(walkers(seed=10, n_frames=20))
    for f in normal:
        model.update(*f)
    assert model.frames_learned == start + 20
    bike = lambda t: [box_at("bicycle", 60 + 110 * t, 260, 100, w=70)]  # noqa: E731
    frames = tracked(walkers(seed=11, n_frames=10, extra=bike, t0=100.0))
    learned = []
    for f in frames:
        s, _ = model.update(*f)
        learned.append(s < model.params["learn_below"])
    assert model.frames_learned == start + 20 + sum(learned) and not all(learned)
    # the bicycle was never learned: too young a track first, then above the gate
    assert np.asarray(model.state_dict()["groups"].get("bicycle", {}).get("count", 0.0)).sum() == 0
    assert max(model.score(*f)[0] for f in frames[-3:]) > 0.5


def test_online_learning_gates_a_rare_class_in_a_low_scoring_frame(model):
    """A rare track in a frame that scores low anyway (its value damped by feedback, say)
    counts only ``gated_rate`` of a frame: it does not teach itself to be normal."""
    quiet = ObjectNormal(weights={"rare_class": 0.0, "speed": 0.0})  # scores low: learned online
    quiet.load_state_dict(model.state_dict())
    bike = lambda t: [box_at("bicycle", 300, 260, 100, w=70)]  # noqa: E731
    for f in tracked(walkers(seed=13, n_frames=20, extra=bike, t0=200.0)):
        assert quiet.update(*f)[0] < quiet.params["learn_below"]
    count = np.asarray(quiet.state_dict()["groups"]["bicycle"]["count"])
    assert 0 < count.sum() <= 0.1 * 18 + 1e-9  # 18 frames with a track of 3+ hits, at 0.1


def test_a_fresh_model_does_not_alarm():
    results = [ObjectNormal().update(*f) for f in tracked(walkers(seed=12, n_frames=60))]
    assert max(s for s, _ in results) < 0.3


def test_noisy_or_and_weights(model):
    assert ObjectNormal(combine="noisy_or").params["combine"] == "noisy_or"
    with pytest.raises(ValueError, match="unknown weight"):
        ObjectNormal(weights={"colour": 1.0})
    with pytest.raises(ValueError, match="unknown ObjectNormal parameter"):
        ObjectNormal(bogus=1)
    for window in (0, 2.5, "5"):
        with pytest.raises(ValueError, match="shape_window must be a whole number of detections"):
            ObjectNormal(shape_window=window)
    quiet = ObjectNormal(weights={"rare_class": 0.0, "speed": 0.0})
    quiet.load_state_dict(model.state_dict())
    bike = lambda t: [box_at("bicycle", 60 + 110 * t, 260, 100, w=70)]  # noqa: E731
    frames = tracked(walkers(seed=3, n_frames=15, extra=bike))
    assert max(quiet.score(*f)[0] for f in frames) < 0.3


def test_wording():
    assert plural("person") == "people" and plural("bicycle") == "bicycles" and plural("bus") == "buses"
    assert duration(25.2) == "25 s" and duration(4.6) == "4.6 s" and duration(125) == "2 min 5 s"
    assert duration(3 * 3600 + 60) == "3 h 1 min"
    assert set(TERMS) >= {"rare_class", "speed", "left_behind", "person_down", "dwell", "shape"}
    assert math.isclose(ObjectNormal().params["learn_below"], 0.4)


# -- a vehicle standing still: unusual only where vehicles were learned moving ------------------------------
def traffic(t: float) -> list[Det]:
    """Cars driving right along the bottom row (foot y 420, row 5), 60 px tall, at 3 body heights a
    second (180 px/s), one every 4 s."""
    cars = []
    for k in range(int(t // 4) + 1):
        x = 20 + 180 * (t - 4 * k)
        if 20 <= x <= 620:
            cars.append(box_at("car", x, 420, 60, w=110))
    return cars


@pytest.fixture(scope="module")
def street_state() -> dict:
    model = ObjectNormal(grid=(8, 6))
    model.fit(tracked(walkers(seed=21, n_frames=LEARN_FRAMES, extra=traffic)))
    return json.loads(json.dumps(model.state_dict()))


def slow_terms(results) -> list[dict]:
    return [d for d in terms_of(results, "speed") if "still for" in d["explain"] and d["value"] > 0]


def test_a_car_stopped_in_the_lane_where_cars_always_drive(street_state):
    model = ObjectNormal(grid=(8, 6))
    model.load_state_dict(street_state)
    stopped = lambda t: [box_at("car", 330, 420, 60, w=110)]  # noqa: E731 - stands in the lane for 12 s
    slow = slow_terms(run(model, walkers(seed=22, n_frames=60, extra=stopped)))
    assert slow and max(d["value"] for d in slow) > 0.5
    assert "the usual speed of vehicles here" in max(slow, key=lambda d: d["value"])["explain"]


def test_a_parked_car_where_no_car_was_learned_moving_is_not_slow(street_state, model):
    parked = lambda t: [box_at("car", 330, 250, 60, w=110)]  # noqa: E731 - on the people's path, 12 s
    street = ObjectNormal(grid=(8, 6))
    street.load_state_dict(street_state)
    for m in (street, model):  # cars learned elsewhere only; cars never learned (people only)
        assert not slow_terms(run(m, walkers(seed=23, n_frames=60, extra=parked)))


def test_a_fresh_model_does_not_alarm_on_parked_cars():
    # A new camera over a car park: nothing learned, every car still. Parked, not "0.0x the usual speed".
    parked = lambda t: [box_at("car", 150, 420, 60, w=110), box_at("truck", 480, 400, 90, w=150)]  # noqa: E731
    results = [ObjectNormal().update(*f) for f in tracked(walkers(seed=24, n_frames=60, extra=parked))]
    assert max(s for s, _ in results) < 0.3
    assert not slow_terms(results)
