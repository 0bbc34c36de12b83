"""vad_eval: the evaluation command, its metrics, and parity with the live loop."""

import json
import threading

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from inference.detectors import MotionDetector
from inference.e2e import Callbacks, E2ESystem
from inference.evaluation import evaluate, roc_auc
from inference.sources import open_source
from tests.conftest import dataset


def test_roc_auc_matches_the_definition():
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert roc_auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert roc_auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5
    rng = np.random.default_rng(0)
    s, y = rng.random(200), rng.random(200) > 0.5
    pairs = [(a > b) + 0.5 * (a == b) for a in s[y] for b in s[~y]]
    assert roc_auc(s, y) == pytest.approx(np.mean(pairs))
    assert np.isnan(roc_auc([1, 2], [1, 1]))


def test_the_live_loop_and_vad_eval_give_the_same_scores():
    clip = dataset("ucsd-ped1/videos/testing/Test001.mp4")

    class Scores(Callbacks):
        def __init__(self):
            self.values = []

        def on_score(self, camera_id, timestamp, result):
            self.values.append(result.score)

    live = Scores()
    config = {"id": 1, "threshold": 0.5, "analysis_fps": 10, "analysis_width": 360, "event_close_seconds": 3}
    system = E2ESystem(config, source=open_source(str(clip)), detector=MotionDetector(), agent=_NoAgent(),
                       callbacks=live, realtime=False)
    system.run(threading.Event())

    offline = []
    from inference.e2e import analysis_frame

    detector = MotionDetector()
    with open_source(str(clip)) as source:
        while (frame := source.read()) is not None:
            offline.append(detector.score(analysis_frame(frame.image, 360), frame.timestamp).score)
    assert len(live.values) == len(offline) == 200
    assert live.values == offline


class _NoAgent:
    def decide(self, episode):
        from inference.base import Decision

        return Decision("low", ["record"], ["test"], "test")


@pytest.mark.django_db
def test_vad_eval_prints_a_table_and_a_json_summary(capsys):
    root = dataset("ucsd-ped1")
    call_command("vad_eval", str(root), "--clips", "2", "--train-clips", "2")
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:3] == ["clip", "frames", "anom"]
    assert lines[1].startswith("Test001") and lines[2].startswith("Test002")
    summary = json.loads(lines[-1])
    assert set(summary) >= {"detector", "frames", "auc_causal", "auc_per_clip", "false_alarm_rate", "recall",
                            "ms_per_frame", "train_seconds"}
    assert summary["detector"] == "motion" and summary["frames"] == 400
    assert 0.5 < summary["auc_causal"] <= 1.0 and summary["ms_per_frame"] > 0


@pytest.mark.django_db
@pytest.mark.parametrize("args,message", [
    (["/nonexistent"], "layout"),
    (["{root}", "--params", "{bad"], "not valid JSON"),
    (["{root}", "--params", "[1]"], "JSON object"),
    (["{root}", "--detector", "nope"], "Unknown detector"),
    (["{root}", "--params", '{"no_such": 1}'], "Bad --params"),
])
def test_vad_eval_bad_input_gets_a_clear_error(args, message):
    root = dataset("ucsd-ped1")
    with pytest.raises(CommandError, match=message):
        call_command("vad_eval", *[a.replace("{root}", str(root)) for a in args])


def test_evaluate_learns_from_training_clips_first():
    root = dataset("ucsd-ped1")
    detector = MotionDetector()
    result = evaluate(root, detector, name="motion", threshold=0.5, max_clips=1, max_train=2)
    assert detector.frames_learned > 0 and result.train_seconds > 0
    assert len(result.clips) == 1 and len(result.clips[0].scores) == 200
