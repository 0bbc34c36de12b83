"""Tracker: ids across crossings and missed detections, ageing, speeds at irregular timestamps,
class families, ByteTrack's low-score stage. Plain pytest, synthetic detections, no weights."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inference.objects import Detection
from inference.tracking import Tracker, family, theil_sen_velocity


Det = Detection  # the object model's detections, as the tracker gets them


def person(foot_x: float, foot_y: float, h: float = 100.0, score: float = 0.9, label: str = "person",
           w: float | None = None) -> Det:
    w = 0.4 * h if w is None else w
    return Det(label, 0, score, (foot_x - w / 2, foot_y - h, foot_x + w / 2, foot_y))


def by_id(tracks):
    return {t.id: t for t in tracks}


def test_two_persons_crossing_keep_their_ids():
    tracker = Tracker()
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    seen = set()
    for k in range(26):  # 5 s at 5 fps, crossing at 2.5 s
        t = k * 0.2
        a = person(100 + 80 * t, 300)  # left to right
        b = person(500 - 80 * t, 308)  # right to left, nearly the same row
        for tr in tracker.update([a, b], t):
            seen.add(tr.id)
            first.setdefault(tr.id, tr.foot[0])
            last[tr.id] = tr.foot[0]
    assert seen == {1, 2}
    starts_left = min(first, key=first.get)
    starts_right = max(first, key=first.get)
    assert first[starts_left] < 150 and last[starts_left] > 450  # the one from the left ends right
    assert first[starts_right] > 450 and last[starts_right] < 150


def test_missed_detections_keep_the_id_and_predict_follows():
    tracker = Tracker()
    ids = set()
    for k in range(30):
        t = k * 0.2
        x = 50 + 100 * t
        if 10 <= k < 15:  # a second without detections of this person (update still called)
            assert tracker.update([], t) == []
            pred = tracker.predict(t)
            assert len(pred) == 1 and pred[0].time_since_update == pytest.approx(t - 1.8)
            assert pred[0].foot[0] == pytest.approx(x, abs=8.0)  # constant-velocity prediction
            assert tracker.tracks[0].time_since_update > 0
            continue
        ids |= {tr.id for tr in tracker.update([person(x, 300)], t)}
    assert ids == {1}


def test_irregular_detection_frames_keep_the_id():
    tracker = Tracker()
    rng = np.random.default_rng(3)
    t, ids = 0.0, set()
    for _ in range(25):  # the detector ran on some frames of a 5 fps loop: gaps of 0.2 to 1.0 s
        t += 0.2 * int(rng.integers(1, 6))
        ids |= {tr.id for tr in tracker.update([person(40 + 60 * t, 300)], t)}
    assert ids == {1}


def test_a_track_that_leaves_is_dropped_after_max_age():
    tracker = Tracker(max_age_s=1.5)
    for k in range(10):
        tracker.update([person(100 + 20 * k, 300)], k * 0.2)
    last = 9 * 0.2
    tracker.update([], last + 1.4)
    assert [tr.id for tr in tracker.tracks] == [1]
    assert [tr.id for tr in tracker.predict(last + 1.5)] == [1]
    assert tracker.predict(last + 1.6) == []  # predict changes nothing
    tracker.update([], last + 1.6)
    assert tracker.tracks == []
    # the same place again later: a new object, a new id
    tracker.update([person(280, 300)], last + 2.0)
    out = tracker.update([person(282, 300)], last + 2.2)
    assert [tr.id for tr in out] == [2]


def test_speed_at_irregular_timestamps():
    tracker = Tracker()
    rng = np.random.default_rng(7)
    stamps = np.cumsum(rng.uniform(0.1, 0.5, 30))
    vx, vy, h = 120.0, 30.0, 100.0
    for t in stamps:
        out = tracker.update([person(100 + vx * t, 200 + vy * t, h=h)], float(t))
    (tr,) = out
    assert tr.velocity == pytest.approx((vx, vy), abs=1e-6)
    assert tr.speed == pytest.approx(math.hypot(vx, vy), rel=1e-6)
    assert tr.speed_rel == pytest.approx(math.hypot(vx, vy) / h, rel=1e-3)
    assert tr.direction == pytest.approx(math.atan2(vy, vx), abs=1e-6)
    assert tr.dwell == pytest.approx(stamps[-1] - stamps[0])
    assert tr.first_seen == pytest.approx(stamps[0]) and tr.last_seen == pytest.approx(stamps[-1])
    assert tr.stationary_s < 0.5 and tr.hits == 30
    assert len(tr.path) == 30 and tr.path[-1][2] == pytest.approx(stamps[-1])


def test_speed_is_robust_to_box_jitter():
    tracker = Tracker()
    rng = np.random.default_rng(11)
    t = 0.0
    for _ in range(40):
        t += float(rng.uniform(0.15, 0.45))
        jitter = rng.normal(0.0, 2.5, 4)  # a detector's boxes shake by a few pixels
        x, y = 100 + 100 * t, 300.0
        box = (x - 20 + jitter[0], y - 100 + jitter[1], x + 20 + jitter[2], y + jitter[3])
        out = tracker.update([Det("person", 0, 0.9, box)], t)
    (tr,) = out
    assert tr.speed == pytest.approx(100.0, rel=0.1)
    assert tr.speed_rel == pytest.approx(1.0, rel=0.12)
    assert abs(tr.direction) < 0.15


def test_theil_sen_ignores_an_outlier():
    points = [(10.0 * i, 0.0, 0.2 * i) for i in range(6)]  # 50 px/s
    points[3] = (points[3][0] + 40.0, 0.0, points[3][2])  # one bad box
    vx, vy = theil_sen_velocity(points, window=1.0)
    assert vx == pytest.approx(50.0, abs=1e-9) and vy == 0.0
    assert theil_sen_velocity(points[:1], 1.0) is None


def test_stationary_seconds():
    tracker = Tracker()
    rng = np.random.default_rng(5)
    for k in range(60):  # 12 s standing still, jittering
        j = rng.normal(0, 1.5, 2)
        out = tracker.update([person(300 + j[0], 300 + j[1])], k * 0.2)
    assert out[0].stationary_s == pytest.approx(59 * 0.2, abs=0.01)
    for k in range(60, 70):  # then walks away at 1 body height per second
        out = tracker.update([person(300 + 100 * (k - 59) * 0.2, 300)], k * 0.2)
    assert out[0].stationary_s < 0.5 and out[0].id == 1


def test_class_families_are_not_merged():
    assert family("car") == family("truck") == "vehicle" and family("person") == "person"
    tracker = Tracker()
    car = Det("car", 2, 0.9, (100, 200, 300, 300))
    for k in range(3):
        out = tracker.update([car], k * 0.2)
    (tr,) = out
    car_id, car_hits = tr.id, tr.hits
    # a person detection on exactly the car's box does not extend the car track
    for k in range(3, 6):
        out = tracker.update([Det("person", 0, 0.9, car.box)], k * 0.2)
    assert [t.label for t in out] == ["person"] and out[0].id != car_id
    (coasting,) = [t for t in tracker.tracks if t.id == car_id]
    assert coasting.hits == car_hits and coasting.label == "car" and coasting.time_since_update > 0
    # a car and a person overlapping in the same frames: two tracks
    tracker = Tracker()
    for k in range(5):
        out = tracker.update([Det("car", 2, 0.9, (100, 200, 300, 300)), person(210, 300, h=120)], k * 0.2)
    assert sorted(t.label for t in out) == ["car", "person"] and len({t.id for t in out}) == 2


def test_label_is_the_majority_vote_within_a_family():
    tracker = Tracker()
    labels = ["car", "car", "truck", "car", "truck", "truck", "truck", "truck"]
    history = []
    for k, label in enumerate(labels):
        out = tracker.update([Det(label, 0, 0.9, (100 + k, 200, 300 + k, 300))], k * 0.2)
        history += [(t.id, t.label) for t in out]
    assert {i for i, _ in history} == {1}
    # car 3 / truck 3 at the 6th detection is a tie: the track keeps its label
    assert [lab for _, lab in history] == ["car", "car", "car", "car", "car", "truck", "truck"]


def test_low_score_detections_extend_tracks_but_never_start_them():
    tracker = Tracker(low_score=0.2, high_score=0.4)
    for k in range(5):
        assert tracker.update([person(100 + 10 * k, 300, score=0.3)], k * 0.2) == []
    assert tracker.tracks == []
    tracker = Tracker(low_score=0.2, high_score=0.4)
    for k in range(3):
        tracker.update([person(100 + 10 * k, 300, score=0.9)], k * 0.2)
    for k in range(3, 8):  # occluded: weak detections keep it
        out = tracker.update([person(100 + 10 * k, 300, score=0.25)], k * 0.2)
        assert [t.id for t in out] == [1]
    assert out[0].hits == 8 and out[0].score == 0.25
    out = tracker.update([person(180, 300, score=0.1)], 8 * 0.2)  # below low_score: ignored
    assert out == [] and tracker.tracks[0].hits == 8


def test_a_one_frame_detection_makes_no_track_and_takes_no_id():
    tracker = Tracker(min_hits=2)
    assert tracker.update([person(500, 300)], 0.0) == []  # spurious: never seen again
    assert tracker.update([person(100, 300)], 0.2) == []  # tentative
    assert [t.id for t in tracker.update([person(102, 300)], 0.4)] == [1]
    assert [t.id for t in Tracker(min_hits=1).update([person(100, 300)], 0.0)] == [1]


def test_a_falling_person_keeps_the_track():
    tracker = Tracker()
    ids = set()
    for k in range(20):
        t = k * 0.2
        f = min(max((k - 8) / 3.0, 0.0), 1.0)  # upright, then wide over 0.6 s
        h, w = 100 - 60 * f, 40 + 70 * f
        ids |= {tr.id for tr in tracker.update([person(300 + 20 * f, 300, h=h, w=w)], t)}
    assert ids == {1}
    assert tracker.tracks[0].aspect > 2.0


def test_deterministic_and_predict_changes_nothing():
    def run(with_predict: bool):
        tracker = Tracker()
        rng = np.random.default_rng(1)
        out = []
        for k in range(40):
            t = k * 0.2
            dets = [person(50 + 60 * t + rng.normal(0, 2), 250 + 40 * i, score=float(rng.uniform(0.25, 1.0)))
                    for i in range(3) if rng.uniform() > 0.15]
            if with_predict:
                tracker.predict(t + 0.1)
            out.append(tracker.update(dets, t))
        return out

    assert run(False) == run(False) == run(True)


def test_time_going_back_starts_afresh():
    tracker = Tracker()
    for k in range(3):
        tracker.update([person(100, 300)], 10 + k * 0.2)
    assert tracker.update([person(100, 300)], 0.0) == []  # a new clip: tentative again
    assert [t.id for t in tracker.update([person(100, 300)], 0.2)] == [1]


def test_bad_parameters():
    with pytest.raises(ValueError, match="low_score"):
        Tracker(low_score=0.5, high_score=0.4)
    with pytest.raises(ValueError, match="unknown Tracker parameter"):
        Tracker(bogus=1)


def test_someone_entering_where_another_just_left_gets_a_new_id():
    tracker = Tracker()
    ids = []
    for k in range(20):  # walks right, last seen at x 597 at 3.8 s (predicted at 617 next)
        ids.append({t.id for t in tracker.update([person(217 + 100 * k * 0.2, 204)], k * 0.2)})
    # the next frame: gone, and someone steps in 21 px behind and 44 px lower, walking left
    # (centres 0.49 heights apart: only the overlap rule of the third stage tells them apart)
    for k in range(20, 30):
        out = tracker.update([person(596 - 100 * (k - 20) * 0.2, 248)], k * 0.2)
        ids.append({t.id for t in out})
    assert set().union(*ids[:20]) == {1} and set().union(*ids[21:]) == {2}


def test_an_abrupt_fall_keeps_the_track():
    tracker = Tracker()
    ids = set()
    for k in range(12):  # upright, then in one frame lying (the detector ran on no frame between)
        det = person(300, 300) if k < 5 else person(330, 300, h=40, w=110)
        ids |= {tr.id for tr in tracker.update([det], k * 0.2)}
    assert ids == {1} and tracker.tracks[0].aspect > 2.0
