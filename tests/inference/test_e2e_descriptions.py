"""The camera loop with the worker's description queue and a real model server (tests/chat_server.py).

An episode's record is emitted at once without a description, emitted again when the description
arrives (before the episode closes), and the close never waits for the model.
"""

import json
import threading
import time

import numpy as np
import pytest

from inference.addresses import parse_networks
from inference.agent import RulePolicy
from inference.base import Detector, DetectorResult, Frame, FrameSource
from inference.describe_queue import DescribeQueue
from inference.e2e import Callbacks, E2ESystem
from inference.model_servers import OpenAIVLM

LOOPBACK = parse_networks("127.0.0.0/8")
FPS = 20.0
NORMAL, OPENS, PEAKS, CALMS = 0, 25, 37, 55  # frame indexes: 1.25 s normal, 0.6 s at 0.6, 0.9 s at 0.9, then calm


class Live(FrameSource):
    """A live camera at 20 fps; frame ``i`` is ``self.index``."""

    def __init__(self):
        super().__init__("rtsp://gate.example/live")
        self.index = -1

    def open(self):
        pass

    def read(self):
        time.sleep(1.0 / FPS)
        self.index += 1
        return Frame(np.full((120, 160, 3), self.index % 200, np.uint8), time.time(), self.index)


class Scripted(Detector):
    def __init__(self, source):
        super().__init__()
        self.source = source

    def score(self, gray, timestamp):
        i = self.source.index
        score = 0.6 if OPENS <= i < PEAKS else 0.9 if PEAKS <= i < CALMS else 0.1
        return DetectorResult(score=score, regions=[(10, 10, 40, 40)] if score > 0.5 else [])


class Recorder(Callbacks):
    def __init__(self):
        self.events, self.lock = [], threading.Lock()

    def on_event(self, camera_id, record):
        with self.lock:
            self.events.append((time.monotonic(), record))

    def records(self):
        with self.lock:
            return [r for _, r in self.events if r.get("details", {}).get("kind") != "camera_offline"]


@pytest.fixture
def queue():
    q = DescribeQueue(concurrency=2, max_size=8, per_camera_per_minute=6, deadline=3.0)
    yield q
    q.close(timeout=6)


def camera(server, queue, recorder, **kw):
    source = Live()
    vlm = OpenAIVLM(base_url=server.base_url, model="llava", timeout=6, allowed_networks=LOOPBACK)
    system = E2ESystem(
        {"id": 3, "name": "Gate", "threshold": 0.5, "event_close_seconds": 0.4, "analysis_fps": FPS,
         "vlm_prompt": "Watch the gate."},
        source=source, detector=Scripted(source), agent=RulePolicy(), vlm=vlm, callbacks=recorder,
        snapshot_store=lambda event_id, image: f"snapshots/{event_id}.jpg",
        clip_store=lambda event_id, frames, fps: f"clips/{event_id}.webm",
        describe_queue=queue, offline_after=None, **kw)
    return system, vlm


def run_until(system, predicate, timeout=20.0):
    stop = threading.Event()
    thread = threading.Thread(target=system.run, args=(stop,), name="camera-3", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    reached = False
    while time.monotonic() < deadline and not (reached := predicate()):
        time.sleep(0.02)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    return reached


def closed(recorder):
    return any(r["ended_at"] for r in recorder.records())


def test_the_open_event_is_emitted_at_once_then_again_with_each_description_before_it_closes(server, queue):
    server.delay = 0.2
    server.reply = lambda body: json.dumps({"summary": f"look {len(server.requests)}", "threat_level": "high",
                                            "objects": ["person"]})
    recorder = Recorder()
    system, vlm = camera(server, queue, recorder, describe_repeat_seconds=0.5)
    assert run_until(system, lambda: closed(recorder) and system.source.index > CALMS + 20)
    records = recorder.records()
    assert len({r["id"] for r in records}) == 1  # one episode, its record emitted several times
    first, final = records[0], records[-1]
    assert first["ended_at"] is None and first["description"] == ""  # at once, from the score alone
    open_described = [r["description"] for r in records if r["ended_at"] is None and r["description"]]
    assert open_described[:2] == ["look 1", "look 2"]  # the opening, then the higher peak, while still open
    assert open_described[1] != "" and records.index(final) == len(records) - 1
    assert final["ended_at"] and final["description"] == "look 2" and final["clip"].startswith("clips/")
    assert final["details"]["vlm"]["threat_level"] == "high"
    assert any("VLM" in reason and "high" in reason for reason in final["decision"]["reasons"])
    assert [r["ended_at"] is not None for r in records].count(True) == 1  # the close used what had arrived
    # Two requests (open, peak); none at the close. The frames around the peak went in one request.
    assert len(server.requests) == 2 and vlm.requests == 2
    assert len(server.images(0)) == 2  # a frame about a second before the peak, and the peak
    assert "Watch the gate." in server.requests[0]["messages"][-1]["content"][0]["text"]
    stats = queue.stats()
    assert stats["completed"] == 2 and stats["dropped_deadline"] == 0 and stats["wait_s"]["count"] == 2


def test_a_slow_server_past_the_deadline_never_holds_the_event_or_the_loop(server):
    server.delay = 4.0  # every request takes 4 s; the one runner is held by another camera's
    queue = DescribeQueue(concurrency=1, max_size=8, per_camera_per_minute=6, deadline=0.3)
    try:
        recorder = Recorder()
        system, vlm = camera(server, queue, recorder)
        busy_until = time.monotonic() + server.delay
        queue.submit(99, lambda: vlm.describe_frames([np.zeros((32, 32, 3), np.uint8)], ""), None)
        assert run_until(system, lambda: closed(recorder))
        closed_at = time.monotonic()
        assert closed_at < busy_until - 0.5  # closed while the model was still busy with the other camera
        last_frames = system.frames
        records = recorder.records()
        final = records[-1]
        assert records[0]["ended_at"] is None and final["ended_at"] and final["description"] == ""
        assert final["details"]["vlm"] is None
        assert final["details"]["detector_details"]["vlm_error"] == "deadline"
        assert final["clip"].startswith("clips/")
        # The open request and the close's both waited past their deadline: dropped, counted, told
        # (the close's after the final record went out).
        until = time.monotonic() + 2.0
        while queue.stats()["dropped_deadline"] < 2 and time.monotonic() < until:
            time.sleep(0.02)
        stats = queue.stats()
        assert stats["dropped_deadline"] == 2 and stats["started"] == 1 and stats["waiting"] == 0
        assert last_frames >= CALMS  # the loop analysed every frame meanwhile (20 fps, nothing waited)
        time.sleep(max(0.0, busy_until - time.monotonic()) + 0.3)
        assert recorder.records()[-1] == final  # nothing comes later: the event stays undescribed
        assert len(server.requests) == 1  # only the other camera's request reached the server
    finally:
        queue.close(timeout=6)


def test_an_event_closed_undescribed_asks_at_the_close_and_is_updated_when_the_answer_comes(server, queue):
    server.status = 500  # the opening's request fails; the server is back by the close
    recorder = Recorder()
    system, vlm = camera(server, queue, recorder)

    def back():
        if vlm.failures and server.status != 200:
            server.delay, server.status = 0.5, 200
        return sum(1 for r in recorder.records() if r["ended_at"]) >= 2

    assert run_until(system, back)
    closes = [r for r in recorder.records() if r["ended_at"]]
    assert closes[0]["description"] == ""  # recorded at the close, not held back for the model
    assert closes[0]["details"]["detector_details"]["vlm_error"].startswith("failed: ")
    assert closes[1]["description"] == "A person is lying on the ground."  # then updated with it
    assert closes[1]["id"] == closes[0]["id"] and closes[1]["clip"] == closes[0]["clip"] != ""
    assert closes[1]["ended_at"] == closes[0]["ended_at"]
    assert "vlm_error" not in closes[1]["details"]["detector_details"]
    assert len(server.requests) == 2 and vlm.failures == 1
    assert len(server.images(1)) == 3  # at the close: before, the peak and after
    stats = queue.stats()
    assert stats["failed"] == 1 and stats["completed"] == 1


@pytest.mark.django_db(transaction=True)
def test_the_worker_gives_every_camera_its_one_queue_and_publishes_its_figures(settings, tmp_path, server):
    from cameras.live import worker_stats
    from cameras.services import camera_start
    from runtime.process import create_logger, create_manager, create_pool
    from tests import waiting
    from tests.factories import CameraFactory

    settings.WORKER_HEARTBEAT_SECONDS = 0.3
    settings.EVENT_LOG_DIR, settings.MEDIA_ROOT = tmp_path / "log", tmp_path / "media"
    settings.DESCRIBE_CONCURRENCY, settings.DESCRIBE_PER_CAMERA_PER_MINUTE = 3, 4
    logger = create_logger("describe-worker").start()
    manager = create_manager("describe-worker", logger, create_pool())
    try:
        ids = []
        for seed in (1, 2):
            camera = camera_start(camera=CameraFactory(source_url=f"demo://?seed={seed}", vlm_backend="openai",
                                                       vlm_params={"base_url": server.base_url, "model": "llava"}),
                                  by=None)
            assert manager.start(camera.id) == "started"
            ids.append(camera.id)
        assert waiting.wait_for(lambda: all(i in manager.cameras for i in ids), timeout=15, step=0.05)
        queues = {id(manager.cameras[i].system.describe_queue) for i in ids}
        assert queues == {id(manager.describe_queue)}
        assert manager.describe_queue.concurrency == 3 and manager.describe_queue.per_camera_per_minute == 4
        assert waiting.wait_for(lambda: "describe_queue" in worker_stats().get("describe-worker", {}),
                                timeout=15, step=0.1)
        assert worker_stats()["describe-worker"]["describe_queue"]["concurrency"] == 3
    finally:
        manager.close()
        manager.describe_queue.close()
        logger.close()
