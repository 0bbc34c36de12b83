"""An event carries its objects: labels, tracks, best crops, the strongest terms, boxes on the peak frame."""

import threading
import uuid

import numpy as np

from inference.agent import RulePolicy
from inference.base import Detector, DetectorResult, Frame, FrameSource
from inference.e2e import Callbacks, E2ESystem


class Script(Detector):
    """Scores and objects as scripted by the frame index (``image[0, 0, 0]``)."""

    wants_color = True

    def score(self, image, timestamp):
        i = int(image[0, 0, 0])
        anomalous = 5 <= i < 12
        objects = [{"id": 1, "label": "person", "score": 0.7, "box": [10, 10, 30, 60], "speed_rel": 0.8,
                    "since": 0.0}]
        terms = []
        if anomalous:
            objects.append({"id": 7, "label": "bicycle", "score": 0.5 + i / 100, "box": [60, 20, 100, 50],
                            "speed_rel": 2.0, "since": 0.5})
            terms = [{"term": "rare_class", "track": 7, "label": "bicycle", "value": 0.9,
                      "explain": "bicycle on a spot where 0 were seen in 2,550 learned frames",
                      "numbers": {"seen": 0, "frames": 2550}}]
        return DetectorResult(score=0.9 if anomalous else 0.1, details={"objects": objects, "object_terms": terms})


class Frames(FrameSource):
    def __init__(self, n=20):
        super().__init__("demo://")
        self.i = 0
        self.n = n

    def open(self):
        pass

    def read(self):
        if self.i >= self.n:
            return None
        image = np.full((120, 160, 3), self.i, np.uint8)
        self.i += 1
        return Frame(image, self.i / 5.0, self.i)


class Recorder(Callbacks):
    def __init__(self):
        self.events = []

    def on_event(self, camera_id, record):
        self.events.append(record)


def test_the_event_record_names_what_was_seen_and_stores_each_objects_crop():
    recorder, stored = Recorder(), {}

    def crops(event_id, items):
        stored.update({track: image.shape for track, image in items})
        return {track: f"events/objects/{event_id}-{track}.jpg" for track, _ in items}

    system = E2ESystem({"id": 3, "threshold": 0.5, "analysis_fps": 100, "analysis_width": 160,
                        "event_close_seconds": 0.5},
                       source=Frames(), detector=Script(), agent=RulePolicy(), callbacks=recorder,
                       crop_store=crops, realtime=False)
    system.run(threading.Event())
    opened, closed = recorder.events[0], recorder.events[-1]
    assert opened["labels"] == ["bicycle", "person"]  # from the first anomalous frame on
    assert closed["labels"] == ["bicycle", "person"]
    objects = {o["track"]: o for o in closed["details"]["objects"]}
    assert objects[7]["label"] == "bicycle" and objects[7]["score"] == 0.61  # its best detection
    assert objects[7]["thumbnail"] == f"events/objects/{closed['id']}-7.jpg"
    assert "crop" not in objects[7]  # pixels never go into the record
    assert set(stored) == {1, 7} and stored[7][:2] == (30, 40)  # the crop of its box
    assert closed["details"]["object_terms"][0]["explain"].startswith("bicycle on a spot where 0")
    peak = {o["label"]: o["box"] for o in closed["details"]["peak_objects"]}
    assert peak["bicycle"] == [60, 20, 40, 30]  # x, y, w, h on the frame (here at analysis size)
    uuid.UUID(closed["id"])


def test_the_camera_figures_show_the_objects_followed_now():
    system = E2ESystem({"id": 3, "threshold": 0.5, "analysis_fps": 100, "analysis_width": 160},
                       source=Frames(), detector=Script(), agent=RulePolicy(), realtime=False)
    system.source.open()
    system.process(system.source.read(), 1000.0)
    objects = system.stats_snapshot()["objects"]
    assert objects == [{"track": 1, "label": "person", "confidence": 0.7,
                        "box": [0.0625, 0.0833, 0.1875, 0.5], "since": objects[0]["since"]}]
