"""The worker-wide object scheduler: priority, budget, batching, bounds (a fake model, no weights)."""

import threading

import numpy as np

from inference.object_scheduler import ObjectScheduler
from tests.waiting import wait_for


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


class FakeModel:
    """Answers one 'thing' per image, named after the image's first pixel; records the batches."""

    def __init__(self, fail=False):
        self.batches = []
        self.fail = fail
        self.release = threading.Event()
        self.release.set()

    def detect(self, images):
        self.release.wait(5)
        self.batches.append([int(image[0, 0, 0]) for image in images])
        if self.fail:
            raise RuntimeError("model exploded")
        return [[f"thing-{int(image[0, 0, 0])}"] for image in images]


def image(value):
    return np.full((4, 4, 3), value, np.uint8)


def test_the_most_anomalous_cameras_go_first_and_a_batch_holds_several():
    clock, model = Clock(), FakeModel()
    scheduler = ObjectScheduler(model, budget_fps=10, max_batch=2, clock=clock, start=False)
    scheduler.offer(1, image(1), 10.0, priority=0.1)
    scheduler.offer(2, image(2), 10.0, priority=0.9)
    scheduler.offer(3, image(3), 10.0, priority=0.5)
    batch = scheduler.next_batch()
    assert [o.camera_id for o in batch] == [2, 3]
    scheduler.run_batch(batch)
    assert model.batches == [[2, 3]]  # one forward pass for both
    result = scheduler.take(2)
    assert result.detections == ["thing-2"] and result.timestamp == 10.0 and result.batch == 2
    assert scheduler.take(2) is None  # once
    assert scheduler.take(1) is None  # still waiting


def test_the_budget_limits_images_per_second_across_cameras():
    clock, model = Clock(), FakeModel()
    scheduler = ObjectScheduler(model, budget_fps=4, max_batch=4, clock=clock, start=False)
    done = 0
    for step in range(40):  # 10 s of offers from 8 cameras at 4 Hz each
        clock.t += 0.25
        for camera in range(8):
            scheduler.offer(camera, image(camera), clock.t, priority=0.0)
        batch = scheduler.next_batch()
        scheduler.run_batch(batch)
        done += len(batch)
    assert 36 <= done <= 44  # about 4 images a second, whatever the cameras offer
    stats = scheduler.stats()
    assert stats["detected"] == done and stats["superseded"] > 0


def test_a_newer_frame_replaces_the_waiting_one_and_old_offers_expire():
    clock, model = Clock(), FakeModel()
    scheduler = ObjectScheduler(model, budget_fps=10, max_batch=8, max_age=2.0, clock=clock, start=False)
    scheduler.offer(1, image(1), 1.0)
    scheduler.offer(1, image(5), 2.0)  # the same camera again: only the newest waits
    scheduler.offer(2, image(2), 1.0)
    clock.t += 3.0
    scheduler.offer(3, image(3), 4.0)
    batch = scheduler.next_batch()
    assert [o.camera_id for o in batch] == [3]
    assert scheduler.stats()["expired"] == 2 and scheduler.stats()["superseded"] == 1


def test_the_thread_runs_offers_and_a_failing_model_fails_only_its_batch():
    model = FakeModel(fail=True)
    scheduler = ObjectScheduler(model, budget_fps=100, max_batch=4)
    try:
        scheduler.offer(1, image(1), 1.0)
        assert wait_for(lambda: scheduler.stats()["failed"] == 1, timeout=3)
        model.fail = False
        scheduler.offer(1, image(7), 2.0)
        assert wait_for(lambda: scheduler.stats()["detected"] == 1, timeout=3)
        assert scheduler.take(1).detections == ["thing-7"]
    finally:
        scheduler.close()


def test_offers_never_block_while_the_model_is_busy():
    model = FakeModel()
    model.release.clear()  # the model hangs on its first batch
    scheduler = ObjectScheduler(model, budget_fps=100, max_batch=1)
    try:
        scheduler.offer(1, image(1), 1.0)
        assert wait_for(lambda: scheduler.stats()["offered"] == 1 and not scheduler._offers, timeout=3)
        for i in range(100):  # the camera loop goes on offering while the model is busy
            scheduler.offer(2, image(2), float(i))
        assert len(scheduler._offers) == 1  # bounded: one waiting offer per camera
        model.release.set()
        assert wait_for(lambda: scheduler.stats()["detected"] == 2, timeout=3)
    finally:
        scheduler.close()
