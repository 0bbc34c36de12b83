"""A camera that is not watched for a while gets a "camera offline" event, closed when frames return."""

import threading
import time

import numpy as np

from inference.agent import RulePolicy
from inference.base import Frame, FrameSource, SourceError
from inference.detectors import MotionDetector
from inference.e2e import OFFLINE_KIND, Callbacks, E2ESystem


class FlakyStream(FrameSource):
    """A live stream that refuses the first ``down`` opens, then serves grey frames."""

    is_live = True

    def __init__(self, down: int):
        super().__init__("rtsp://camera.example/live")
        self.down = down
        self.opens = 0
        self.index = 0

    def open(self):
        self.opens += 1
        if self.opens <= self.down:
            raise SourceError("stream unreachable: connection refused")

    def read(self):
        time.sleep(0.02)
        self.index += 1
        return Frame(np.full((120, 160, 3), 100, np.uint8), time.time(), self.index)


class Recorder(Callbacks):
    def __init__(self):
        self.events, self.states = [], []

    def on_event(self, camera_id, record):
        self.events.append(record)

    def on_state(self, camera_id, state, error=""):
        self.states.append((state, error))


def run_until(system, predicate, timeout=15.0):
    stop = threading.Event()
    thread = threading.Thread(target=system.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    reached = False
    while time.monotonic() < deadline and not (reached := predicate()):
        time.sleep(0.05)
    stop.set()
    thread.join(10)
    return reached


def make(source, recorder, offline_after=0.3):
    return E2ESystem({"id": 7, "name": "Gate", "analysis_fps": 10}, source=source, detector=MotionDetector(),
                     agent=RulePolicy(), callbacks=recorder, offline_after=offline_after, reconnect_max=0.5)


def test_an_unreachable_camera_gets_one_offline_event_closed_when_frames_return():
    recorder = Recorder()
    system = make(FlakyStream(down=3), recorder)
    assert run_until(system, lambda: len(recorder.events) >= 2 and system.state == "running")
    opened, closed = recorder.events[0], recorder.events[1]
    assert opened["id"] == closed["id"]  # the same event, updated
    assert opened["details"]["kind"] == OFFLINE_KIND and opened["severity"] == "high"
    assert opened["ended_at"] is None and "Camera Gate is offline: stream unreachable" in opened["description"]
    assert closed["ended_at"] is not None and "back online" in closed["description"]
    assert ("reconnecting", "stream unreachable: connection refused") in recorder.states
    assert len(recorder.events) == 2  # frames flowing afterwards record nothing more


def test_a_short_outage_records_nothing():
    recorder = Recorder()
    system = make(FlakyStream(down=1), recorder, offline_after=30.0)
    assert run_until(system, lambda: system.state == "running" and system.frames > 5)
    assert recorder.events == []


def test_offline_events_can_be_turned_off():
    recorder = Recorder()
    system = make(FlakyStream(down=3), recorder, offline_after=None)
    assert run_until(system, lambda: system.state == "running" and system.frames > 5)
    assert recorder.events == []
