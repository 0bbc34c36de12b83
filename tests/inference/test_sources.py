"""Frame sources: URL validation, the demo renderer, OpenCV files and (fake) live streams.

Plain pytest functions: no database, no Django. Tests that need the shared footage skip with
a reason when ../shared/datasets is absent (a fresh clone).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from inference.base import FrameSource, SourceError
from inference.demo import DemoSource
from inference.source_urls import DEMO_KINDS, parse_demo_params, validate_source_url
from inference.sources import OpenCVSource, open_source

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
VTEST = DATASETS / "pets-walkway" / "vtest.avi"


def need_vtest() -> Path:
    if not VTEST.is_file():
        pytest.skip(f"needs the shared footage {VTEST} (../shared/datasets beside the project), absent here")
    return VTEST


# --------------------------------------------------------------------------------------------
# validate_source_url
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, expected",
    [
        ("rtsp://Cam-1.Example.COM:554/stream1", "rtsp://cam-1.example.com:554/stream1"),
        ("rtsps://10.0.0.5/live?channel=1", "rtsps://10.0.0.5/live?channel=1"),
        ("http://camera.local/mjpeg", "http://camera.local/mjpeg"),
        ("https://user:pa55@Host.example/video.m3u8", "https://user:pa55@host.example/video.m3u8"),
        ("rtsp://[::1]:8554/x", "rtsp://[::1]:8554/x"),
        ("  rtsp://cam/stream  ", "rtsp://cam/stream"),
        ("device://0", "device://0"),
        ("device://12", "device://12"),
        ("demo://", "demo://"),
        ("demo://?seed=3&anomaly_every=20&width=640&height=360&fps=10",
         "demo://?seed=3&anomaly_every=20&width=640&height=360&fps=10"),
        ("demo://?fps=5&seed=2", "demo://?seed=2&fps=5"),
    ],
)
def test_valid_urls_are_normalised(url, expected):
    assert validate_source_url(url) == expected


def test_file_paths_and_file_urls(tmp_path, monkeypatch):
    video = tmp_path / "clip one.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    assert validate_source_url(str(video)) == str(video)
    assert validate_source_url(f"file://{video}") == "file://" + str(video).replace(" ", "%20")
    assert validate_source_url("file://" + str(video).replace(" ", "%20")) == "file://" + str(video).replace(" ", "%20")
    monkeypatch.chdir(tmp_path)
    assert validate_source_url("clip one.mp4") == str(video)  # relative -> absolute


@pytest.mark.parametrize(
    "url, message",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("ftp://example.com/video.mp4", "unsupported scheme 'ftp'"),
        ("javascript:alert(1)", "unsupported scheme 'javascript'"),
        ("mailto:someone@example.com", "unsupported scheme 'mailto'"),
        ("rtsp:cam/stream", "must start with 'rtsp://'"),
        ("rtsp://", "no host"),
        ("http:///path/only", "no host"),
        ("rtsp://:554/stream", "no host"),
        ("rtsp://cam 1/stream", "spaces"),
        ("rtsp://cam/str\x00eam", "control characters"),
        ("http://cam/\nx", "control characters"),
        ("rtsp://cam:99999/x", "port"),
        ("rtsp://cam:abc/x", "port"),
        ("rtsp://bad_host!/x", "invalid host"),
        ("rtsp://cam/" + "a" * 1100, "longer than 1024"),
        ("device://abc", "non-negative integer"),
        ("device://-1", "non-negative integer"),
        ("device://", "non-negative integer"),
        ("demo://?colour=red", "unknown demo parameter 'colour'"),
        ("demo://?fps=fast", "not a valid float"),
        ("demo://?seed=1.5", "not a valid int"),
        ("demo://?width=10", "out of range"),
        ("demo://?seed=1&seed=2", "given twice"),
        ("demo://somehost", "no host or path"),
        ("file://remotehost/video.mp4", "local file"),
    ],
)
def test_invalid_urls_name_the_problem(url, message):
    with pytest.raises(ValueError) as info:
        validate_source_url(url)
    assert message in str(info.value)


def test_missing_file_and_directory_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="file not found"):
        validate_source_url(str(tmp_path / "nope.mp4"))
    with pytest.raises(ValueError, match="file not found"):
        validate_source_url(f"file://{tmp_path}/nope.mp4")
    with pytest.raises(ValueError, match="not a regular file"):
        validate_source_url(str(tmp_path))


def test_non_string_is_rejected():
    with pytest.raises(ValueError, match="string"):
        validate_source_url(None)  # type: ignore[arg-type]


def test_open_source_picks_the_class_without_opening(tmp_path):
    demo = open_source("demo://?seed=2")
    assert isinstance(demo, DemoSource) and isinstance(demo, FrameSource)
    with pytest.raises(SourceError, match="not open"):
        demo.read()
    stream = open_source("rtsp://cam.example/stream")
    assert isinstance(stream, OpenCVSource) and stream.is_live and stream.kind == "stream"
    device = open_source("device://3")
    assert isinstance(device, OpenCVSource) and device.is_live and device.target == 3
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\x00" * 64)
    file_source = open_source(str(video), loop=True)
    assert isinstance(file_source, OpenCVSource) and not file_source.is_live and file_source.loop
    with pytest.raises(ValueError):
        open_source("ftp://nope")


# --------------------------------------------------------------------------------------------
# DemoSource
# --------------------------------------------------------------------------------------------


def test_demo_frames_shape_timestamps_and_params():
    source = DemoSource("demo://")
    assert not source.is_live and source.native_fps == 10.0
    with source:
        frames = [source.read() for _ in range(5)]
    assert frames[0].image.shape == (360, 640, 3) and frames[0].image.dtype == np.uint8
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert [f.timestamp for f in frames] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    # the scene has content: texture and people, not a flat image
    assert frames[0].image.std() > 20
    assert not np.array_equal(frames[0].image, frames[4].image)

    small = DemoSource("demo://?width=320&height=180&fps=5")
    with small:
        f0, f1 = small.read(), small.read()
    assert f0.image.shape == (180, 320, 3)
    assert f1.timestamp == pytest.approx(0.2)
    assert parse_demo_params("demo://?fps=5")["fps"] == 5.0


def test_demo_is_deterministic_by_seed_and_skip_matches_read():
    def frames(url, n, skip=0):
        source = DemoSource(url)
        source.open()
        source.skip(skip)
        return [source.read() for _ in range(n)]

    a = frames("demo://?seed=5", 30)
    b = frames("demo://?seed=5", 30)
    c = frames("demo://?seed=6", 30)
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b))
    assert not all(np.array_equal(x.image, y.image) for x, y in zip(a, c))
    later = frames("demo://?seed=5", 5, skip=25)
    assert [f.index for f in later] == [25, 26, 27, 28, 29]
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a[25:], later))


def test_demo_is_infinite_and_has_sensor_noise():
    source = DemoSource("demo://?width=160&height=90&anomaly_every=0")
    source.open()
    source.skip(20_000)  # more than half an hour of media time
    frame = source.read()
    assert frame is not None and frame.index == 20_000
    assert frame.timestamp == pytest.approx(2000.0)
    # consecutive frames differ a little everywhere (noise), not only where people walk
    a = source.read().image.astype(int)
    b = source.read().image.astype(int)
    assert 0.5 < np.abs(a - b)[:10].mean() < 10


def test_demo_ground_truth_covers_all_kinds_and_matches_current_anomaly():
    source = DemoSource("demo://?seed=3&anomaly_every=20&width=160&height=90")
    intervals = source.anomaly_intervals(150.0)
    assert len(intervals) >= 4
    kinds = {kind for _, _, kind in intervals}
    assert kinds == set(DEMO_KINDS) == {"running", "fall", "forbidden_area"}
    starts = [start for start, _, _ in intervals]
    assert starts == sorted(starts) and starts[0] > 10.0  # the first seconds are normal
    for start, end, _ in intervals:
        assert 1.0 < end - start < 20.0
    for (_, end, _), (start, _, _) in zip(intervals, intervals[1:]):
        assert start > end  # never two at once
    # the same schedule from a fresh instance (deterministic), and none when disabled
    assert DemoSource("demo://?seed=3&anomaly_every=20&width=160&height=90").anomaly_intervals(150.0) == intervals
    assert DemoSource("demo://?seed=3&anomaly_every=0").anomaly_intervals(500.0) == []

    source.open()
    seen = {}
    labels = []
    for _ in range(int(intervals[3][1] * 10) + 5):
        frame = source.read()
        expected = next((k for s, e, k in intervals if s <= frame.timestamp <= e), None)
        assert source.current_anomaly == expected
        labels.append(source.current_anomaly is not None)
        if expected:
            seen[expected] = seen.get(expected, 0) + 1
    assert set(seen) == set(DEMO_KINDS)
    assert source.labels(len(labels)).tolist() == [int(x) for x in labels]


def _frame_at(url: str, t: float) -> np.ndarray:
    source = DemoSource(url)
    source.open()
    source.skip(int(round(t * 10)))
    return source.read().image


def _changed_box(url_with: str, url_without: str, t: float):
    """Bounding box (x0, y0, x1, y1) of what the scripted anomaly adds to the picture at ``t``.

    Normal traffic, background and noise depend only on the seed, so the same scene without
    anomalies differs exactly where the anomalous person is drawn."""
    a = _frame_at(url_with, t).astype(int)
    b = _frame_at(url_without, t).astype(int)
    ys, xs = np.nonzero(np.abs(a - b).max(axis=2) > 30)
    assert len(xs) > 20, "the anomalous person should be visible"
    return xs.min(), ys.min(), xs.max(), ys.max()


def test_demo_anomalies_are_drawn_as_described():
    url = "demo://?seed=3&anomaly_every=20&width=320&height=180"
    normal = "demo://?seed=3&anomaly_every=0&width=320&height=180"
    source = DemoSource(url)
    intervals = source.anomaly_intervals(200.0)

    start, end, _ = next(i for i in intervals if i[2] == "fall")
    x0, y0, x1, y1 = _changed_box(url, normal, (start + end) / 2)
    assert (x1 - x0) > 1.5 * (y1 - y0)  # lying down: wider than tall

    start, end, _ = next(i for i in intervals if i[2] == "forbidden_area")
    zx0, zy0, zx1, zy1 = source.zone
    feet_y = None
    for t in np.linspace(start, end, 9)[2:7]:
        x0, y0, x1, y1 = _changed_box(url, normal, float(t))
        if zx0 <= (x0 + x1) / 2 <= zx1 and zy0 - 3 <= y1 <= zy1 + 3:
            feet_y = y1
    assert feet_y is not None, "the person should stand inside the marked zone at some point"

    start, end, _ = next(i for i in intervals if i[2] == "running")
    boxes = [_changed_box(url, normal, start + 0.5 + k * 0.1) for k in range(2)]
    height = boxes[0][3] - boxes[0][1]
    moved = abs((boxes[1][0] + boxes[1][2]) - (boxes[0][0] + boxes[0][2])) / 2
    # running: several metres per second, i.e. more than a body height per second (> 0.1 h/frame)
    assert moved > 0.15 * height


# --------------------------------------------------------------------------------------------
# OpenCVSource: files
# --------------------------------------------------------------------------------------------


def test_file_source_reads_real_footage():
    path = need_vtest()
    source = OpenCVSource(str(path))
    assert not source.is_live
    with source:
        assert source.native_fps == pytest.approx(10.0)
        frames = [source.read() for _ in range(10)]
    assert frames[0].image.shape == (360, 480, 3) and frames[0].image.dtype == np.uint8
    assert [f.index for f in frames] == list(range(10))
    assert [f.timestamp for f in frames] == pytest.approx([i / 10 for i in range(10)])
    assert source._cap is None  # closed by the context manager


def test_file_source_skip_matches_sequential_decoding():
    path = need_vtest()
    with OpenCVSource(f"file://{path}") as sequential:
        decoded = [sequential.read() for _ in range(61)]
    with OpenCVSource(str(path)) as skipping:
        first = skipping.read()
        skipping.skip(59)
        frame = skipping.read()
    assert np.array_equal(first.image, decoded[0].image)
    assert frame.index == 60 and frame.timestamp == pytest.approx(6.0)
    assert np.array_equal(frame.image, decoded[60].image)


def test_file_source_end_returns_none_and_loop_rewinds():
    path = need_vtest()
    with OpenCVSource(str(path)) as source:
        first = source.read()
        source.skip(10_000)  # past the end: stops quietly
        assert source.read() is None
        assert source.read() is None
    with OpenCVSource(str(path), loop=True) as looping:
        looping.skip(794)
        last = looping.read()
        again = looping.read()
    assert last.index == 794
    assert again is not None and again.index == 795  # indices keep counting
    assert again.timestamp == pytest.approx(79.5)  # so do timestamps (monotonic for detectors)
    assert np.array_equal(again.image, first.image)  # but the picture is the first frame again


def test_file_source_errors_name_the_cause(tmp_path):
    with pytest.raises(SourceError, match="file not found"):
        OpenCVSource(str(tmp_path / "missing.mp4")).open()

    text = tmp_path / "notes.mp4"
    text.write_text("this is a text file, not a video\n" * 20)
    with pytest.raises(SourceError, match="not a video") as info:
        OpenCVSource(str(text)).open()
    assert str(text) in str(info.value)

    plain = tmp_path / "readme.txt"  # FFmpeg would render .txt as an "ansi" video: refused
    plain.write_text("hello\n")
    with pytest.raises(SourceError, match="not a video"):
        OpenCVSource(str(plain)).open()

    junk = tmp_path / "corrupt.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    with pytest.raises(SourceError, match="not a video|cannot decode"):
        OpenCVSource(str(junk)).open()

    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    with pytest.raises(SourceError, match="empty"):
        OpenCVSource(str(empty)).open()

    with pytest.raises(SourceError, match="not a regular file"):
        OpenCVSource(str(tmp_path)).open()


def test_file_written_by_opencv_round_trips(tmp_path):
    """A small video written here (no shared footage needed) reads back frame by frame."""
    path = tmp_path / "tiny.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (64, 48))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write MJPG/AVI")
    for i in range(12):
        writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    writer.release()
    with OpenCVSource(str(path)) as source:
        frames = []
        while (frame := source.read()) is not None:
            frames.append(frame)
    assert len(frames) == 12
    assert source.native_fps == pytest.approx(5.0)
    assert frames[3].timestamp == pytest.approx(0.6)
    assert [int(round(f.image.mean() / 20)) for f in frames] == list(range(12))


# --------------------------------------------------------------------------------------------
# OpenCVSource: live streams with an injected fake capture
# --------------------------------------------------------------------------------------------


class FakeCapture:
    """Stands in for cv2.VideoCapture: produces numbered frames at ``fps`` in real time."""

    def __init__(self, fps=100.0, opened=True, fail_after=None, stall_after=None, resize_after=None,
                 shape=(48, 64)):
        self.fps = fps
        self.opened = opened
        self.fail_after = fail_after
        self.stall_after = stall_after
        self.resize_after = resize_after
        self.shape = shape
        self.produced = 0
        self.released = False
        self.lock = threading.Lock()

    def isOpened(self):
        return self.opened

    def get(self, prop):
        return self.fps if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        if self.stall_after is not None and self.produced >= self.stall_after:
            time.sleep(0.5)
            return False, None
        time.sleep(1.0 / self.fps)
        if self.fail_after is not None and self.produced >= self.fail_after:
            return False, None
        h, w = self.shape
        if self.resize_after is not None and self.produced >= self.resize_after:
            h, w = h * 2, w * 2
        image = np.zeros((h, w, 3), np.uint8)
        with self.lock:
            n = self.produced
            self.produced += 1
        image[0, 0, 0], image[0, 0, 1] = n % 256, n // 256
        return True, image

    def grab(self):
        return self.read()[0]

    def release(self):
        self.released = True


def fake_factory(capture, calls=None):
    def factory(target, api, params):
        if calls is not None:
            calls.append((target, api, list(params)))
        return capture

    return factory


def number(frame) -> int:
    return int(frame.image[0, 0, 0]) + 256 * int(frame.image[0, 0, 1])


def test_live_source_returns_the_newest_frame_not_a_backlog():
    capture = FakeCapture(fps=200.0)
    calls = []
    source = OpenCVSource("rtsp://cam.example/stream", capture_factory=fake_factory(capture, calls),
                          read_timeout=2.0)
    assert source.is_live
    with source:
        first = source.read()
        assert abs(first.timestamp - time.time()) < 60  # wall-clock timestamps, not media time
        deadline = time.monotonic() + 10
        while capture.produced < number(first) + 40 and time.monotonic() < deadline:
            time.sleep(0.01)  # a slow consumer: 40 frames arrive meanwhile
        second = source.read()
        latest = capture.produced - 1
        third = source.read()
    assert number(second) - number(first) >= 35  # skipped straight to a recent frame
    assert latest - number(second) <= 5
    assert second.index == number(second)  # Frame.index counts frames received: gaps show drops
    assert number(third) > number(second)  # read() waits for a NEWER frame, never repeats one
    assert capture.released
    assert source._thread is None
    # streams get FFmpeg open/read timeouts
    target, api, params = calls[0]
    assert target == "rtsp://cam.example/stream" and api == cv2.CAP_FFMPEG
    assert cv2.CAP_PROP_OPEN_TIMEOUT_MSEC in params[::2] and cv2.CAP_PROP_READ_TIMEOUT_MSEC in params[::2]


def test_live_source_reads_in_order_without_duplicates():
    capture = FakeCapture(fps=100.0)
    with OpenCVSource("http://cam.example/mjpeg", capture_factory=fake_factory(capture)) as source:
        numbers = [number(source.read()) for _ in range(15)]
        source.skip(10)
        after_skip = number(source.read())
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert after_skip >= numbers[-1] + 11


def test_live_source_reports_a_dropped_stream():
    capture = FakeCapture(fps=200.0, fail_after=5)
    with OpenCVSource("rtsp://cam.example/s", capture_factory=fake_factory(capture), read_timeout=2.0) as source:
        with pytest.raises(SourceError, match="stream dropped"):
            for _ in range(20):
                source.read()


def test_live_source_times_out_on_a_stalled_stream():
    capture = FakeCapture(fps=200.0, stall_after=2)
    source = OpenCVSource("rtsp://cam.example/s", capture_factory=fake_factory(capture), read_timeout=0.3)
    source.open()
    try:
        with pytest.raises(SourceError, match="timed out|dropped"):
            for _ in range(10):
                source.read()
    finally:
        source.close()


def test_live_source_detects_a_resolution_change():
    capture = FakeCapture(fps=200.0, resize_after=4)
    with OpenCVSource("rtsp://cam.example/s", capture_factory=fake_factory(capture), read_timeout=2.0) as source:
        with pytest.raises(SourceError, match="resolution changed mid-stream from 64x48 to 128x96"):
            for _ in range(20):
                source.read()


def test_unreachable_stream_and_device_name_the_cause_and_hide_passwords():
    closed = FakeCapture(opened=False)
    source = OpenCVSource("rtsp://admin:s3cret@cam.example/s", capture_factory=fake_factory(closed),
                          open_timeout=2.0)
    with pytest.raises(SourceError, match="stream unreachable") as info:
        source.open()
    assert "s3cret" not in str(info.value) and "admin:***@cam.example" in str(info.value)
    with pytest.raises(SourceError, match="camera device 7 is not available"):
        OpenCVSource("device://7", capture_factory=fake_factory(FakeCapture(opened=False))).open()


def test_unreachable_real_stream_fails_fast():
    """A real FFmpeg connection to a closed local port fails with a clear message."""
    source = OpenCVSource("rtsp://127.0.0.1:9/none", open_timeout=3.0)
    with pytest.raises(SourceError, match="stream unreachable"):
        source.open()
