"""The worker's recorder on real footage: the encode path (frames a file source decodes) and the copy path
(an H.264 stream served by ffmpeg over HTTP on loopback), each segment indexed and checked with ffprobe."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from runtime.recording import CameraRecorder, RecordingOptions, copy_command, probe_codec
from tests.conftest import dataset
from tests.system.processes import FFmpegStream

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


def ffprobe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height:format=duration",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    return {"codec": data["streams"][0]["codec_name"], "width": data["streams"][0]["width"],
            "duration": float(data["format"]["duration"])}


class H264Stream(FFmpegStream):
    """The fault tests' loopback stream, as a camera that sends H.264 (MPEG-TS over HTTP, a key frame a second)."""

    def __init__(self, clip, **kw):
        super().__init__(clip, **kw)
        self.url = f"http://127.0.0.1:{self.port}/live.ts"

    def _args(self) -> list[str]:
        return ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", self.clip, "-an",
                "-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p", "-f", "mpegts",
                "-listen", "1", self.url]


def _options(tmp_path, **kw) -> RecordingOptions:
    return RecordingOptions(root=tmp_path / "rec", segment_seconds=kw.pop("segment_seconds", 2.0), **kw)


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_a_file_source_is_encoded_to_h264_segments_from_its_decoded_frames(tmp_path):
    import cv2

    indexed = []
    options = _options(tmp_path, encode_fps=10)
    recorder = CameraRecorder(7, str(dataset("pets-walkway/vtest.avi")), "continuous", fps=10,
                              index=lambda **f: indexed.append(f) or f, options=options).start()
    capture = cv2.VideoCapture(str(dataset("pets-walkway/vtest.avi")))
    start = time.time()
    motion_at, objects_at = [], []  # motion in the first 2 s only, objects (without motion) at 5 s only
    try:
        for n in range(55):  # 5.5 s of footage at its own 10 fps, paced like the camera's loop
            ok, image = capture.read()
            assert ok
            recorder.on_frame(image, time.time())
            if n % 10 == 0 and n <= 20:
                motion_at.append(time.time())
                recorder.on_activity(motion_at[-1])
            if n == 50:
                objects_at.append(time.time())
                recorder.on_activity(objects_at[-1], motion=False, objects=True)
            time.sleep(max(0.0, start + (n + 1) / 10 - time.time()))
    finally:
        capture.release()
        recorder.stop(timeout=30)
    assert not recorder.alive
    assert recorder.dropped == 0
    assert len(indexed) >= 2, indexed
    total = 0.0
    for item in indexed:
        file = options.root / item["path"]
        assert file.is_file() and file.stat().st_size == item["size"] > 0
        assert item["path"].startswith("7/") and item["encoded"] and item["codec"] == "h264"
        probe = ffprobe(file)
        assert probe["codec"] == "h264" and probe["width"] == 480
        assert probe["duration"] == pytest.approx((item["end"] - item["start"]).total_seconds(), abs=0.25)
        total += probe["duration"]
        # Each mark is indexed on its own: a segment has motion when motion was seen within it (or in the second
        # before it), and objects likewise.
        marked = [any(item["start"].timestamp() - 1.0 <= t <= item["end"].timestamp() for t in marks)
                  for marks in (motion_at, objects_at)]
        assert [item["has_motion"], item["has_objects"]] == marked, item
    assert total == pytest.approx(5.5, abs=0.6)
    # 2 s segments: the first has motion and no objects, the last objects and no motion.
    assert len(indexed) == 3, indexed
    assert (indexed[0]["has_motion"], indexed[0]["has_objects"]) == (True, False)
    assert (indexed[-1]["has_motion"], indexed[-1]["has_objects"]) == (False, True)
    # Consecutive segments follow each other: playback goes on across the boundary.
    for a, b in zip(indexed, indexed[1:]):
        assert abs((b["start"] - a["end"]).total_seconds()) < 0.15
    assert list((options.root / "7" / "incoming").iterdir()) == []


def test_a_full_encoder_queue_drops_frames_and_counts_them(tmp_path):
    import numpy as np

    recorder = CameraRecorder(8, "demo://", "continuous", fps=5, index=lambda **f: f,
                              options=_options(tmp_path, queue_size=2))  # not started: nobody takes frames
    image = np.zeros((32, 32, 3), np.uint8)
    for _ in range(5):
        recorder.on_frame(image, time.time())
    assert recorder.frames.qsize() == 2 and recorder.dropped == 3


@pytest.mark.slow
def test_an_h264_network_stream_is_copied_into_segments_without_reencoding(tmp_path):
    stream = H264Stream(dataset("pets-walkway/vtest.avi")).start()
    indexed = []
    options = _options(tmp_path)
    try:
        assert probe_codec(stream.url, options) == "h264"
        recorder = CameraRecorder(9, stream.url, "motion", fps=5, index=lambda **f: indexed.append(f) or f,
                                  options=options).start()
        assert _wait(lambda: len(indexed) >= 2, 40), (recorder.stats(), indexed)
        recorder.stop(timeout=30)
    finally:
        stream.kill()
    assert recorder.kind == "copy" and recorder.codec == "h264"
    assert "-c:v" in (cmd := copy_command(stream.url, options, Path("/x"), "r")) and cmd[cmd.index("-c:v") + 1] == "copy"
    for item in indexed:
        file = options.root / item["path"]
        probe = ffprobe(file)
        assert probe["codec"] == "h264" and probe["duration"] > 0.5
        assert not item["encoded"] and item["mode"] == "motion" and not item["has_motion"] and not item["has_objects"]
        assert probe["duration"] == pytest.approx((item["end"] - item["start"]).total_seconds(), abs=0.3)
        assert abs(item["start"].timestamp() - time.time()) < 120


@pytest.mark.slow
def test_a_stream_that_is_not_h264_is_recorded_by_encoding_the_decoded_frames(tmp_path):
    stream = FFmpegStream(dataset("pets-walkway/vtest.avi")).start()  # MJPEG over HTTP
    try:
        recorder = CameraRecorder(10, stream.url, "continuous", fps=5, index=lambda **f: f,
                                  options=_options(tmp_path)).start()
        assert _wait(lambda: recorder.kind == "encode", 20), recorder.stats()
        assert recorder.codec == "mjpeg"
        recorder.stop(timeout=10)
    finally:
        stream.kill()


def test_the_workers_recordings_follow_the_camera_loop(tmp_path):
    """What WorkerCallbacks drives: a camera recording from its loop's "running" until its "stopped", its frames
    encoded, its detectors' motion and objects marking the segment; a camera whose mode is off records nothing."""
    import cv2

    from runtime.recording import Recordings

    indexed = []
    recordings = Recordings(lambda **f: indexed.append(f) or f, _options(tmp_path))
    clip = str(dataset("pets-walkway/vtest.avi"))
    recordings.configure({"id": 1, "source_url": clip, "record_mode": "motion", "analysis_fps": 5})
    recordings.configure({"id": 2, "source_url": clip, "record_mode": "off", "analysis_fps": 5})
    recordings.on_state(1, "running")
    recordings.on_state(2, "running")
    assert set(recordings.recorders) == {1}
    capture = cv2.VideoCapture(clip)
    start = time.time()
    for n in range(15):  # 3 s at 5 fps
        image = capture.read()[1]
        for camera in (1, 2):
            recordings.on_frame(camera, image, time.time())
        recordings.on_activity(1, time.time(), motion=n < 5, objects=True)
        time.sleep(max(0.0, start + (n + 1) / 5 - time.time()))
    capture.release()
    recorder = recordings.recorders[1]
    recordings.on_state(1, "stopped")
    assert 1 not in recordings.recorders
    recorder.stop(timeout=30)
    assert indexed and all(item["camera_id"] == 1 and item["mode"] == "motion" and item["has_objects"]
                           for item in indexed)
    assert indexed[0]["has_motion"]  # motion in its first second only
    assert sum((i["end"] - i["start"]).total_seconds() for i in indexed) == pytest.approx(3.0, abs=0.5)
    assert recordings.stats() == {}
    recordings.close()
