"""Event clips: written by the camera loop with a pre-roll, stored with the event, served with ranges, retained."""

import json
import os
import shutil
import subprocess
import time
import uuid
from datetime import timedelta

import cv2
import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone

from events.models import AnomalyEvent
from events.serializers import EventOutputSerializer
from events.services import event_clips_enforce_retention, event_records_store
from inference.agent import RulePolicy
from inference.base import Detector, DetectorResult, Frame, FrameSource
from inference.e2e import Callbacks, E2ESystem
from runtime.media import store_clip
from surveillance.schedules import beat_schedules
from tests.factories import EventFactory


class Frames(FrameSource):
    is_live = False

    def __init__(self, count, size=(480, 640)):
        super().__init__("test://")
        self.count, self.size, self.i = count, size, 0

    @property
    def native_fps(self):
        return 5.0

    def open(self):
        self.i = 0

    def read(self):
        if self.i >= self.count:
            return None
        image = np.full((*self.size, 3), (self.i * 7) % 255, np.uint8)
        cv2.putText(image, str(self.i), (40, 200), cv2.FONT_HERSHEY_SIMPLEX, 4, (255, 255, 255), 8)
        frame = Frame(image=image, timestamp=self.i / 5.0, index=self.i)
        self.i += 1
        return frame


class Scripted(Detector):
    """Anomalous (score 0.9) on frames ``start`` to ``end`` (exclusive), else 0.1."""

    def __init__(self, start, end):
        super().__init__()
        self.start, self.end, self.n = start, end, 0

    def score(self, gray, timestamp):
        n, self.n = self.n, self.n + 1
        return DetectorResult(score=0.9 if self.start <= n < self.end else 0.1, regions=[(10, 20, 30, 40)])


class Recorder(Callbacks):
    def __init__(self):
        self.records = []

    def on_event(self, camera_id, record):
        self.records.append(record)


def run_loop(tmp_path, settings, *, frames, start, end, pre=2.0, cap=60.0):
    settings.MEDIA_ROOT = tmp_path
    recorder = Recorder()
    system = E2ESystem(
        {"id": 1, "threshold": 0.5, "event_close_seconds": 1.0, "analysis_fps": 5.0, "analysis_width": 320},
        source=Frames(frames), detector=Scripted(start, end), agent=RulePolicy(), callbacks=recorder,
        clip_store=store_clip, clip_pre_seconds=pre, clip_max_seconds=cap, realtime=False)
    import threading

    system.run(threading.Event())
    system.wait_pending()
    return recorder.records


def frame_count(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    cap.release()
    return n, size


def ffprobe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=codec_name,pix_fmt,nb_frames:format=format_name", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    return {**data["streams"][0], "format": data["format"]["format_name"]}


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_the_loop_writes_an_h264_mp4_clip_with_pre_roll_until_the_event_ended(tmp_path, settings):
    # frames 20..29 anomalous; the event closes 1 s (5 frames) after the last anomalous frame
    records = run_loop(tmp_path, settings, frames=60, start=20, end=30, pre=2.0)
    opened, closed = records[0], records[-1]
    assert opened["clip"] == "" and opened["ended_at"] is None  # the open event has no clip yet
    assert closed["clip"].startswith("events/clips/") and closed["clip"].endswith(".mp4")
    path = tmp_path / closed["clip"]
    data = path.read_bytes()
    assert data[4:8] == b"ftyp" and data.find(b"moov") < data.find(b"mdat")  # MP4, faststart: plays while loading
    probe = ffprobe(path)
    assert probe["codec_name"] == "h264" and probe["pix_fmt"] == "yuv420p" and "mp4" in probe["format"]
    count, size = frame_count(path)
    # 10 pre-roll frames (2 s at 5 fps) + the anomalous 10 + the quiet frames until it closed
    assert 10 + 10 + 4 <= count <= 10 + 10 + 6
    assert size == (320, 240)  # the analysis-size frames: no other copy of the frame is made
    assert not list(path.parent.glob("*.part.*"))


def test_without_ffmpeg_the_clip_is_a_vp8_webm_as_before_and_it_is_logged(tmp_path, settings, caplog):
    settings.FFMPEG_BINARY = "/nonexistent/ffmpeg"
    records = run_loop(tmp_path, settings, frames=60, start=20, end=30, pre=2.0)
    closed = records[-1]
    assert closed["clip"].endswith(".webm")
    path = tmp_path / closed["clip"]
    assert path.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # EBML: a WebM/Matroska file
    assert 10 + 10 + 4 <= frame_count(path)[0] <= 10 + 10 + 6
    assert not list(path.parent.glob("*.part.*"))


def test_a_long_event_clip_is_capped(tmp_path, settings):
    records = run_loop(tmp_path, settings, frames=120, start=10, end=100, pre=1.0, cap=4.0)
    count, _ = frame_count(tmp_path / records[-1]["clip"])
    assert count == 20  # 4 s at 5 fps


def test_clip_store_failure_keeps_the_event(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    recorder = Recorder()

    def broken(*args):
        raise OSError("disk full")

    system = E2ESystem({"id": 1, "threshold": 0.5, "event_close_seconds": 1.0, "analysis_fps": 5.0},
                       source=Frames(40), detector=Scripted(5, 10), agent=RulePolicy(), callbacks=recorder,
                       clip_store=broken, realtime=False)
    import threading

    system.run(threading.Event())
    assert recorder.records[-1]["ended_at"] and recorder.records[-1]["clip"] == ""


@pytest.mark.django_db
def test_stored_events_keep_their_clip_and_the_api_links_it(camera):
    record = {"id": str(uuid.uuid4()), "camera_id": camera.pk, "started_at": timezone.now().isoformat(),
              "ended_at": None, "clip": "", "details": {}}
    event_records_store([record])
    event_records_store([{**record, "ended_at": timezone.now().isoformat(), "clip": "events/clips/a.mp4"}])
    event = AnomalyEvent.objects.get()
    assert event.clip.name == "events/clips/a.mp4"
    assert EventOutputSerializer(event).data["clip"] == reverse("event-clip", args=[event.pk])
    assert reverse("event-clip", args=[event.pk]).endswith("/clip.mp4")
    event.clip.name = "events/clips/a.webm"  # an older event's clip keeps its WebM address
    assert EventOutputSerializer(event).data["clip"] == f"/events/{event.pk}/clip.webm"
    assert "clip" in AnomalyEvent.WORKER_FIELDS


@pytest.fixture
def clip_event(camera, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "events/clips").mkdir(parents=True)
    (tmp_path / "events/clips/c.webm").write_bytes(bytes(range(256)) * 4)
    return EventFactory(camera=camera, clip="events/clips/c.webm")


@pytest.mark.django_db
def test_clip_is_served_with_byte_ranges_to_viewers_only(client, clip_event, viewer, outsider):
    url = reverse("event-clip", args=[clip_event.pk])
    client.force_login(viewer)
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "video/webm"
    assert response["Accept-Ranges"] == "bytes" and len(b"".join(response.streaming_content)) == 1024
    response = client.get(url, HTTP_RANGE="bytes=10-19")
    assert response.status_code == 206 and response.content == bytes(range(10, 20))
    assert response["Content-Range"] == "bytes 10-19/1024"
    assert client.get(url, HTTP_RANGE="bytes=1000-").content == bytes(range(232, 256))
    assert client.get(url, HTTP_RANGE="bytes=-4").content == bytes(range(252, 256))
    assert client.get(url, HTTP_RANGE="bytes=5000-").status_code == 416
    client.force_login(outsider)
    assert client.get(url).status_code == 404


@pytest.mark.django_db
def test_retention_removes_old_clips_then_the_oldest_over_the_disk_cap(camera, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.CLIP_RETENTION_DAYS = 7
    settings.CLIP_MAX_TOTAL_MB = 2.5 / 1024  # 2.5 KiB
    folder = tmp_path / "events/clips/2026/01/01"
    folder.mkdir(parents=True)
    now = timezone.now()
    events = []
    for i, age in enumerate([10, 3, 2, 1]):  # days
        name = f"events/clips/2026/01/01/e{i}.webm"
        (tmp_path / name).write_bytes(b"x" * 1024)
        os.utime(tmp_path / name, (time.time() - age * 86400,) * 2)
        events.append(EventFactory(camera=camera, clip=name, started_at=now - timedelta(days=age)))
    orphan = folder / "orphan.webm"
    orphan.write_bytes(b"x" * 10)
    os.utime(orphan, (time.time() - 5 * 86400,) * 2)

    result = event_clips_enforce_retention()
    clips = dict(AnomalyEvent.objects.values_list("id", "clip"))
    assert clips[events[0].pk] == "" and not (tmp_path / "events/clips/2026/01/01/e0.webm").exists()  # expired
    assert not orphan.exists()  # the oldest file over the cap, though no event names it
    assert clips[events[1].pk] == ""  # the oldest over the 2.5 KiB cap
    assert clips[events[2].pk] and clips[events[3].pk]
    assert result == {"expired": 1, "over_cap": 2, "bytes": 2048}
    assert event_clips_enforce_retention() == {"expired": 0, "over_cap": 0, "bytes": 2048}  # safe to run again


def test_retention_runs_on_beat(settings):
    settings.CLIP_RETENTION_CHECK_SECONDS = 1800
    assert beat_schedules()["events-clips-retention"] == {"task": "events.tasks.events_clips_retention",
                                                          "every": 1800}
    from events.tasks import events_clips_retention

    assert events_clips_retention.name == "events.tasks.events_clips_retention"


@pytest.fixture
def mp4_clip_event(camera, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "events/clips").mkdir(parents=True)
    (tmp_path / "events/clips/c.mp4").write_bytes(b"\0\0\0\x18ftypisom" + bytes(1000))
    return EventFactory(camera=camera, clip="events/clips/c.mp4")


@pytest.mark.django_db
def test_an_mp4_clip_is_served_as_mp4_at_either_address_and_the_page_plays_it(client, mp4_clip_event, viewer):
    client.force_login(viewer)
    for url in (f"/events/{mp4_clip_event.pk}/clip.mp4", f"/events/{mp4_clip_event.pk}/clip.webm"):
        response = client.get(url, HTTP_RANGE="bytes=4-7")
        assert response.status_code == 206 and response.content == b"ftyp" and response["Content-Type"] == "video/mp4"
    page = client.get(reverse("event-page", args=[mp4_clip_event.pk])).content.decode()
    assert f'src="/events/{mp4_clip_event.pk}/clip.mp4"' in page


@pytest.mark.django_db
def test_an_older_webm_clip_keeps_its_address_and_type(client, clip_event, viewer):
    client.force_login(viewer)
    page = client.get(reverse("event-page", args=[clip_event.pk])).content.decode()
    assert f'src="/events/{clip_event.pk}/clip.webm"' in page
    assert client.get(f"/events/{clip_event.pk}/clip.mp4")["Content-Type"] == "video/webm"  # the file's real type
