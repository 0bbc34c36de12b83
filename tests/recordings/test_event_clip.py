"""Event clips cut from the recording: where the camera records, a closed event's clip (first encoded from the
analysed frames) is cut again from real H.264 segments, from CLIP_PRE_SECONDS before it opened to CLIP_POST_SECONDS
after it closed, copied without re-encoding at the recording's resolution, in place of the encoded file (checked with
ffprobe); it waits for the recording to reach the clip's end, then uses what is there; without footage, or for an open
event, the encoded clip stays. Storing a closed event queues the cut once, due after the recording can hold it."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import cv2
import pytest
from django.utils import timezone

from events.models import AnomalyEvent
from events.services import event_records_store
from recordings import receivers
from recordings.services import event_clip_from_recording, event_clip_window, event_clips_to_cut
from recordings.tasks import recordings_event_clip
from runtime.media import store_clip
from tests.conftest import dataset
from tests.factories import CameraFactory, EventFactory
from tests.recordings.test_export import SEGMENT, ffprobe, h264_segments, record  # noqa: F401  (a fixture)

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


def analysed_frames(n: int = 10, width: int = 160) -> list:
    """What the camera's loop hands the clip encoder: frames of the same footage at the analysis size."""
    capture = cv2.VideoCapture(str(dataset("pets-walkway/vtest.avi")))
    frames = []
    for i in range(n):
        ok, image = capture.read()
        assert ok
        frames.append((float(i), cv2.resize(image, (width, width * image.shape[0] // image.shape[1] // 2 * 2))))
    capture.release()
    return frames


@pytest.fixture
def recorded(db, settings, tmp_path, h264_segments):  # noqa: F811
    settings.RECORDING_DIR = tmp_path / "rec"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CLIP_PRE_SECONDS = 4.0
    settings.CLIP_POST_SECONDS = 2.0
    settings.CLIP_MAX_SECONDS = 30.0
    settings.CLIP_RECORDING_WAIT_SECONDS = 60.0
    settings.CLIP_ENCODE_PRESET = "ultrafast"
    camera = CameraFactory(record_mode="continuous")
    start = (timezone.now() - timedelta(minutes=5)).replace(microsecond=0)
    record(camera, h264_segments, start, settings.RECORDING_DIR)  # 4 segments of 2 s: start .. start + 8 s
    return camera, start


def closed_event(camera, start, *, opened: float, closed: float | None) -> AnomalyEvent:
    event_id = uuid.uuid4()
    clip = store_clip(event_id, analysed_frames(), 5.0)
    return EventFactory(id=event_id, camera=camera, started_at=start + timedelta(seconds=opened),
                        ended_at=start + timedelta(seconds=closed) if closed is not None else None, clip=clip)


def test_a_closed_event_gets_its_clip_cut_from_the_recording_with_pre_roll_copied(recorded):
    camera, start = recorded
    event = closed_event(camera, start, opened=5.0, closed=5.5)
    before = ffprobe(event.clip.path)
    assert before["codec"] == "h264" and before["duration"] == pytest.approx(2.0, abs=0.3)  # 10 analysed frames
    assert event_clip_window(event) == (start + timedelta(seconds=1), start + timedelta(seconds=7.5))

    assert event_clip_from_recording(event.pk, now=start + timedelta(seconds=20)) == "done"

    event.refresh_from_db()
    assert event.clip.name.endswith(f"{event.pk}.mp4")  # the same name: nothing stored changed
    after = ffprobe(event.clip.path)
    # 4 s before it opened to 2 s after it closed: 6.5 s of the recording, at the recording's width (384), not the
    # analysis size (160): copied, not encoded again.
    assert after["codec"] == "h264" and after["duration"] == pytest.approx(6.5, abs=0.15)
    width = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width",
                            "-of", "csv=p=0", event.clip.path], capture_output=True, text=True, check=True).stdout
    assert int(width) == 384
    assert not list(Path(event.clip.path).parent.glob("*.rec.*"))  # no work files left
    # Safe to run twice: the same cut again.
    assert event_clip_from_recording(event.pk, now=start + timedelta(seconds=20)) == "done"
    assert ffprobe(event.clip.path)["duration"] == pytest.approx(6.5, abs=0.15)


def test_the_cut_waits_for_the_recording_to_reach_the_clips_end_then_uses_what_is_recorded(recorded):
    camera, start = recorded
    event = closed_event(camera, start, opened=6.0, closed=7.0)  # its clip would end at start + 9 s: not recorded
    encoded = ffprobe(event.clip.path)
    assert event_clip_from_recording(event.pk, now=start + timedelta(seconds=10)) == "wait"
    assert ffprobe(event.clip.path) == encoded  # untouched while it waits
    # CLIP_RECORDING_WAIT_SECONDS later the recording still ends at start + 8 s: the clip is what there is.
    assert event_clip_from_recording(event.pk, now=start + timedelta(seconds=70)) == "done"
    assert ffprobe(event.clip.path)["duration"] == pytest.approx(6.0, abs=0.15)  # start + 2 s .. start + 8 s


def test_without_footage_or_while_open_the_encoded_clip_stays(recorded):
    camera, start = recorded
    elsewhere = closed_event(camera, start, opened=-600.0, closed=-590.0)  # long before the recording began
    encoded = ffprobe(elsewhere.clip.path)
    assert event_clip_from_recording(elsewhere.pk, now=start) == "no_footage"
    assert ffprobe(elsewhere.clip.path) == encoded
    still_open = closed_event(camera, start, opened=5.0, closed=None)
    assert event_clip_from_recording(still_open.pk, now=start + timedelta(seconds=60)) == "skip"
    webm = EventFactory(camera=camera, started_at=start + timedelta(seconds=5), clip="events/clips/old.webm")
    assert event_clip_from_recording(webm.pk) == "skip"
    assert event_clip_from_recording(uuid.uuid4()) == "skip"


def test_the_task_cuts_the_clip(recorded):
    camera, start = recorded
    event = closed_event(camera, start, opened=2.0, closed=3.0)
    assert recordings_event_clip.apply(args=(str(event.pk),)).get() == "done"
    assert ffprobe(event.clip.path)["duration"] == pytest.approx(5.0, abs=0.15)  # recorded from start, not start - 2 s


def test_storing_a_closed_event_queues_its_cut_once_when_the_camera_records(recorded, monkeypatch,
                                                                           django_capture_on_commit_callbacks):
    camera, start = recorded
    quiet = CameraFactory(record_mode="off")
    queued = []
    monkeypatch.setattr(receivers.recordings_event_clip, "apply_async",
                        lambda args, countdown: queued.append((args[0], countdown)))
    clip = store_clip(uuid.uuid4(), analysed_frames(3), 5.0)
    now = timezone.now()
    records = [{"id": str(uuid.uuid4()), "camera_id": cam.id, "started_at": (now - timedelta(seconds=9)).isoformat(),
                "ended_at": ended, "clip": clip, "severity": "medium"}
               for cam, ended in ((camera, now.isoformat()), (camera, None), (quiet, now.isoformat()))]
    with django_capture_on_commit_callbacks(execute=True):
        event_records_store(records)
    # Only the closed event of the recording camera, due once the recording may hold its end (post-roll + a segment).
    assert [q[0] for q in queued] == [records[0]["id"]]
    assert queued[0][1] == pytest.approx(2.0 + 10.0 + 2, abs=2)
    with django_capture_on_commit_callbacks(execute=True):
        event_records_store(records)  # the same event stored again (a later batch, a replay)
    assert len(queued) == 1
    assert event_clips_to_cut([records[0]["id"]]) == []


def test_clips_from_the_recording_can_be_switched_off(recorded, settings):
    camera, start = recorded
    settings.CLIP_FROM_RECORDING = False
    event = closed_event(camera, start, opened=5.0, closed=5.5)
    assert event_clips_to_cut([event.pk]) == []
