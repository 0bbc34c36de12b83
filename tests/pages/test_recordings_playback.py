"""Recorded footage played on the camera page, in Debian's Chromium against a real daphne: the timeline shows
the last 24 hours' segments (real H.264 cut from real footage), a click plays from that moment, the video
element gets a duration and plays, and playback goes on into the next segment. The event page plays its moment
from the same recording."""

import shutil
import subprocess
from datetime import datetime, time, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

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


def viewer_of_a_recording_camera(settings, tmp_path, username: str, record_mode: str):
    """(a user who may view it, a camera that records, the folder its segments go in); skips without ffmpeg."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    JS_ERRORS.clear()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    user = UserFactory(username=username)
    camera = CameraFactory(name="Walkway", record_mode=record_mode)
    assign_perm("view_camera", user, camera)
    return user, camera, tmp_path / "recordings"


def test_the_camera_page_plays_recorded_footage_across_segments(processes, browser, tmp_path, settings):
    alice, camera, folder = viewer_of_a_recording_camera(settings, tmp_path, "alice", "continuous")
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



def encode_long(folder, rel, seconds: int) -> int:
    """A long segment (ffmpeg's test pattern, small and at 2 fps: quick to make), so that a moment chosen on the
    24-hour bar, a minute a pixel, falls inside it."""
    out = folder / rel
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=2", "-t", str(seconds),
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "4", "-pix_fmt", "yuv420p", "-movflags", "+faststart",
                    str(out)], check=True)
    return out.stat().st_size


def test_the_timeline_marks_motion_objects_and_events_apart_and_scrubs(processes, browser, tmp_path, settings):
    """Four segments: A (20 minutes, motion), B (motion and objects) and C (objects, an event) right after it, D
    (motion) ten minutes later. The base draws two recorded ranges; each lane merges only the adjacent segments that
    carry its mark. A click plays from that moment; a drag along the bar (real pointer events from Chromium's input)
    moves the cursor and a time label, previews the moment in the paused video, and plays from where it is released;
    the arrow keys step 10 s (Shift: 60 s)."""
    dave, camera, folder = viewer_of_a_recording_camera(settings, tmp_path, "dave", "motion")
    t0 = timezone.now().replace(microsecond=0) - timedelta(hours=3)

    def at(seconds):
        return t0 + timedelta(seconds=seconds)

    EventFactory(camera=camera, started_at=at(1204), ended_at=at(1205))  # within C only
    layout = [("a", 0, 1200, dict(has_motion=True)), ("b", 1200, 3, dict(has_motion=True, has_objects=True)),
              ("c", 1203, 3, dict(has_objects=True)), ("d", 1800, 3, dict(has_motion=True))]
    for name, offset, seconds, marks in layout:
        rel = f"{camera.id}/seg-{name}.mp4"
        size = encode_long(folder, rel, seconds) if seconds > 60 else encode(folder, rel, 0, seconds)
        segment = segment_index(camera_id=camera.id, start=at(offset), end=at(offset + seconds), path=rel, size=size,
                                codec="h264", encoded=True, mode="motion", **marks)
        assert segment.has_event == (name == "c")
    env = process_env(tmp_path, RECORDING_DIR=folder)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    base = f"http://127.0.0.1:{processes.daphne(env)}"

    page = sign_in(browser, base, "dave")
    page.goto(f"{base}/cameras/{camera.id}/")
    page.wait_for_function("window.SurveillanceRecordings && window.SurveillanceRecordings.segments().length === 4")
    rec = "window.SurveillanceRecordings"
    span = page.evaluate(f"{rec}.range()")
    since, until = span["since"], span["until"]

    def ms(seconds):  # epoch ms of the moment ``seconds`` after A's start
        return at(seconds).timestamp() * 1000

    def pct(seconds):  # where that moment is on the bar (%)
        return (ms(seconds) - since) / (until - since) * 100

    # The base and the three lanes: each lane merges only adjacent segments that carry its mark.
    def lefts(selector):
        return page.eval_on_selector_all(selector, "els => els.map(el => parseFloat(el.style.left))")

    assert lefts("#recordings .rec-range") == [pytest.approx(pct(0), abs=1e-3), pytest.approx(pct(1800), abs=1e-3)]
    assert lefts("#recordings .rec-lane.motion") == [pytest.approx(pct(0), abs=1e-3), pytest.approx(pct(1800), abs=1e-3)]
    assert lefts("#recordings .rec-lane.objects") == [pytest.approx(pct(1200), abs=1e-3)]  # B and C, not A
    assert lefts("#recordings .rec-lane.event") == [pytest.approx(pct(1203), abs=1e-3)]  # C only
    motion_width = page.eval_on_selector("#recordings .rec-lane.motion", "el => parseFloat(el.style.width)")
    assert motion_width == pytest.approx(pct(1203) - pct(0), abs=1e-3)  # A and B
    assert page.locator("#rec-legend li").all_inner_texts() == ["recorded", "motion", "objects", "event"]
    colours = page.eval_on_selector_all("#recordings .rec-lane", "els => els.map(el => getComputedStyle(el).backgroundColor)")
    assert len(set(colours)) == 3
    timeline = page.locator("#rec-timeline")
    assert (timeline.get_attribute("role"), timeline.get_attribute("tabindex")) == ("slider", "0")
    assert page.eval_on_selector("#rec-timeline", "el => getComputedStyle(el).touchAction") == "none"

    page.evaluate("document.querySelector('#recordings').scrollIntoView()")  # the mouse acts within the viewport
    box = timeline.bounding_box()
    y = box["y"] + box["height"] / 2

    def x(seconds):
        return box["x"] + pct(seconds) / 100 * box["width"]

    pixel_ms = (until - since) / box["width"]
    video = "document.querySelector('#rec-video')"

    # A plain click plays from that moment: two pixels before D (after C), so the next footage, D, from its start.
    page.mouse.click(x(1800) - 2, y)
    clicked = page.evaluate(f"{rec}.moment()")
    assert ms(1206) < clicked < ms(1800)
    page.wait_for_function(f"{rec}.current() === 3 && !{video}.paused && {video}.currentTime > 0.2", timeout=20_000)

    # Drag from before A into it: the cursor and the label follow, the paused video previews the moment.
    page.mouse.move(x(-3600), y)
    page.mouse.down()
    assert page.locator("#rec-scrub-time").is_visible()
    page.mouse.move(x(300), y, steps=8)
    moment = page.evaluate(f"{rec}.moment()")
    assert abs(moment - ms(300)) <= pixel_ms
    cursor = page.eval_on_selector("#rec-cursor", "el => parseFloat(el.style.left)")
    assert cursor == pytest.approx((moment - since) / (until - since) * 100, abs=1e-3)
    assert page.inner_text("#rec-scrub-time")
    page.wait_for_function(f"{rec}.current() === 0 && {video}.paused && {video}.readyState >= 1 && "
                           f"Math.abs({rec}.at() - {moment}) < 1500", timeout=20_000)
    page.locator("#recordings").screenshot(path=str(tmp_path / "timeline-drag.png"))
    page.mouse.move(x(900), y, steps=8)
    page.mouse.up()
    released = page.evaluate(f"{rec}.moment()")
    assert abs(released - ms(900)) <= pixel_ms and page.locator("#rec-scrub-time").is_hidden()
    # On release it plays A from the released moment (10 minutes into it, give or take a pixel).
    page.wait_for_function(f"{rec}.current() === 0 && !{video}.paused && "
                           f"Math.abs({rec}.at() - {released}) < 3000", timeout=20_000)
    assert abs(page.evaluate(f"{video}.currentTime") - (released - ms(0)) / 1000) < 3

    # The keys step from the current moment: paused, it stays paused there.
    page.evaluate(f"{video}.pause()")
    page.wait_for_function(f"{video}.paused")
    page.wait_for_timeout(300)  # the last timeupdate of the pause is in
    before = page.evaluate(f"{rec}.moment()")
    timeline.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"{video}.paused && Math.abs({rec}.at() - {before + 10_000}) < 600", timeout=10_000)
    assert page.evaluate(f"{rec}.moment()") == pytest.approx(before + 10_000, abs=600)
    page.keyboard.press("Shift+ArrowLeft")
    page.wait_for_function(f"{video}.paused && Math.abs({rec}.at() - {before - 50_000}) < 600", timeout=10_000)
    cursor = page.eval_on_selector("#rec-cursor", "el => parseFloat(el.style.left)")
    assert cursor == pytest.approx((before - 50_000 - since) / (until - since) * 100, abs=1e-2)
    assert int(timeline.get_attribute("aria-valuenow")) == round((before - 50_000) / 1000)
    assert timeline.get_attribute("aria-valuetext")
    page.locator("#recordings").screenshot(path=str(tmp_path / "timeline.png"))
    assert not JS_ERRORS, JS_ERRORS


def test_the_camera_page_browses_any_day(processes, browser, tmp_path, settings):
    """Footage recorded two days ago (at 02:10 and 14:00 in the browser's time zone, Asia/Seoul, while the server runs
    in UTC) and in the last hour. The default view, the last 24 hours, shows only the recent segment. "previous day"
    twice shows the day two days ago, local midnight to midnight, with its segments where they were recorded on the
    bar: all three, although the API lists at most two per answer (the page asks again from the last end). A click on
    the bar plays the 02:10 segment, "Play from" 14:00 the 14:00 one. A day without footage (picked with the date
    input) says so and stops the video of another day, "next day" is disabled on today, and "Last 24 hours" returns
    to the recent segment."""
    erin, camera, folder = viewer_of_a_recording_camera(settings, tmp_path, "erin", "continuous")
    zone = ZoneInfo("Asia/Seoul")
    now = timezone.now().replace(microsecond=0)
    today = now.astimezone(zone).date()
    old_day = today - timedelta(days=2)
    midnight = datetime.combine(old_day, time(0), tzinfo=zone)

    def day_ms(day):  # the browser's local midnight that starts ``day`` (epoch ms)
        return int(datetime.combine(day, time(0), tzinfo=zone).timestamp() * 1000)

    layout = [("a", midnight + timedelta(hours=2, minutes=10)), ("b", midnight + timedelta(hours=2, minutes=10, seconds=3)),
              ("c", midnight + timedelta(hours=14)), ("recent", now - timedelta(minutes=30))]
    segments = {}
    for name, start in layout:
        rel = f"{camera.id}/seg-{name}.mp4"
        size = encode(folder, rel, 0, 3)
        segments[name] = segment_index(camera_id=camera.id, start=start, end=start + timedelta(seconds=3), path=rel,
                                       size=size, codec="h264", encoded=True)
    # At most two segments per answer: the old day's three take two answers.
    env = process_env(tmp_path, RECORDING_DIR=folder, RECORDING_API_MAX_SEGMENTS=2)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    base = f"http://127.0.0.1:{processes.daphne(env)}"

    page = sign_in(browser, base, "erin", timezone_id="Asia/Seoul")
    lists = []  # the segment lists asked for
    page.on("request", lambda r: lists.append(r.url) if f"/cameras/{camera.id}/recordings/" in r.url else None)
    page.goto(f"{base}/cameras/{camera.id}/")
    rec = "window.SurveillanceRecordings"
    video = "document.querySelector('#rec-video')"

    def url_of(name):
        return f"/api/v1/recordings/{segments[name].pk}/video/"

    # The last 24 hours: the recent segment only.
    page.wait_for_function(f"{rec} && {rec}.segments().length === 1 && {rec}.day() === null")
    assert page.evaluate(f"{rec}.segments()[0].id") == segments["recent"].pk
    assert page.locator("#recordings .rec-range").count() == 1
    assert page.input_value("#rec-day") == "" and page.locator("#rec-next").is_disabled()
    assert (page.inner_text("#rec-axis-start"), page.inner_text("#rec-axis-end")) == ("24 hours ago", "now")
    assert page.get_attribute("#rec-live", "aria-pressed") == "true" and page.locator("#rec-goto").is_hidden()

    # "previous day" twice: the day two days ago, from the browser's midnight to the next.
    page.click("#rec-prev")
    page.wait_for_function(f"{rec}.day() === {day_ms(today - timedelta(days=1))}")
    page.click("#rec-prev")
    page.wait_for_function(f"{rec}.day() === {day_ms(old_day)} && {rec}.segments().length === 3")
    assert [s["id"] for s in page.evaluate(f"{rec}.segments()")] == [segments[n].pk for n in ("a", "b", "c")]
    day_queries = [parse_qs(urlsplit(url).query) for url in lists]
    later = [q for q in day_queries if "since" in q and
             midnight < datetime.fromisoformat(q["since"][0].replace("Z", "+00:00")) < midnight + timedelta(days=1)]
    assert later, lists  # the truncated first answer was completed from its last end
    assert page.evaluate(f"{rec}.range()") == {"since": day_ms(old_day), "until": day_ms(old_day + timedelta(days=1))}
    assert page.input_value("#rec-day") == old_day.isoformat()
    lefts = page.eval_on_selector_all("#recordings .rec-range", "els => els.map(el => parseFloat(el.style.left))")
    assert lefts == [pytest.approx(130 / 1440 * 100, abs=1e-3), pytest.approx(14 / 24 * 100, abs=1e-3)]
    start_label = page.inner_text("#rec-axis-start")
    assert str(old_day.day) in start_label and start_label.endswith("00:00"), start_label
    assert page.inner_text("#rec-axis-end") == "24:00"
    assert page.locator("#rec-ticks .rec-tick").all_inner_texts() == [f"{h:02d}:00" for h in range(3, 24, 3)]
    assert page.locator("#rec-empty").is_hidden() and page.locator("#rec-partial").is_hidden()
    assert page.locator("#rec-next").is_enabled() and page.get_attribute("#rec-live", "aria-pressed") == "false"
    assert page.locator("#rec-goto").is_visible()

    # A click on the bar, just before the 02:10 range, plays its first segment from its start.
    timeline = page.locator("#rec-timeline")
    page.evaluate("document.querySelector('#recordings').scrollIntoView()")
    box = timeline.bounding_box()
    page.mouse.click(box["x"] + lefts[0] / 100 * box["width"] - 2, box["y"] + box["height"] / 2)
    page.wait_for_function(f"{video}.src.endsWith('{url_of('a')}') && {video}.duration > 2.5", timeout=20_000)
    page.wait_for_function(f"{video}.currentTime > 0.3 && !{video}.paused", timeout=20_000)
    assert page.locator("#rec-cursor").is_visible()

    # "Play from" 14:00: the 14:00 segment.
    page.fill("#rec-goto-time", "14:00")
    page.wait_for_function(f"{video}.src.endsWith('{url_of('c')}') && {video}.duration > 2.5", timeout=20_000)
    cursor = page.eval_on_selector("#rec-cursor", "el => parseFloat(el.style.left)")
    assert cursor == pytest.approx(14 / 24 * 100, abs=0.1)
    for name, width in (("desktop", 1440), ("phone", 390)):  # tall enough that the sticky header covers nothing
        page.set_viewport_size({"width": width, "height": 1600})
        page.evaluate("window.scrollTo(0, 0)")
        page.locator("#recordings").screenshot(path=str(tmp_path / f"day-{name}.png"))
    assert page.locator("#rec-ticks .rec-tick:visible").all_inner_texts() == ["06:00", "12:00", "18:00"]
    page.set_viewport_size({"width": 1440, "height": 900})

    # A day without footage, picked with the date input: it says so, and the other day's video stops.
    page.fill("#rec-day", (today - timedelta(days=3)).isoformat())
    page.wait_for_function(f"{rec}.day() === {day_ms(today - timedelta(days=3))} && "
                           "!document.querySelector('#rec-empty').hidden")
    assert page.inner_text("#rec-empty") == "No footage recorded on this day."
    assert page.locator("#recordings .rec-range").count() == 0
    assert page.locator("#rec-video").is_hidden() and not page.evaluate(f"{video}.getAttribute('src')")

    # Today: "next day" would go past now.
    page.fill("#rec-day", today.isoformat())
    page.wait_for_function(f"{rec}.day() === {day_ms(today)}")
    assert page.locator("#rec-next").is_disabled()

    # "Last 24 hours" returns: the recent segment, the live axis.
    page.click("#rec-live")
    page.wait_for_function(f"{rec}.day() === null && {rec}.segments().length === 1 && "
                           f"{rec}.segments()[0].id === {segments['recent'].pk}")
    assert page.input_value("#rec-day") == "" and page.locator("#rec-next").is_disabled()
    assert (page.inner_text("#rec-axis-start"), page.inner_text("#rec-axis-end")) == ("24 hours ago", "now")
    assert page.locator("#rec-goto").is_hidden() and page.locator("#rec-empty").is_hidden()
    assert not JS_ERRORS, JS_ERRORS
