"""The whole loop: frames -> score -> episode -> VLM -> agent -> event log -> database."""

import threading
from pathlib import Path

import pytest

from events.models import AnomalyEvent
from inference.agent import RulePolicy
from inference.detectors import MotionDetector
from inference.e2e import Callbacks, E2ESystem
from inference.sources import open_source
from runtime.media import store_snapshot
from runtime.process import create_logger, create_pool
from tests.conftest import dataset
from tests.factories import CameraFactory
from tests.inference.tiny_models import build_tiny_vlm

pytestmark = pytest.mark.django_db(transaction=True)


class Recorder(Callbacks):
    def __init__(self, logger=None):
        self.logger = logger
        self.records, self.states, self.started, self.ended = [], [], 0, 0

    def on_event(self, camera_id, record):
        self.records.append(record)
        if self.logger:
            self.logger.append(record)

    def on_state(self, camera_id, state, error=""):
        self.states.append((state, error))

    def on_anomaly_started(self, camera_id, episode):
        self.started += 1

    def on_anomaly_ended(self, camera_id, episode):
        self.ended += 1


def run_frames(system, frames):
    stop = threading.Event()

    def watch():
        while system.frames < frames and not stop.is_set():
            stop.wait(0.01)
        stop.set()

    threading.Thread(target=watch, daemon=True).start()
    system.run(stop)
    stop.set()


@pytest.fixture
def logged(settings, tmp_path):
    settings.EVENT_LOG_DIR = tmp_path / "log"
    settings.MEDIA_ROOT = tmp_path / "media"
    logger = create_logger("pipeline-test").start()
    yield logger
    logger.close()


def config_for(camera, **extra):
    return {**camera.runtime_config(), **extra}


def test_demo_scene_anomalies_become_stored_events(logged, settings):
    camera = CameraFactory(source_url="demo://?seed=11&anomaly_every=15")
    recorder = Recorder(logged)
    system = E2ESystem(
        config_for(camera), source=open_source(camera.source_url), detector=MotionDetector(threshold=camera.threshold),
        agent=RulePolicy(), callbacks=recorder, snapshot_store=store_snapshot, realtime=False,
    )
    run_frames(system, 5 * 150)  # 150 s of scene at 5 fps analysis
    system.wait_pending()
    logged.close()
    events = list(AnomalyEvent.objects.filter(camera=camera))
    assert recorder.started >= 2 and len(events) >= 2
    closed = [e for e in events if e.ended_at is not None]
    assert closed, "episodes must close once the score stays low"
    for event in closed:
        assert event.ended_at >= event.started_at and event.peak_score >= camera.threshold
        assert event.severity in ("low", "medium", "high", "critical") and event.decision["reasons"]
        assert event.snapshot and (Path(settings.MEDIA_ROOT) / event.snapshot.name).stat().st_size > 1000
        assert event.details["score_curve"] and event.details["frame_size"] == [640, 360]
    # Each event id is one row even though it was logged at open and again at close.
    assert len({r["id"] for r in recorder.records}) == len(events)


def test_transformers_vlm_describes_the_event_through_the_pool(logged, tmp_path, settings):
    settings.MODEL_ROOTS = [str(tmp_path)]  # the worker's pool loads only from the allowed model folders
    model = build_tiny_vlm(tmp_path / "tiny-vlm")
    camera = CameraFactory(source_url="demo://?seed=12&anomaly_every=10", vlm_backend="transformers",
                           vlm_model_path=str(model), vlm_prompt="Is anyone in danger?")
    pool = create_pool()
    vlm = pool.vlm("transformers", {"model_path": str(model), "device": "cpu"})
    recorder = Recorder(logged)
    system = E2ESystem(
        config_for(camera), source=open_source(camera.source_url), detector=MotionDetector(threshold=camera.threshold),
        agent=pool.get("agent", "rules", {}), vlm=vlm, callbacks=recorder, realtime=False,
    )
    run_frames(system, 5 * 90)
    system.wait_pending()
    logged.close()
    closed = [e for e in AnomalyEvent.objects.filter(camera=camera) if e.ended_at is not None]
    assert closed
    for event in closed:
        assert isinstance(event.description, str) and event.details["vlm"] is not None
        assert event.decision["policy"] == "rules"
    assert sum(pool.loaded().values()) == 2  # the VLM and the agent, each loaded once


def test_whole_loop_on_real_footage(logged):
    """pets-walkway: ordinary walking, played as a camera; the loop runs and stays quiet-ish."""
    video = dataset("pets-walkway/vtest.avi")
    camera = CameraFactory(source_url=str(video))
    recorder = Recorder(logged)
    source = open_source(camera.source_url, loop=False)
    system = E2ESystem(config_for(camera), source=source, detector=MotionDetector(threshold=camera.threshold),
                       agent=RulePolicy(), callbacks=recorder, realtime=False)
    stop = threading.Event()
    system.run(stop)  # plays the whole file once, then stops by itself
    system.wait_pending()
    assert ("running", "") in recorder.states and recorder.states[-1] == ("stopped", "The video ended.")
    assert system.frames == pytest.approx(795 / 2, abs=2)  # 10 fps file analysed at 5 fps
    # Ordinary walking: few episodes, none of them long.
    assert recorder.started <= 5


def test_real_anomalies_in_ucsd_footage_become_events(logged):
    """A UCSD Ped1 test clip with a cyclist/cart after learning normal from training clips."""
    train = [dataset(f"ucsd-ped1/videos/training/Train{i:03d}.mp4") for i in range(1, 9)]
    clip = dataset("ucsd-ped1/videos/testing/Test024.mp4")
    camera = CameraFactory(source_url=str(clip), analysis_fps=10)
    detector = MotionDetector(threshold=camera.threshold)
    from inference.e2e import analysis_frame

    def frames():
        for path in train:
            with open_source(str(path)) as src:
                while (frame := src.read()) is not None:
                    yield analysis_frame(frame.image, 360)

    detector.fit(frames())
    recorder = Recorder(logged)
    system = E2ESystem(config_for(camera), source=open_source(str(clip)), detector=detector,
                       agent=RulePolicy(), callbacks=recorder, realtime=False)
    system.run(threading.Event())
    system.wait_pending()
    logged.close()
    labels = [int(x) for x in dataset("ucsd-ped1/labels/Test024.txt").read_text().split()]
    assert sum(labels) > 0
    assert AnomalyEvent.objects.filter(camera=camera).count() >= 1


def test_a_looping_file_does_not_alarm_at_the_cut():
    """The jump from the last frame back to the first is not motion: the detector is reset there."""
    clip = dataset("ucsd-ped1/videos/training/Train001.mp4")
    resets = []

    class Counting(MotionDetector):
        def reset(self):
            resets.append(True)
            super().reset()

    config = {"id": 1, "threshold": 0.5, "analysis_fps": 10, "analysis_width": 360, "event_close_seconds": 3}
    system = E2ESystem(config, source=open_source(str(clip), loop=True), detector=Counting(), agent=RulePolicy(),
                       realtime=False)
    run_frames(system, 450)  # 200 frames a pass: two cuts
    assert len(resets) == 1 + 2  # at creation, then at each of the two cuts


def test_a_dropped_stream_shows_reconnecting_and_resumes():
    """A live source that drops is reopened with backoff; the camera goes reconnecting -> running."""
    import numpy as np

    from inference.base import Frame, FrameSource, SourceError

    class Flaky(FrameSource):
        is_live = True

        def __init__(self):
            super().__init__("rtsp://camera.example/stream")
            self.opens, self.reads = 0, 0

        def open(self):
            self.opens += 1
            if self.opens == 2:
                raise SourceError("stream unreachable: connection refused")

        def read(self):
            self.reads += 1
            if self.reads == 5:
                raise SourceError("stream dropped")
            return Frame(np.zeros((120, 160, 3), np.uint8), float(self.reads), self.reads)

    recorder = Recorder()
    source = Flaky()
    config = {"id": 1, "threshold": 0.5, "analysis_fps": 30, "analysis_width": 160, "event_close_seconds": 3}
    system = E2ESystem(config, source=source, detector=MotionDetector(), agent=RulePolicy(), callbacks=recorder,
                       realtime=False, reconnect_max=0.05)
    run_frames(system, 10)
    states = [s for i, (s, _) in enumerate(recorder.states) if i == 0 or recorder.states[i - 1][0] != s]
    assert states[:3] == ["running", "reconnecting", "running"]
    assert ("reconnecting", "stream dropped") in recorder.states
    assert ("reconnecting", "stream unreachable: connection refused") in recorder.states and source.opens == 3
    assert states[-1] == "stopped" and system.frames >= 10
