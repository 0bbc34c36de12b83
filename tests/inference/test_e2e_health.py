"""The camera loop (E2ESystem) turns camera health conditions into events: a covered stream is one
camera_health event, ended when uncovered, and the scene events it would have caused are suppressed.

Real footage (the PETS walkway of ../shared/datasets, skipped with the reason where absent), covered
with a black cloth from 35 s to 50 s; a scripted scene detector that fires on the covered frames
(as a motion detector does) and once on purpose at 25 s (to show scene events still flow).
"""

import threading

import numpy as np
import pytest

from bench import health as hb
from inference.agent import RulePolicy
from inference.base import DetectorResult, Frame, FrameSource
from inference.e2e import HEALTH_KIND, Callbacks, E2ESystem

COVER = (35.0, 50.0)


class Walkway(FrameSource):
    """vtest.avi from 20 s, covered during COVER; media time; ``now`` is the clock of the test."""

    is_live = False

    def __init__(self):
        super().__init__("file:///vtest.avi")
        self.now = 0.0

    @property
    def native_fps(self):
        return 10.0

    def open(self):
        self.frames = hb.clip_frames(hb.VTEST, start=20.0)

    def read(self):
        item = next(self.frames, None)
        if item is None:
            return None
        image, ts = item
        if COVER[0] <= ts < COVER[1]:
            image = hb.tamper(image, "covered_black")
        self.now = 1_000_000.0 + ts
        return Frame(image, ts, int(round(ts * 10)))


class SceneScript:
    """Scores 0.9 on covered frames (the left of the frame black) and from 25 s to 26 s; else 0.1."""

    def __init__(self):
        self.resets = 0

    def score(self, gray, ts):
        covered = float(np.mean(gray[:, : gray.shape[1] // 2])) < 5
        return DetectorResult(score=0.9 if covered or 25.0 <= ts < 26.0 else 0.1)

    def reset(self):
        self.resets += 1


class Recorder(Callbacks):
    def __init__(self):
        self.events = []

    def on_event(self, camera_id, record):
        self.events.append(record)


def run(health_config):
    src = Walkway()
    recorder, detector = Recorder(), SceneScript()
    config = {"id": 5, "name": "Walkway", "threshold": 0.5, "analysis_fps": 10, "analysis_width": 360,
              "event_close_seconds": 1.0}
    if health_config is not None:
        config["health"] = health_config
    system = E2ESystem(config, source=src, detector=detector, agent=RulePolicy(), callbacks=recorder,
                       realtime=False, clock=lambda: src.now, offline_after=None)
    system.run(threading.Event())
    return system, recorder.events, detector


@pytest.fixture(scope="module")
def state():
    if not hb.VTEST.exists():
        pytest.skip(f"real footage {hb.VTEST} is not present (../shared/datasets is absent in this clone)")
    return hb.fitted("pets-walkway").state_dict()


def _by_id(events):
    out = {}
    for record in events:
        out.setdefault(record["id"], []).append(record)
    return out


def _ts(iso_text):
    from datetime import datetime

    return datetime.fromisoformat(iso_text).timestamp() - 1_000_000.0


def test_a_covered_stream_is_one_health_event_and_scene_events_are_suppressed(state):
    system, events, detector = run({"state": state})
    health = [r for r in events if r["details"].get("kind") == HEALTH_KIND]
    scene = [r for r in events if r["details"].get("kind") != HEALTH_KIND]
    assert len(_by_id(health)) == 1  # exactly one camera_health event...
    opened, closed = health[0], health[-1]
    assert len(health) == 2 and opened["id"] == closed["id"]  # ...recorded at its start, updated at its end
    assert opened["details"]["condition"] == "covered" and opened["severity"] == "high"
    assert opened["decision"]["policy"] == "system"
    assert opened["decision"]["actions"] == ["record", "notify", "alert_now"]
    assert opened["details"]["measurements"]["covered"] >= 0.6
    assert opened["ended_at"] is None and opened["description"].startswith("Walkway: Camera view covered:")
    assert COVER[0] <= _ts(opened["started_at"]) <= COVER[0] + 1.0
    assert closed["ended_at"] is not None and COVER[1] <= _ts(closed["ended_at"]) <= COVER[1] + 6.0
    assert abs(closed["details"]["seconds"] - (COVER[1] - COVER[0])) <= 1.0
    assert "no longer covered (lasted" in closed["description"]
    # The scene event at 25 s is there; none started while the camera was covered.
    starts = sorted({_ts(r["started_at"]) for r in scene})
    assert starts and all(not (COVER[0] <= t <= COVER[1] + 6.0) for t in starts), starts
    assert any(25.0 <= t < 26.0 for t in starts)
    snap = system.stats_snapshot()
    assert snap["scene_suppressed"] >= (COVER[1] - COVER[0]) * 10 * 0.9  # every covered frame
    assert snap["health"] == {"learning": False, "active": [], "ms": snap["health"]["ms"]}
    assert detector.resets >= 1  # no motion measured across the uncovering


def test_without_health_the_cover_is_a_scene_event_and_nothing_is_suppressed(state):
    system, events, _ = run({"enabled": False})
    assert not [r for r in events if r["details"].get("kind") == HEALTH_KIND]
    starts = {_ts(r["started_at"]) for r in events}
    assert any(COVER[0] <= t < COVER[1] for t in starts)
    assert system.stats_snapshot()["scene_suppressed"] == 0 and system.stats_snapshot()["health"] is None


def test_health_parameters_come_from_the_camera_config_and_unknown_ones_are_refused(state):
    with pytest.raises(ValueError, match="covred_share"):
        E2ESystem({"id": 1, "health": {"covred_share": 0.5}}, source=Walkway(), detector=SceneScript(),
                  agent=RulePolicy())
    system = E2ESystem({"id": 1, "health": {"confirm_seconds": 1.0, "state": state}}, source=Walkway(),
                       detector=SceneScript(), agent=RulePolicy())
    assert system.health.params["confirm_seconds"] == 1.0 and system.health.fitted
    learning = E2ESystem({"id": 1}, source=Walkway(), detector=SceneScript(), agent=RulePolicy())
    assert learning.health is not None and not learning.health.fitted  # learns online
    bad = E2ESystem({"id": 1, "health": {"state": {"version": 99}}}, source=Walkway(), detector=SceneScript(),
                    agent=RulePolicy())
    assert not bad.health.fitted  # a state that does not load: logged, learns online
