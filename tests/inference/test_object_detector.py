"""The ``objects`` detector: motion and objects together, learning, the scheduler, and running without the model."""

import cv2
import numpy as np
import pytest

from inference.e2e import analysis_images, detector_input
from inference.object_detector import ObjectsDetector
from inference.objects import Detection
from inference.pool import ResourcePool
from inference.registry import make_detector
from tests.conftest import dataset
from tests.waiting import wait_for

W, H = 360, 240


class FakeModel:
    """Answers whatever ``boxes(image)`` says; counts its calls (the object model without weights)."""

    labels = ("person", "car")

    def __init__(self, boxes):
        self.boxes = boxes
        self.calls = 0

    def detect(self, images):
        self.calls += len(images)
        return [self.boxes(image) for image in images]

    def detect_one(self, image):
        return self.detect([image])[0]


def scene(t: float, *, car: bool = False) -> tuple[np.ndarray, list]:
    """A grey walkway with two people walking left to right (and a car on it when ``car``)."""
    image = np.full((H, W, 3), 90, np.uint8)
    boxes = []
    for k, y in enumerate((90, 150)):
        x = (40 + 30 * t + 150 * k) % (W - 40)
        cv2.rectangle(image, (int(x), y), (int(x) + 14, y + 40), (200, 200, 200), -1)
        boxes.append(Detection("person", 0, 0.8, (x, y, x + 14, y + 40)))
    if car:
        x = 100 + 20 * t
        cv2.rectangle(image, (int(x), 110), (int(x) + 60, 140), (30, 30, 220), -1)
        boxes.append(Detection("car", 2, 0.7, (x, 110, x + 60, 140)))
    return image, boxes


def fake_detector(**params) -> tuple[ObjectsDetector, dict]:
    state = {"car": False, "t": 0.0}
    pool = ResourcePool()
    model = FakeModel(lambda image: scene(state["t"], car=state["car"])[1])
    pool.shared("objects", {"model_dir": "fake", "min_score": 0.35, "device": "cpu"}, lambda cfg: model)
    det = ObjectsDetector(pool=pool, model_dir="fake", **params)
    return det, state


def test_a_car_where_only_people_were_learned_is_an_anomaly_that_names_it():
    det, state = fake_detector(detect_fps=10.0)  # 600 learned frames: rare needs 500 to be sure

    def normal_frames():
        for clip in range(6):
            yield None
            for i in range(100):  # 10 s at 10 fps
                state["t"] = i / 10.0
                yield scene(state["t"])[0]

    det.fit(normal_frames(), fps=10.0)
    assert det.normal.frames_learned > 100
    det.reset()
    scores = []
    for i in range(60):
        state["t"], state["car"] = i / 10.0, i >= 30
        result = det.score(scene(state["t"], car=state["car"])[0], i / 10.0)
        scores.append((result.details["object_score"], result.details["object_terms"]))
    before = max(s for s, _ in scores[:30])
    after = max(s for s, _ in scores[35:])
    assert before < 0.3 and after >= 0.5
    terms = next(terms for s, terms in scores[35:] if s >= 0.5)
    assert terms[0]["term"] == "rare_class" and terms[0]["label"] == "car"
    assert "car on a spot where 0" in terms[0]["explain"] and "learned frames" in terms[0]["explain"]
    labels = {o["label"] for o in result.details["objects"]}
    assert labels == {"person", "car"}


def test_detection_runs_at_most_detect_fps_and_only_where_something_moves():
    det, state = fake_detector(detect_fps=2.0)
    still = np.full((H, W, 3), 90, np.uint8)
    for i in range(50):  # 5 s of an empty, still view: nothing to label, nothing spent
        det.score(still, i / 10.0)
    assert det.model.calls == 0
    for i in range(50, 100):  # 5 s of people walking: two detections a second
        state["t"] = i / 10.0
        det.score(scene(state["t"])[0], i / 10.0)
    assert 8 <= det.model.calls <= 11


def test_the_state_round_trips_and_a_foreign_state_is_refused():
    det, state = fake_detector()
    det.fit([scene(i / 10.0)[0] for i in range(40)], fps=10.0)
    other, _ = fake_detector()
    other.load_state_dict(det.state_dict())
    assert other.state_dict() == det.state_dict()
    with pytest.raises(ValueError, match="objects detector state"):
        other.load_state_dict({"version": 99})


def test_bad_parameters_are_refused_without_loading_a_model():
    with pytest.raises(ValueError, match="unknown objects detector parameter"):
        ObjectsDetector.check_params(colour="red")
    with pytest.raises(ValueError, match="detect_fps"):
        ObjectsDetector.check_params(detect_fps=0)
    with pytest.raises(ValueError, match="labels"):
        ObjectsDetector.check_params(labels="person")
    assert ObjectsDetector.check_params(labels=["person"])["labels"] == ["person"]


def test_without_its_model_it_runs_on_motion_alone_and_says_how_to_restore_it(tmp_path):
    det = make_detector({"detector": "objects", "detector_params": {"model_dir": str(tmp_path / "nowhere")}})
    assert det.model is None
    assert "nanodet.json" in det.warning and "make models" in det.warning
    result = det.score(scene(0.0)[0], 0.0)
    result = det.score(scene(0.1)[0], 0.1)
    assert "make models" in result.details["objects_error"] and result.details["objects"] == []
    assert "motion_score" in result.details


def test_in_a_worker_detection_goes_through_the_shared_scheduler():
    pool = ResourcePool(options={"objects": {"live": True, "budget_fps": 50}})
    model = FakeModel(lambda image: scene(0.0)[1])
    pool.shared("objects", {"model_dir": "fake", "min_score": 0.35, "device": "cpu"}, lambda cfg: model)
    a = ObjectsDetector(pool=pool, model_dir="fake")
    b = ObjectsDetector(pool=pool, model_dir="fake")
    try:
        assert a.scheduler is not None and a.scheduler is b.scheduler  # one per worker and model
        labels = set()
        for i in range(60):  # the loop never waits for the model: labels arrive a frame or two later
            labels |= {o["label"] for o in a.score(scene(i / 10.0)[0], i / 10.0).details["objects"]}
            if i % 5 == 0:
                wait_for(lambda: not a.scheduler._offers, timeout=1)
        assert labels == {"person"} and model.calls >= 5
        assert a.scheduler.stats()["detected"] == model.calls
    finally:
        pool.close()


@pytest.mark.slow
def test_real_footage_the_walkers_and_the_van_are_labelled():
    """NanoDet, installed by `make models`, on the PETS walkway through the loop's own frame path."""
    path = dataset("pets-walkway/vtest.avi")
    det = make_detector({"detector": "objects", "detector_params": {}})
    assert det.model is not None, det.warning
    capture = cv2.VideoCapture(str(path))
    seen = set()
    for i in range(120):
        ok, frame = capture.read()
        assert ok
        if i % 2:
            continue
        small, gray = analysis_images(frame, 360)
        result = det.score(detector_input(det, small, gray), i / 10.0)
        seen |= {o["label"] for o in result.details["objects"]}
    capture.release()
    assert "person" in seen and seen & {"car", "truck"}
    assert len(result.details["objects"]) >= 4


def test_a_stopped_camera_leaves_nothing_in_the_shared_scheduler():
    import threading

    from inference.agent import RulePolicy
    from inference.base import Frame, FrameSource
    from inference.e2e import E2ESystem

    class Walk(FrameSource):
        def __init__(self):
            super().__init__("demo://")
            self.i = 0

        def open(self):
            pass

        def read(self):
            self.i += 1
            return Frame(scene(self.i / 10.0)[0], self.i / 10.0, self.i) if self.i <= 40 else None

    pool = ResourcePool(options={"objects": {"live": True, "budget_fps": 50}})
    model = FakeModel(lambda image: scene(0.0)[1])
    pool.shared("objects", {"model_dir": "fake", "min_score": 0.35, "device": "cpu"}, lambda cfg: model)
    det = ObjectsDetector(pool=pool, model_dir="fake")
    try:
        system = E2ESystem({"id": 1, "analysis_fps": 100, "analysis_width": W}, source=Walk(), detector=det,
                           agent=RulePolicy(), realtime=False)
        system.run(threading.Event())
        assert model.calls >= 1
        assert wait_for(lambda: not det.scheduler._offers, timeout=3)
        assert det._key() not in det.scheduler._results and det._key() not in det.scheduler._offers
    finally:
        pool.close()
