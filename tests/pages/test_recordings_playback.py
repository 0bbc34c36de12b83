"""Recorded footage played on the camera page, in Debian's Chromium against a real daphne: the timeline shows
the last 24 hours' segments (real H.264 cut from real footage), a click plays from that moment, the video
element gets a duration and plays, and playback goes on into the next segment. The event page plays its moment
from the same recording."""

import shutil
import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from recordings.models import Export
from recordings.services import segment_index
from recordings.tasks import recordings_export
from tests.conftest import dataset
from tests.factories import CameraFactory, EventFactory, UserFactory
from tests.pages.test_alert_toasts import in_thread
from tests.pages.test_browser import JS_ERRORS, sign_in
from tests.system.processes import process_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def encode(folder, rel, start_s: float, seconds: float) -> int:
    out = folder / rel
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", str(start_s), "-i", str(dataset("pets-walkway/vtest.avi")),
                    "-t", str(seconds), "-an", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-movflags", "+faststart", str(out)], check=True)
    return out.stat().st_size


def test_the_camera_page_plays_recorded_footage_across_segments(processes, browser, tmp_path, settings):
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    JS_ERRORS.clear()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    folder = tmp_path / "recordings"
    alice = UserFactory(username="alice")
    camera = CameraFactory(name="Walkway", record_mode="continuous")
    assign_perm("view_camera", alice, camera)
    t0 = timezone.now() - timedelta(minutes=20)
    for i in range(2):
        rel = f"{camera.id}/seg-{i}.mp4"
        size = encode(folder, rel, 3 * i, 3)
        segment_index(camera_id=camera.id, start=t0 + timedelta(seconds=3 * i),
                      end=t0 + timedelta(seconds=3 * (i + 1)), path=rel, size=size, codec="h264", encoded=True)
    settings.RECORDING_DIR, settings.RECORDING_EXPORT_DIR = folder, tmp_path / "exports"  # the export runs here
    env = process_env(tmp_path, RECORDING_DIR=folder, RECORDING_EXPORT_DIR=tmp_path / "exports")
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    base = f"http://127.0.0.1:{processes.daphne(env)}"

    page = sign_in(browser, base, "alice")
    page.goto(f"{base}/cameras/{camera.id}/")
    page.wait_for_function("window.SurveillanceRecordings && window.SurveillanceRecordings.segments().length === 2")
    assert page.locator("#recordings .rec-range").count() == 1  # two contiguous segments: one range
    assert page.locator("#rec-empty").is_hidden()

    page.click("#recordings .rec-range")  # click to play from that moment
    page.wait_for_function("document.querySelector('#rec-video').duration > 2.5", timeout=20_000)
    page.wait_for_function("document.querySelector('#rec-video').currentTime > 0.3", timeout=20_000)
    assert page.evaluate("document.querySelector('#rec-video').paused") is False

    # From 1.5 s into the first segment, playback goes on into the second.
    page.evaluate(f"window.SurveillanceRecordings.play({int(t0.timestamp() * 1000) + 1500})")
    page.wait_for_function("window.SurveillanceRecordings.current() === 0 && "
                           "document.querySelector('#rec-video').currentTime >= 1.4", timeout=20_000)
    page.wait_for_function("window.SurveillanceRecordings.current() === 1 && "
                           "document.querySelector('#rec-video').currentTime > 0.2", timeout=20_000)
    assert "seg-1.mp4" not in page.evaluate("document.querySelector('#rec-video').src")  # served by the API
    assert page.evaluate("document.querySelector('#rec-video').src").endswith("/video/")
    assert page.inner_text("#rec-time")

    # Export the two segments' range from the page: queued, run (as the default-queue worker runs it), then the
    # download link, an MP4 of the range that ffprobe reads.
    since, until = t0.astimezone(), (t0 + timedelta(seconds=6)).astimezone()
    page.fill("#rec-export [name=since]", since.strftime("%Y-%m-%dT%H:%M:%S"))
    page.fill("#rec-export [name=until]", until.strftime("%Y-%m-%dT%H:%M:%S"))
    page.click("#rec-export button[type=submit]")
    page.wait_for_function("document.querySelector('#rec-export-status').textContent.length > 0")
    export = Export.objects.get()
    assert list(export.cameras.values_list("id", flat=True)) == [camera.id] and export.user == alice
    in_thread(recordings_export, str(export.pk))  # as the default-queue worker runs it
    link = page.wait_for_selector("#rec-export-status [data-role=export-file]", timeout=15_000)
    response = page.request.get(link.get_attribute("href"))
    assert response.status == 200 and response.headers["content-type"] == "video/mp4"
    out = tmp_path / "export.mp4"
    out.write_bytes(response.body())
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(out)],
                           capture_output=True, text=True, check=True)
    assert 4.5 <= float(probe.stdout) <= 6.5
    assert not JS_ERRORS, JS_ERRORS


def test_the_event_page_plays_its_moment_from_the_recording(processes, browser, tmp_path, settings):
    """An event in the middle of two recorded segments: its page's Recording panel loads the first at
    CLIP_PRE_SECONDS before the event started, plays, and goes on into the second segment."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    JS_ERRORS.clear()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    folder = tmp_path / "recordings"
    carol = UserFactory(username="carol")  # a viewer of the camera
    camera = CameraFactory(name="Walkway", record_mode="events")
    assign_perm("view_camera", carol, camera)
    t0 = timezone.now().replace(microsecond=0) - timedelta(minutes=20)
    for i in range(2):
        rel = f"{camera.id}/seg-{i}.mp4"
        size = encode(folder, rel, 3 * i, 3)
        segment_index(camera_id=camera.id, start=t0 + timedelta(seconds=3 * i),
                      end=t0 + timedelta(seconds=3 * (i + 1)), path=rel, size=size, codec="h264", encoded=True)
    pre = settings.CLIP_PRE_SECONDS  # the daphne below runs the same default
    started = t0 + timedelta(seconds=1.5 + pre)  # its footage starts 1.5 s into the first segment
    event = EventFactory(camera=camera, started_at=started, ended_at=started + timedelta(seconds=1))
    env = process_env(tmp_path, RECORDING_DIR=folder)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    base = f"http://127.0.0.1:{processes.daphne(env)}"

    page = sign_in(browser, base, "carol")
    page.goto(f"{base}{event.get_absolute_url()}")
    assert page.locator("#event-recording h2").inner_text().startswith("Recording")
    page.wait_for_function("window.SurveillanceEventRecording && "
                           "window.SurveillanceEventRecording.player.segments().length === 2")
    video = "document.querySelector('#event-rec-video')"
    page.wait_for_function(f"{video}.duration > 2.5 && {video}.currentTime > 1", timeout=20_000)
    # Loaded at the moment, not yet playing: 1.5 s into the first segment, CLIP_PRE_SECONDS before the event.
    assert page.evaluate("window.SurveillanceEventRecording.player.current()") == 0
    assert 1.3 <= page.evaluate(f"{video}.currentTime") <= 1.7
    moment = page.evaluate("window.SurveillanceEventRecording.player.at()")
    assert abs(moment / 1000 - (started.timestamp() - pre)) < 0.3
    assert page.evaluate(f"{video}.src").endswith("/video/")  # served by the segment API

    page.evaluate(f"{video}.play()")
    page.wait_for_function(f"{video}.currentTime > 1.8 && !{video}.paused", timeout=20_000)
    page.wait_for_function(f"window.SurveillanceEventRecording.player.current() === 1 && {video}.currentTime > 0.2",
                           timeout=20_000)  # on into the second segment
    assert page.inner_text("#event-rec-time")
    assert not JS_ERRORS, JS_ERRORS

