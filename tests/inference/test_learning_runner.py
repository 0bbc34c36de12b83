"""inference.learning, Django-free: live footage, uploaded clips and false-alarm feedback reach the detector
as the live loop's analysis frames, with progress, and the saved state loads back and scores the same."""

import threading

import cv2
import numpy as np
import pytest

from inference import learning
from inference.base import Detector, DetectorResult, Frame, FrameSource, SourceError
from inference.detectors import MotionDetector
from inference.e2e import analysis_images
from inference.learning import READING_SHARE, LearningError, learn, save_state
from inference.registry import load_detector_state
from inference.sources import open_source


def write_clip(path, *, seconds=4.0, fps=10.0, size=(160, 120), seed=0, speed=30.0, fourcc="mp4v"):
    """A short video: a textured static scene with a bright square crossing it (``speed`` px/s)."""
    w, h = size
    rng = np.random.default_rng(seed)
    background = cv2.GaussianBlur(rng.integers(40, 120, (h, w), dtype=np.uint8), (7, 7), 0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened()
    for i in range(int(round(seconds * fps))):
        frame = background.copy()
        x = int(10 + (speed * i / fps) % (w - 30))
        frame[h // 2 - 10:h // 2 + 10, x:x + 20] = 230
        noise = rng.normal(0, 2, frame.shape)
        writer.write(cv2.cvtColor(np.clip(frame + noise, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


class Recorder(Detector):
    """Records what it is taught; its state is how much it learned."""

    name = "recorder"

    def __init__(self, **params):
        super().__init__(**params)
        self.fitted, self.fed, self.fps = [], [], None

    def score(self, gray, timestamp):
        return DetectorResult(score=0.0)

    def fit(self, frames, fps=10.0):
        self.fps = fps
        self.fitted = list(frames)

    def feedback(self, frames):
        self.fed = list(frames)

    def state_dict(self):
        return {"fitted": sum(f is not None for f in self.fitted), "fed": sum(f is not None for f in self.fed)}


class Progress(list):
    def __call__(self, value, message):
        self.append((value, message))


def stretches(items):
    """Frames between Nones, as a list of lists."""
    out = []
    for item in items:
        if item is None:
            out.append([])
        else:
            out[-1].append(item)
    return out


@pytest.fixture
def clip(tmp_path):
    return write_clip(tmp_path / "walk.mp4", seconds=4.0, fps=10.0)


def test_uploaded_clips_are_learned_at_the_analysis_rate_with_a_cut_between_them(tmp_path, clip):
    other = write_clip(tmp_path / "other.avi", seconds=2.0, fps=10.0, fourcc="MJPG", seed=1)
    detector, progress = Recorder(), Progress()
    result = learn(detector, kind="upload", clips=[clip, other], analysis_fps=5.0, width=80, progress=progress)
    parts = stretches(detector.fitted)
    assert [len(p) for p in parts] == [20, 10]  # 10 fps clips taken at 5 fps: every other frame
    assert detector.fitted[0] is None and detector.fps == 5.0
    first = cv2.VideoCapture(str(clip)).read()[1]
    assert np.array_equal(parts[0][0], analysis_images(first, 80)[1])  # exactly the live loop's analysis frame
    assert result.frames == 30 and result.seconds == pytest.approx(6.0)
    assert result.state == {"fitted": 30, "fed": 0}
    values = [v for v, _ in progress]
    assert values == sorted(values) and values[-1] == pytest.approx(READING_SHARE)
    assert any("clip 2 of 2 (other.avi)" in m for _, m in progress)


def test_colour_detectors_learn_colour_frames(clip):
    class ColourRecorder(Recorder):
        wants_color = True

    detector = ColourRecorder()
    learn(detector, kind="upload", clips=[clip], analysis_fps=10.0, width=80)
    assert detector.fitted[1].shape == (60, 80, 3)


def test_live_learning_from_a_file_camera_takes_minutes_of_media_time(tmp_path):
    source = write_clip(tmp_path / "long.mp4", seconds=12.0, fps=10.0)
    detector, progress = Recorder(), Progress()
    result = learn(detector, kind="live", source_url=str(source), minutes=0.1, analysis_fps=5.0, width=160,
                   progress=progress)
    assert len(stretches(detector.fitted)) == 1
    assert result.frames == 30  # 6 s of media time at 5 fps, not the whole 12 s file
    assert result.seconds == pytest.approx(5.8)
    assert "source ended" not in result.note
    values = [v for v, _ in progress]
    assert values == sorted(values) and 0.9 * READING_SHARE <= values[-1] <= READING_SHARE
    assert "of 0.1 min" in progress[-2][1]


def test_live_learning_notes_a_file_that_ends_before_the_time_asked(clip):
    result = learn(Recorder(), kind="live", source_url=str(clip), minutes=5, analysis_fps=5.0)
    assert result.frames == 20 and "the source ended before the 5 min asked for" in result.note


def test_live_learning_from_the_demo_scene():
    detector = Recorder()
    result = learn(detector, kind="live", source_url="demo://?seed=3&width=160&height=90", minutes=0.05,
                   analysis_fps=5.0, width=160)
    assert result.frames == 15 and detector.fitted[1].shape == (90, 160)


class FlakyLiveSource(FrameSource):
    """A live source with frame-time stamps that drops once, after five frames."""

    is_live = True
    opened = 0

    def open(self):
        FlakyLiveSource.opened += 1
        self.t = 100.0 * FlakyLiveSource.opened
        self.reads = 0

    def read(self):
        self.reads += 1
        if FlakyLiveSource.opened == 1 and self.reads > 5:
            raise SourceError("stream dropped")
        self.t += 0.05
        return Frame(image=np.full((60, 80, 3), self.reads * 7 % 255, np.uint8), timestamp=self.t, index=self.reads)


def test_a_live_source_that_drops_is_reopened_and_learning_goes_on(monkeypatch):
    monkeypatch.setattr(learning, "RECONNECT_WAIT", 0.0)
    FlakyLiveSource.opened = 0
    detector = Recorder()
    result = learn(detector, kind="live", source_url="rtsp://cam/x", minutes=0.01, analysis_fps=20.0,
                   opener=FlakyLiveSource)
    parts = stretches(detector.fitted)
    assert FlakyLiveSource.opened == 2 and len(parts) == 2 and len(parts[0]) == 5
    assert result.seconds < 0.6 and result.frames == sum(map(len, parts)) >= 10


def test_a_live_source_that_keeps_failing_ends_learning_with_its_reason(monkeypatch):
    monkeypatch.setattr(learning, "RECONNECT_WAIT", 0.0)

    class Dead(FrameSource):
        def open(self):
            raise SourceError("connection refused")

        def read(self):
            return None

    with pytest.raises(LearningError, match="failed 4 times; last: connection refused"):
        learn(Recorder(), kind="live", source_url="rtsp://cam/x", minutes=1, opener=Dead)


def test_feedback_takes_every_frame_of_the_event_clip(clip):
    detector, progress = Recorder(), Progress()
    result = learn(detector, kind="feedback", clips=[clip], analysis_fps=5.0, progress=progress)
    assert len(stretches(detector.fed)) == 1 and result.frames == 40 and detector.fitted == []
    assert result.state == {"fitted": 0, "fed": 40}
    assert any("false alarm's clip (walk.mp4)" in m for _, m in progress)


def test_a_detector_that_cannot_learn_this_way_is_refused(clip):
    class Plain(Detector):
        name = "plain"

        def score(self, gray, timestamp):
            return DetectorResult(score=0.0)

    with pytest.raises(LearningError, match="'plain' does not learn from footage"):
        learn(Plain(), kind="upload", clips=[clip])
    with pytest.raises(LearningError, match="'plain' does not learn from operator feedback"):
        learn(Plain(), kind="feedback", clips=[clip])


def test_an_unreadable_clip_is_named(tmp_path, clip):
    bad = tmp_path / "notes.mp4"
    bad.write_text("these are not frames\n" * 20)
    with pytest.raises(LearningError, match="notes.mp4: not a video"):
        learn(Recorder(), kind="upload", clips=[clip, bad])


def test_a_state_that_is_not_json_is_refused(clip):
    class Odd(Recorder):
        def state_dict(self):
            return {"weights": np.zeros(3)}

    with pytest.raises(LearningError, match="not JSON"):
        learn(Odd(), kind="upload", clips=[clip])


def test_the_saved_motion_state_loads_back_and_scores_like_the_learned_detector(tmp_path):
    train = write_clip(tmp_path / "train.mp4", seconds=20.0, fps=10.0, seed=2)
    test = write_clip(tmp_path / "test.mp4", seconds=6.0, fps=10.0, seed=3, speed=90.0)
    params = {"warmup_frames": 5}
    learned = MotionDetector(**params)
    result = learn(learned, kind="upload", clips=[train], analysis_fps=5.0)
    path = save_state(result.state, tmp_path / "state" / "v1.json")
    loaded = MotionDetector(**params)
    load_detector_state(loaded, path)
    assert learned.frames_learned > 40 and loaded.frames_learned == pytest.approx(learned.frames_learned)

    def scores(detector):
        out = []
        with open_source(str(test)) as source:
            while (frame := source.read()) is not None:
                out.append(detector.score(analysis_images(frame.image, 360)[1], frame.timestamp).score)
        return np.array(out)

    a, b = scores(learned), scores(loaded)
    assert a.max() > 0.05  # it scores something: the comparison is not between two flat lines
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_stop_ends_learning(clip):
    stop = threading.Event()
    stop.set()
    with pytest.raises(LearningError, match="stopped"):
        learn(Recorder(), kind="upload", clips=[clip], stop=stop)
