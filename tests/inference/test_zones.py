"""Zones and masks: validation, ignored areas, forbidden and loitering rules, real footage.

Plain pytest functions except the make_detector test (settings only, no database). Tests on
the shared footage skip with a reason when ../shared/datasets is absent. No timing assertions.
"""

from __future__ import annotations

import inspect
import json

import cv2
import numpy as np
import pytest

from inference.base import Detector, DetectorResult
from inference.detectors import MotionDetector
from inference.e2e import analysis_images
from inference.demo import DemoSource
from inference.sources import open_source
from inference.zone_specs import DEFAULT_LOITER_SECONDS, DEFAULT_MIN_AREA, MAX_ZONES, parse_zones, validate_zones
from inference.zones import ZonedDetector, rasterise
from tests.conftest import dataset

W, H = 360, 240
SQUARE = 24


class Spy(Detector):
    """An inner detector that records what it reads and answers a fixed result."""

    name = "spy"

    def __init__(self, score=0.1, regions=(), **params):
        super().__init__(threshold=0.5, **params)
        self.fixed = score
        self.fixed_regions = list(regions)
        self.seen: list[np.ndarray] = []
        self.resets = 0

    def score(self, gray, timestamp):
        self.seen.append(gray.copy())
        return DetectorResult(score=self.fixed, regions=list(self.fixed_regions), details={"inner": "yes"})

    def reset(self):
        self.resets += 1


class FittingSpy(Spy):
    def fit(self, frames, fps=10.0):
        self.fitted = list(frames)
        self.fit_fps = fps
        return self


def background(seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(50, 150, (H, W)).astype(np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 2.0)


def scene(duration, fps, where, seed=0):
    """(frame, timestamp) of a static textured scene with a bright square at ``where(t)`` (x, y) or None."""
    bg = background(seed)
    for i in range(int(round(duration * fps))):
        t = i / fps
        img = bg.copy()
        pos = where(t)
        if pos is not None:
            x, y = int(pos[0]), int(pos[1])
            img[max(0, y):y + SQUARE, max(0, x):x + SQUARE] = 230
        yield img, t


def rect(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def crossing(t):
    """Appears at the left at t=4 s, crosses the frame at 40 px/s (leaves it at t=13 s)."""
    if t < 4:
        return None
    x = (t - 4) * 40.0
    return (x, 108) if x < W else None


FENCE = {"name": "fence", "kind": "forbidden", "points": rect(0.6, 0.2, 0.95, 0.8)}


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "value, message",
    [
        ("fence", "zones must be a list"),
        ({"name": "a"}, "zones must be a list"),
        ([1], "zones[0] must be an object"),
        ([{"kind": "ignore", "points": rect(0, 0, 1, 1)}], "zones[0]: needs a name"),
        ([{"name": "a", "kind": "maybe", "points": rect(0, 0, 1, 1)}], "zones[0] 'a': unknown kind 'maybe'"),
        ([{"name": "a", "kind": "ignore", "points": [[0, 0], [1, 1]]}], "zones[0] 'a': has 2 point(s)"),
        ([{"name": "a", "kind": "ignore", "points": [[0, 0]] * 51}], "has 51 point(s)"),
        ([{"name": "a", "kind": "ignore", "points": "0,0 1,1"}], "points must be a list"),
        ([{"name": "a", "kind": "ignore", "points": [[0, 0], [1.2, 0], [1, 1]]}],
         "point 1 [1.2, 0.0] is out of range"),
        ([{"name": "a", "kind": "ignore", "points": [[0, 0], [1, -0.1], [1, 1]]}], "out of range"),
        ([{"name": "a", "kind": "ignore", "points": [[0, 0], [1], [1, 1]]}], "point 1 must be [x, y]"),
        ([{"name": "a", "kind": "ignore", "points": [[0, 0], [True, 0], [1, 1]]}], "point 1 must be [x, y]"),
        ([{"name": "a", "kind": "ignore", "points": [[0, 0], [0.5, 0.5], [1, 1]]}], "no area"),
        ([{"name": "a", "kind": "ignore", "points": rect(0, 0, 1, 1)},
          {"name": "A ", "kind": "forbidden", "points": rect(0, 0, 1, 1)}], "zones[1] 'A': duplicate name"),
        ([{"name": f"z{i}", "kind": "ignore", "points": rect(0, 0, 1, 1)} for i in range(MAX_ZONES + 1)],
         f"too many zones ({MAX_ZONES + 1}); at most {MAX_ZONES}"),
        ([{"name": "a", "kind": "forbidden", "points": rect(0, 0, 1, 1), "loiter_seconds": 5}],
         "loiter_seconds applies to loiter zones only"),
        ([{"name": "a", "kind": "loiter", "points": rect(0, 0, 1, 1), "loiter_seconds": -5}], "loiter_seconds must be"),
        ([{"name": "a", "kind": "loiter", "points": rect(0, 0, 1, 1), "loiter_seconds": "long"}], "loiter_seconds must be"),
        ([{"name": "a", "kind": "forbidden", "points": rect(0, 0, 1, 1), "min_area": 0}], "min_area must be"),
        ([{"name": "a", "kind": "forbidden", "points": rect(0, 0, 1, 1), "min_area": 1.5}], "min_area must be"),
        ([{"name": "a", "kind": "ignore", "points": rect(0, 0, 1, 1), "min_area": 0.1}],
         "min_area applies to forbidden and loiter zones only"),
        ([{"name": "a", "kind": "ignore", "points": rect(0, 0, 1, 1), "colour": "red"}], "unknown field(s) colour"),
        # lines (tripwires)
        ([{"name": "gate", "kind": "line", "points": [[0.1, 0.1], [0.5, 0.5], [0.9, 0.1]]}],
         "zones[0] 'gate': has 3 point(s); a line needs exactly 2"),
        ([{"name": "gate", "kind": "line", "points": [[0.5, 0.5]]}], "zones[0] 'gate': has 1 point(s); a line needs"),
        ([{"name": "gate", "kind": "line", "points": [[0.5, 0.5], [0.5, 0.5]]}],
         "zones[0] 'gate': the line has (almost) no length"),
        ([{"name": "gate", "kind": "line", "points": [[0.5, 0.5], [0.502, 0.503]]}], "the line has (almost) no length"),
        ([{"name": "gate", "kind": "line", "points": [[0.5, 0.5], [1.5, 0.5]]}], "point 1 [1.5, 0.5] is out of range"),
        ([{"name": "gate", "kind": "line", "points": [[0, 0.5], [1, 0.5]], "direction": "north"}],
         "zones[0] 'gate': direction must be one of both, left, right, not 'north'"),
        ([{"name": "gate", "kind": "line", "points": [[0, 0.5], [1, 0.5]], "min_area": 0.1}],
         "zones[0] 'gate': min_area applies to forbidden and loiter zones only"),
        ([{"name": "gate", "kind": "line", "points": [[0, 0.5], [1, 0.5]], "loiter_seconds": 10}],
         "zones[0] 'gate': loiter_seconds applies to loiter zones only"),
        ([{"name": "fence", "kind": "forbidden", "points": rect(0, 0, 1, 1), "direction": "left"}],
         "zones[0] 'fence': direction applies to line zones only"),
    ],
)
def test_bad_zones_are_refused_naming_the_zone_and_the_problem(value, message):
    with pytest.raises(ValueError) as exc:
        validate_zones(value)
    assert message in str(exc.value)


def test_good_zones_get_their_defaults():
    validate_zones([])
    assert parse_zones(None) == [] and parse_zones([]) == []
    zones = parse_zones([
        {"name": " trees ", "kind": "ignore", "points": [[0, 0], [0.3, 0], [0.3, 0.2]]},
        {"name": "fence", "kind": "forbidden", "points": rect(0.6, 0.2, 0.95, 0.8), "min_area": 0.1},
        {"name": "door", "kind": "loiter", "points": rect(0, 0.5, 0.2, 1)},
        {"name": "bench", "kind": "loiter", "points": rect(0.4, 0.5, 0.5, 1), "loiter_seconds": 90},
    ])
    assert [z.name for z in zones] == ["trees", "fence", "door", "bench"]
    assert zones[0].loiter_seconds is None and zones[1].min_area == 0.1
    assert zones[2].loiter_seconds == DEFAULT_LOITER_SECONDS and zones[2].min_area == DEFAULT_MIN_AREA
    assert zones[3].loiter_seconds == 90.0


def test_rasterise_covers_the_polygon_in_frame_fractions():
    mask = rasterise(rect(0.5, 0.0, 1.0, 0.5), 100, 60)
    assert mask.shape == (60, 100) and mask.dtype == np.uint8
    assert abs(int(mask.sum()) - 50 * 30) <= 100
    assert mask[10, 80] == 1 and mask[10, 20] == 0 and mask[50, 80] == 0


def test_unknown_parameter_is_refused():
    with pytest.raises(ValueError, match="no_such"):
        ZonedDetector(Spy(), [FENCE], no_such=1)


# ----------------------------------------------------------------------------- forbidden


def run(detector, frames):
    return [(t, detector.score(img, t)) for img, t in frames]


def test_a_square_entering_a_forbidden_zone_fires_with_details_and_a_region():
    inner = Spy(score=0.1)
    detector = ZonedDetector(inner, [FENCE])
    results = run(detector, scene(17, 10, crossing))
    inside = [(t, r) for t, r in results if 10.0 <= t <= 12.0]  # the whole square is in the zone
    assert inside and all(r.score >= 0.9 for _, r in inside)
    for t, r in inside:
        hit = r.details["zones"][0]
        assert (hit["name"], hit["kind"], hit["active"]) == ("fence", "forbidden", True)
        assert hit["area"] >= DEFAULT_MIN_AREA
        assert r.details["inner"] == "yes"  # the inner details are kept
        x, y, w, h = r.regions[-1]
        sx = (t - 4) * 40.0
        assert x <= sx + SQUARE and x + w >= sx and y <= 108 + SQUARE and y + h >= 108  # around the square
    seconds = [r.details["zones"][0]["seconds"] for _, r in inside]
    assert seconds == sorted(seconds) and seconds[-1] > seconds[0] + 1.5
    # before it reaches the zone: the inner result, untouched
    before = [r for t, r in results if t < 8.5]
    assert all(r.score == 0.1 and "zones" not in r.details and r.regions == [] for r in before)
    # once it has left the frame: reported (not scored) for hold_seconds, then nothing
    after = [(t, r) for t, r in results if t >= 13.5]
    assert all(r.score == 0.1 for _, r in after)
    assert all(not r.details["zones"][0]["active"] for t, r in after if t < 15.0)
    assert all("zones" not in r.details for t, r in after if t > 16.5)
    assert len(inner.seen) == len(results)  # the inner detector scored every frame


def test_motion_outside_the_zone_changes_nothing():
    def wander(t):  # back and forth in the left half only
        return None if t < 4 else (abs((t * 40.0) % 300 - 150), 108)

    detector = ZonedDetector(Spy(score=0.2), [FENCE])
    results = run(detector, scene(30, 10, wander))
    assert all(r.score == 0.2 and "zones" not in r.details and not r.regions for _, r in results)


def test_zone_scores_follow_the_camera_threshold():
    assert ZonedDetector(Spy(), [FENCE]).scores == {"forbidden": 0.9, "loiter": 0.75, "line": 0.9}
    high = ZonedDetector(MotionDetector(threshold=0.7), [FENCE]).scores
    assert high["forbidden"] == pytest.approx(1.26) and high["loiter"] == pytest.approx(1.05)
    assert high["line"] == pytest.approx(1.26)  # a crossed line is raised like a forbidden zone
    assert ZonedDetector(Spy(), [FENCE], forbidden_score=0.6).scores["forbidden"] == 0.6
    assert ZonedDetector(Spy(), [FENCE], line_score=0.7).scores["line"] == 0.7


def test_a_lighting_change_is_not_presence():
    bg = background()

    def frames():
        for i in range(200):
            t = i / 10
            img = bg if t < 10 else cv2.add(bg, 60)
            yield img, t

    detector = ZonedDetector(Spy(score=0.0), [FENCE])
    assert all("zones" not in r.details for _, r in run(detector, frames()))


# ----------------------------------------------------------------------------- ignore


BAND = {"name": "road", "kind": "ignore", "points": rect(0.0, 0.35, 1.0, 0.65)}  # the square's path
TOP = {"name": "trees", "kind": "ignore", "points": rect(0.0, 0.0, 1.0, 0.2)}  # away from it


def test_an_ignored_area_hides_the_only_moving_thing_from_the_detector():
    frames = list(scene(20, 10, crossing))
    masked = ZonedDetector(MotionDetector(warmup_frames=5), [BAND])
    plain = MotionDetector(warmup_frames=5)
    masked_raw = [masked.score(img, t).details.get("raw", 0.0) for img, t in frames]
    plain_raw = [plain.score(img, t).details.get("raw", 0.0) for img, t in frames]
    assert max(plain_raw) > 0.1 and float(np.max(plain._model["p_act"])) > 0.0  # it does see the square
    assert max(masked_raw) == 0.0
    assert float(np.max(masked.inner._model["p_act"])) == 0.0  # no motion ever measured

    spy = Spy()
    detector = ZonedDetector(spy, [BAND])
    run(detector, frames[50:60])
    band = slice(int(0.35 * H) + 1, int(0.65 * H) - 1)
    assert all((seen[band] == 127).all() for seen in spy.seen)
    assert all((seen[:60] == frames[0][0][:60]).all() for seen in spy.seen)  # the rest is untouched


def test_regions_inside_ignored_areas_are_dropped():
    inside, outside = (100, 100, 30, 20), (10, 10, 30, 20)
    detector = ZonedDetector(Spy(regions=[inside, outside]), [BAND])
    assert detector.score(background(), 0.0).regions == [outside]


def test_fit_and_feedback_see_masked_frames_and_state_is_the_inner_state():
    detector = ZonedDetector(FittingSpy(), [BAND])
    frame = background()
    clip = np.stack([frame, frame])
    detector.fit([frame, None, clip], fps=5.0)
    fitted = detector.inner.fitted
    assert fitted[1] is None and detector.inner.fit_fps == 5.0
    assert (fitted[0][120] == 127).all() and all((f[120] == 127).all() for f in fitted[2])
    assert "fps" in inspect.signature(detector.fit).parameters  # inference.learning passes fps= when asked
    assert not hasattr(ZonedDetector(Spy(), [BAND]), "fit")  # only what the inner detector offers
    assert not hasattr(ZonedDetector(Spy(), [BAND]), "feedback")

    motion = MotionDetector(warmup_frames=5)
    zoned = ZonedDetector(motion, [BAND])
    for img, t in scene(3, 10, crossing):
        zoned.score(img, t)
    assert zoned.state_dict() == motion.state_dict() and zoned.name == "motion"
    zoned.reset()
    assert motion._prev is None


def test_colour_detectors_get_masked_colour_frames():
    class ColourSpy(Spy):
        wants_color = True

    spy = ColourSpy()
    detector = ZonedDetector(spy, [TOP, FENCE])
    assert detector.wants_color
    for img, t in scene(12, 10, crossing):
        result = detector.score(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR), t)
    assert spy.seen[-1].shape == (H, W, 3) and (spy.seen[-1][:40] == 127).all()
    assert result.details["zones"][0]["name"] == "fence"


# ----------------------------------------------------------------------------- loitering


def loiterer(absent=None):
    """Walks in at t=5 s and stays in x 250-280 (small steps) until t=40 s; ``absent`` (t0, t1) hides it."""
    def where(t):
        if t < 2 or t > 40 or (absent and absent[0] <= t < absent[1]):
            return None
        if t < 5:
            return (150 + (t - 2) * 35.0, 108)
        return (255 + 6 * np.sin(t), 108 + 4 * np.cos(0.7 * t))
    return where


LOBBY = {"name": "entrance", "kind": "loiter", "points": rect(0.6, 0.2, 0.95, 0.8), "loiter_seconds": 10}


def first_firing(results):
    return next((t for t, r in results if any(z["active"] for z in r.details.get("zones", []))), None)


def test_loitering_is_measured_in_frame_timestamps():
    fired = {}
    for fps in (5.0, 12.5):
        results = run(ZonedDetector(Spy(score=0.0), [LOBBY]), scene(47, fps, loiterer()))
        fired[fps] = first_firing(results)
        entered = next(t for t, _ in results if t >= 2 and loiterer()(t)[0] + SQUARE >= 0.6 * W)
        assert fired[fps] is not None and 10.0 < fired[fps] - entered < 11.5
        hits = [r for t, r in results if 25 <= t <= 39]
        assert all(r.score == 0.75 and r.details["zones"][0]["kind"] == "loiter" for r in hits)
        assert all(r.details["zones"][0]["seconds"] > 10 for r in hits)
        assert all("zones" not in r.details for t, r in results if t > 45.5)  # 2 s gap + 3 s hold after it left
    assert abs(fired[5.0] - fired[12.5]) < 0.5  # the same moment, whatever the analysis rate


def test_short_gaps_do_not_break_loitering_long_ones_do():
    results = run(ZonedDetector(Spy(score=0.0), [LOBBY]), scene(40, 5, loiterer(absent=(12.0, 13.0))))
    assert 13.0 < first_firing(results) < 15.0  # about 10 s after entering (t=3.2 s), the 1 s gap tolerated
    results = run(ZonedDetector(Spy(score=0.0), [LOBBY]), scene(40, 5, loiterer(absent=(12.0, 18.0))))
    assert 27.5 < first_firing(results) < 29.5  # the timer restarted on return at 18 s


def test_a_jump_in_time_restarts_the_timers():
    detector = ZonedDetector(Spy(score=0.0), [LOBBY])
    frames = list(scene(40, 5, loiterer()))
    results = run(detector, frames[:100])  # up to 20 s: loitering
    assert results[-1][1].details["zones"][0]["active"]
    detector.reset()
    again = [(t, detector.score(img, t)) for img, t in frames[100:]]  # t goes on from 20 s after a cut
    assert first_firing(again) >= 30.0


# ----------------------------------------------------------------------------- the demo scene


def test_demo_forbidden_area_is_caught_and_nothing_else():
    fps, width, height = 5, 360, 202
    source = DemoSource(f"demo://?seed=3&anomaly_every=15&width={width}&height={height}&fps={fps}")
    source.open()
    x0, y0, x1, y1 = source.zone
    lawn = {"name": "lawn", "kind": "forbidden",
            "points": rect(x0 / width, y0 / height, x1 / width, y1 / height)}
    detector = ZonedDetector(Spy(score=0.0), [lawn])
    fired = []
    for _ in range(150 * fps):
        frame = source.read()
        fired.append((frame.timestamp, detector.score(cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY),
                                                      frame.timestamp).score >= 0.9))
    intervals = source.anomaly_intervals(150)
    forbidden = [(s, e) for s, e, kind in intervals if kind == "forbidden_area"]
    assert len(forbidden) >= 2
    for s, e in forbidden:
        assert any(f for t, f in fired if s <= t <= e), f"the forbidden-area anomaly at {s:.0f} s was missed"
    outside = [f for t, f in fired if not any(s - 1 <= t <= e + 1 for s, e, _ in intervals)]
    assert not any(outside)


# ----------------------------------------------------------------------------- real footage


@pytest.fixture(scope="module")
def walkway():
    path = dataset("pets-walkway/vtest.avi")
    frames = []
    with open_source(str(path)) as source:
        while (frame := source.read()) is not None and len(frames) < 400:
            frames.append((analysis_images(frame.image, 360)[1], frame.timestamp))
    return frames


def test_forbidden_part_of_the_walkway_fires_on_real_footage(walkway):
    zones = [
        {"name": "walkway", "kind": "forbidden", "points": rect(0.35, 0.3, 0.85, 0.6)},
        {"name": "facade", "kind": "forbidden", "points": rect(0.42, 0.0, 0.75, 0.18)},  # nobody goes there
    ]
    detector = ZonedDetector(MotionDetector(), zones)
    results = [detector.score(img, t) for img, t in walkway]
    hits = [r for r in results if any(z["active"] for z in r.details.get("zones", []))]
    assert len(hits) > 0.8 * len(walkway)  # people walk there all the time
    names = {z["name"] for r in hits for z in r.details["zones"]}
    assert names == {"walkway"}
    assert all(r.score >= 0.9 and r.regions for r in hits)
    h, w = walkway[0][0].shape
    x, y, bw, bh = hits[-1].regions[-1]
    assert 0.3 * w <= x + bw and x <= 0.85 * w and 0.25 * h <= y + bh and y <= 0.6 * h


def test_ignoring_the_whole_frame_keeps_motion_at_zero_on_real_footage(walkway):
    everything = [{"name": "all", "kind": "ignore", "points": rect(0, 0, 1, 1)}]
    masked = ZonedDetector(MotionDetector(), everything)
    plain = MotionDetector()
    masked_results = [masked.score(img, t) for img, t in walkway]
    plain_raw = [plain.score(img, t).details.get("raw", 0.0) for img, t in walkway]
    assert max(r.score for r in masked_results) < 0.01
    assert max(r.details.get("raw", 0.0) for r in masked_results) == 0.0
    assert max(plain_raw) > 1.0  # the same footage does move


# ----------------------------------------------------------------------------- registry


def test_make_detector_wraps_a_camera_with_zones_and_its_state_round_trips(tmp_path):
    from inference.registry import make_detector

    config = {"detector": "motion", "threshold": 0.5, "detector_params": {"warmup_frames": 5},
              "zones": [TOP, FENCE]}
    detector = make_detector(config)
    assert isinstance(detector, ZonedDetector) and isinstance(detector.inner, MotionDetector)
    assert not isinstance(make_detector({**config, "zones": []}), ZonedDetector)
    results = run(detector, scene(12, 10, crossing))
    assert any(r.details.get("zones") for _, r in results)
    state = detector.state_dict()
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state))
    restored = make_detector({**config, "detector_state_path": str(path)})
    assert isinstance(restored, ZonedDetector) and restored.state_dict() == state
    fresh = make_detector(config)
    fresh.load_state_dict(json.loads(path.read_text()))
    assert fresh.state_dict() == state


# ----------------------------------------------------------------------------- through the loop


def test_a_forbidden_zone_hit_becomes_a_high_event_naming_the_zone():
    from inference.agent import RulePolicy
    from inference.e2e import Callbacks, E2ESystem

    class Recorder(Callbacks):
        def __init__(self):
            self.records = []

        def on_event(self, camera_id, record):
            self.records.append(record)

    source = DemoSource("demo://?seed=3&anomaly_every=15&fps=5")
    source.open()
    x0, y0, x1, y1 = source.zone
    lawn = {"name": "lawn", "kind": "forbidden",
            "points": rect(x0 / source.width, y0 / source.height, x1 / source.width, y1 / source.height)}
    recorder = Recorder()
    config = {"id": 1, "threshold": 0.5, "analysis_fps": 5, "analysis_width": 360, "event_close_seconds": 3}
    system = E2ESystem(config, source=source, detector=ZonedDetector(Spy(score=0.0), [lawn]), agent=RulePolicy(),
                       callbacks=recorder, realtime=False)
    for _ in range(70 * 5):  # the first forbidden-area anomaly is at about 60 s
        system.process(source.read())
    system.close_episode()
    closed = [r for r in recorder.records if r["ended_at"]]
    assert closed
    record = closed[0]
    assert record["severity"] == "high" and "alert_now" in record["decision"]["actions"]
    assert any("in forbidden zone 'lawn'" in reason for reason in record["decision"]["reasons"])
    assert record["details"]["detector_details"]["zones"][0]["name"] == "lawn"
    assert record["details"]["regions"]  # where it happened, in source pixels


class LabelSpy(Spy):
    """An inner detector that reports one object (label and box in frame pixels) following the square."""

    def __init__(self, label, where, **params):
        super().__init__(score=0.1, **params)
        self.label, self.where = label, where

    def score(self, gray, timestamp):
        result = super().score(gray, timestamp)
        pos = self.where(timestamp)
        objects = [] if pos is None else [{"id": 1, "label": self.label, "score": 0.8,
                                          "box": [pos[0], pos[1], pos[0] + SQUARE, pos[1] + SQUARE]}]
        return DetectorResult(score=result.score, regions=result.regions, details={**result.details, "objects": objects})


def test_a_zone_for_people_fires_for_a_person_not_for_a_cat_and_names_who_is_in_it():
    zone = {**FENCE, "classes": ["person"]}
    where = lambda t: crossing(t) and (crossing(t)[0], crossing(t)[1])  # noqa: E731
    person = run(ZonedDetector(LabelSpy("person", where), [zone]), scene(17, 10, crossing))
    cat = run(ZonedDetector(LabelSpy("cat", where), [zone]), scene(17, 10, crossing))
    inside = [r for t, r in person if 10.0 <= t <= 12.0]
    assert inside and all(r.score >= 0.9 and r.details["zones"][0]["labels"] == ["person"] for r in inside)
    assert all(r.score == 0.1 for t, r in cat if 10.0 <= t <= 12.0)  # something is there, but not a person
    plain = run(ZonedDetector(LabelSpy("cat", where), [FENCE]), scene(17, 10, crossing))  # no classes: anything
    assert all(r.score >= 0.9 and r.details["zones"][0]["labels"] == ["cat"] for t, r in plain if 10.0 <= t <= 12.0)


def test_zone_classes_are_checked():
    with pytest.raises(ValueError, match="classes apply to forbidden and loiter zones only"):
        validate_zones([{**FENCE, "kind": "ignore", "classes": ["person"]}])
    with pytest.raises(ValueError, match="classes must be a list"):
        validate_zones([{**FENCE, "classes": "person"}])
    assert parse_zones([{**FENCE, "classes": ["Person", "car"]}])[0].classes == ("car", "person")


# ----------------------------------------------------------------------------- tracked objects


class TracksSpy(Spy):
    """An inner detector that follows several objects: ``tracks`` = [(id, label, where)], boxes in frame pixels
    (the square at ``where(t)``, its feet at the bottom centre); ``error`` as an objects detector without model."""

    def __init__(self, tracks, error=None, **params):
        super().__init__(score=0.1, **params)
        self.tracks, self.error = list(tracks), error

    def score(self, gray, timestamp):
        result = super().score(gray, timestamp)
        objects = []
        for track, label, where in self.tracks:
            pos = None if self.error else where(timestamp)
            if pos is not None:
                x, y = float(pos[0]), float(pos[1])
                objects.append({"id": track, "label": label, "score": 0.8, "box": [x, y, x + SQUARE, y + SQUARE],
                                "speed_rel": 0.0, "since": 0.0})
        details = {**result.details, "objects": objects}
        if self.error:
            details["objects_error"] = self.error
        return DetectorResult(score=result.score, regions=result.regions, details=details)


def anywhere(*wheres):
    """One square on screen: wherever the first of ``wheres`` that has one puts it."""
    return lambda t: next((p for p in (w(t) for w in wheres) if p is not None), None)


def active(results, name=None):
    """(t, hit) of every active zone hit (of zone ``name``)."""
    return [(t, z) for t, r in results for z in r.details.get("zones", [])
            if z["active"] and (name is None or z["name"] == name)]


# A vertical tripwire drawn top to bottom: its left is the screen's right, so "left" = walking west to east.
GATE = {"name": "gate", "kind": "line", "points": [[0.5, 0.1], [0.5, 0.9]]}
GATE_UP = {"name": "gate", "kind": "line", "points": [[0.5, 0.9], [0.5, 0.1]]}  # the same, drawn bottom to top


def westward(t):
    """``crossing`` the other way: from the right at t=4 s to the left edge."""
    pos = crossing(t)
    return None if pos is None else (W - SQUARE - pos[0], pos[1])


def test_line_specs_parse_with_their_defaults():
    zones = parse_zones([GATE, {"name": "door", "kind": "line", "points": [[0, 0.5], [1, 0.5]],
                                "direction": "right", "classes": ["Person"]}])
    assert zones[0].kind == "line" and zones[0].points == ((0.5, 0.1), (0.5, 0.9))
    assert zones[0].direction == "both" and zones[0].classes == () and zones[0].loiter_seconds is None
    assert zones[1].direction == "right" and zones[1].classes == ("person",)
    assert parse_zones([FENCE])[0].direction is None


def test_a_person_crossing_a_line_fires_once_with_the_direction_and_the_label():
    detector = ZonedDetector(TracksSpy([(7, "person", crossing)]), [GATE])
    results = run(detector, scene(17, 10, crossing))
    fired = active(results)
    assert len(fired) == 1  # once per crossing
    t0, hit = fired[0]
    assert 8.2 < t0 < 8.5  # the feet (x + 12) pass x = 180 (plus the 1 % margin) at t = 8.3 s
    assert hit == {"name": "gate", "kind": "line", "rule": "line", "track": 7, "labels": ["person"],
                   "direction": "left", "active": True, "seconds": 0, "area": 0}
    at = dict(results)
    assert at[t0].score == 0.9 and at[t0].details["inner"] == "yes"
    x, y, w, h = at[t0].regions[-1]
    assert (x, y, w, h) == (int((t0 - 4) * 40), 108, SQUARE, SQUARE)  # the object that crossed
    assert all(r.score == 0.1 for t, r in results if t != t0)  # one frame raised, no more
    held = [r.details["zones"][0] for t, r in results if t0 < t <= t0 + 2.9]
    assert held and all(z == {**hit, "active": False} for z in held)  # still named for hold_seconds
    assert all("zones" not in r.details for t, r in results if t < t0 or t > t0 + 3.1)


def test_line_directions_are_the_side_crossed_to_seen_from_the_first_point():
    def fired(zone, where):
        results = run(ZonedDetector(TracksSpy([(1, "person", where)]), [zone]), scene(17, 10, where))
        return [hit["direction"] for _, hit in active(results)]

    assert fired(GATE, crossing) == ["left"] and fired(GATE, westward) == ["right"]
    assert fired(GATE_UP, crossing) == ["right"] and fired(GATE_UP, westward) == ["left"]  # drawn the other way
    assert fired({**GATE, "direction": "left"}, crossing) == ["left"]
    assert fired({**GATE, "direction": "left"}, westward) == []  # the other way: nothing
    assert fired({**GATE, "direction": "right"}, crossing) == []
    assert fired({**GATE, "direction": "both"}, westward) == ["right"]
    # a horizontal line drawn left to right: its left is up the screen
    across = {"name": "kerb", "kind": "line", "points": [[0.1, 0.5], [0.9, 0.5]], "direction": "left"}
    assert fired(across, lambda t: (150, 200 - 20 * t)) == ["left"]  # walking up: feet pass y = 120
    assert fired(across, lambda t: (150, 20 * t)) == []  # walking down


def test_a_cat_does_not_cross_a_line_for_people_and_motion_alone_crosses_nothing():
    people = {**GATE, "classes": ["person"]}
    cat = run(ZonedDetector(TracksSpy([(1, "cat", crossing)]), [people]), scene(17, 10, crossing))
    assert not active(cat) and all(r.score == 0.1 for _, r in cat)
    anything = run(ZonedDetector(TracksSpy([(1, "cat", crossing)]), [GATE]), scene(17, 10, crossing))
    assert [hit["labels"] for _, hit in active(anything)] == [["cat"]]
    # line crossing needs the objects detector: no tracks, no crossing (the square does cross)
    motion = run(ZonedDetector(Spy(score=0.1), [GATE]), scene(17, 10, crossing))
    assert all("zones" not in r.details and r.score == 0.1 for _, r in motion)
    missing = run(ZonedDetector(TracksSpy([(1, "person", crossing)], error="no model"), [GATE]),
                  scene(17, 10, crossing))
    assert not active(missing)


def test_back_and_forth_fires_every_valid_crossing_once():
    def pacing(t):  # feet swing 100 px either side of the line (x = 180): through it at t = 5, 10, 15, 20, 25 s
        return (180 - SQUARE / 2 + 100 * np.sin(2 * np.pi * t / 10), 108)

    def crossings(direction):
        zone = {**GATE, "direction": direction}
        results = run(ZonedDetector(TracksSpy([(3, "person", pacing)]), [zone]), scene(30, 10, pacing))
        return [(round(t), hit["direction"]) for t, hit in active(results)]

    assert crossings("both") == [(5, "right"), (10, "left"), (15, "right"), (20, "left"), (25, "right")]
    assert crossings("left") == [(10, "left"), (20, "left")]  # eastwards only, each once
    assert crossings("right") == [(5, "right"), (15, "right"), (25, "right")]


def test_jitter_on_the_line_and_passing_beyond_its_end_are_no_crossings():
    def jitter(t):  # stands on the line, the box shaking 2 px either way
        return (180 - SQUARE / 2 + 2 * np.sin(7 * t), 108)

    results = run(ZonedDetector(TracksSpy([(1, "person", jitter)]), [GATE]), scene(20, 10, jitter))
    assert not active(results)
    short = {**GATE, "points": [[0.5, 0.6], [0.5, 0.9]]}  # ends below the square's path (feet at y = 132)
    results = run(ZonedDetector(TracksSpy([(1, "person", crossing)]), [short]), scene(17, 10, crossing))
    assert not active(results)

    def around(t):  # east above the short line's end, then back west across it
        return crossing(t) if t < 12 else (W - SQUARE - (t - 12) * 40.0, 180)

    results = run(ZonedDetector(TracksSpy([(1, "person", around)]), [short]), scene(20, 10, around))
    assert [hit["direction"] for _, hit in active(results)] == ["right"]  # it was on the east side: crossing back


def test_two_people_crossing_together_are_both_in_the_hit():
    lower = lambda t: crossing(t) and (crossing(t)[0], crossing(t)[1] + 60)  # noqa: E731
    detector = ZonedDetector(TracksSpy([(1, "person", crossing), (2, "bicycle", lower)]), [GATE])
    fired = active(run(detector, scene(17, 10, crossing)))
    assert len(fired) == 1 and fired[0][1]["labels"] == ["bicycle", "person"] and fired[0][1]["track"] == 1


def test_lines_leave_ignore_zones_alone_and_work_beside_the_other_zones():
    spy = TracksSpy([(1, "person", crossing)])
    detector = ZonedDetector(spy, [TOP, FENCE, GATE])
    results = run(detector, scene(17, 10, crossing))
    assert all((seen[:40] == 127).all() for seen in spy.seen)
    names = [hit["name"] for _, hit in active(results)]
    assert names.count("gate") == 1 and names.count("fence") > 10


# ----------------------------------------------------------------------------- loitering per object


STAY = {"name": "entrance", "kind": "loiter", "points": rect(0.6, 0.2, 0.95, 0.8), "loiter_seconds": 30}


def standing(t0, t1):
    """Walks into the zone at t0 (from the left, 1 s) and stands at x about 255 until t1."""
    def where(t):
        if t < t0 or t >= t1:
            return None
        if t < t0 + 1:
            return (150 + (t - t0) * 105.0, 108)
        return (255 + 6 * np.sin(t), 108 + 4 * np.cos(0.7 * t))
    return where


def test_one_person_standing_past_loiter_seconds_fires_naming_its_track():
    where = standing(2, 37)  # 35 s there
    results = run(ZonedDetector(TracksSpy([(42, "person", where)]), [STAY]), scene(45, 5, where))
    fired = active(results)
    assert fired and 32.0 < fired[0][0] < 33.5  # 30 s after its feet entered the zone (t = 2.6 s)
    for t, hit in fired:
        assert hit["track"] == 42 and hit["labels"] == ["person"] and hit["kind"] == "loiter"
        assert 30.0 < hit["seconds"] <= t - 2.4
    at = dict(results)
    assert at[35.0].score == 0.75
    x, y, w, h = at[35.0].regions[-1]
    assert (w, h) == (SQUARE, SQUARE) and 240 <= x <= 270  # the object that loiters
    last = fired[-1][0]
    assert 37.0 <= last <= 39.2  # it left at 37 s; gap_seconds (2) later it is over
    held = [r.details["zones"][0] for t, r in results if last < t <= last + 2.9]
    assert held and all(z["track"] == 42 and z["labels"] == ["person"] and not z["active"] for z in held)
    assert all("zones" not in r.details for t, r in results if t > last + 3.1)


def test_two_people_one_after_the_other_do_not_add_up_to_a_loitering():
    first, second = standing(2, 22), standing(22.4, 42.4)  # 20 s each, 0.4 s apart: the zone never empties
    where = anywhere(first, second)
    tracked = run(ZonedDetector(TracksSpy([(1, "person", first), (2, "person", second)]), [STAY]),
                  scene(47, 5, where))
    assert not active(tracked) and all(r.score == 0.1 for _, r in tracked)
    # the same footage without tracks: continuous foreground presence, as before (that is why tracks are better)
    motion = run(ZonedDetector(Spy(score=0.1), [STAY]), scene(47, 5, where))
    fired = active(motion)
    assert fired and 32.0 < fired[0][0] < 34.0 and "track" not in fired[0][1] and "labels" not in fired[0][1]
    # an objects detector without its model follows nothing: foreground presence too
    missing = run(ZonedDetector(TracksSpy([(1, "person", first)], error="no model"), [STAY]), scene(47, 5, where))
    assert first_firing(missing) == first_firing(motion)


def test_per_object_loitering_tolerates_short_gaps_and_respects_classes():
    where = standing(2, 50)

    def hidden(a, b):  # the detector loses the object between a and b (the square stays on screen)
        return lambda t: None if a <= t < b else where(t)

    def fired(track_where, label="person", zone=STAY):
        return first_firing(run(ZonedDetector(TracksSpy([(5, label, track_where)]), [zone]), scene(55, 5, where)))

    assert 32.0 < fired(hidden(12.0, 13.5)) < 33.5  # lost for 1.5 s: its time goes on
    assert 45.0 < fired(hidden(12.0, 15.0)) < 45.5  # lost for 3 s: its time restarted at 15 s
    people = {**STAY, "classes": ["person"]}
    assert fired(where, "dog", people) is None  # a dog standing there is not what the zone is about
    assert 32.0 < fired(where, "dog") < 33.5  # without classes: anything tracked
