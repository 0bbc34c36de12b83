"""Exports: a time range of recorded cameras into one MP4 per camera, from real H.264 segments cut from real footage
(as the recorder writes them: a key frame only at each cut), copied without re-encoding and trimmed to the range,
checked with ffprobe; progress stored and pushed to the owner's WebSocket group; the files served with byte ranges to
those who may view the camera; bad input answered 400 naming the field; expiry removes files and rows."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone
from guardian.shortcuts import assign_perm

from cameras.groups import user_group
from recordings.models import Export
from recordings.services import export_run, exports_expire, segment_index
from recordings.storage import export_folder
from tests.conftest import dataset
from tests.factories import CameraFactory, role_users
from tests.recordings.test_api import client_for

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")

SEGMENT = 2.0  # seconds per segment


def ffprobe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=codec_name,pix_fmt:format=duration,format_name", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    return {"codec": data["streams"][0]["codec_name"], "duration": float(data["format"]["duration"]),
            "format": data["format"]["format_name"]}


@pytest.fixture(scope="module")
def h264_segments(tmp_path_factory) -> list[Path]:
    """Four 2-s H.264 MP4 segments of real footage (libx264, a key frame at each cut only, as the encode path)."""
    folder = tmp_path_factory.mktemp("segments")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(dataset("pets-walkway/vtest.avi")), "-t", "8", "-an",
                    "-vf", "scale=384:-2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-force_key_frames", f"expr:gte(t,n_forced*{SEGMENT:g})", "-f", "segment", "-segment_time",
                    f"{SEGMENT:g}", "-reset_timestamps", "1", "-segment_format", "mp4", "-segment_format_options",
                    "movflags=+faststart", str(folder / "seg-%03d.mp4")], check=True)
    files = sorted(folder.glob("seg-*.mp4"))
    assert len(files) == 4
    return files


def record(camera, files, start, root: Path, codec="h264") -> list:
    """Index ``files`` as the camera's consecutive segments from ``start`` (copied into the fast folder)."""
    segments = []
    for i, file in enumerate(files):
        rel = f"{camera.id}/2026-01-01/{i:06d}-t.mp4"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, root / rel)
        begin = start + timedelta(seconds=SEGMENT * i)
        segments.append(segment_index(camera_id=camera.id, start=begin, end=begin + timedelta(seconds=SEGMENT),
                                      path=rel, size=(root / rel).stat().st_size, codec=codec, encoded=True))
    return segments


@pytest.fixture
def world(db, settings, tmp_path, h264_segments):
    settings.RECORDING_DIR = tmp_path / "rec"
    settings.RECORDING_EXPORT_DIR = tmp_path / "exports"
    settings.RECORDING_EXPORT_PROGRESS_SECONDS = 0
    settings.RECORDING_ENCODE_PRESET = "ultrafast"
    gate, yard = CameraFactory(record_mode="continuous"), CameraFactory(record_mode="continuous")
    users = role_users(gate)
    assign_perm("cameras.view_camera", users["viewer"], yard)
    start = (timezone.now() - timedelta(minutes=10)).replace(microsecond=0)
    record(gate, h264_segments, start, settings.RECORDING_DIR)
    record(yard, h264_segments[:2], start, settings.RECORDING_DIR)
    return {"gate": gate, "yard": yard, "users": users, "start": start}


def test_a_range_of_two_cameras_is_copied_into_h264_mp4s_trimmed_to_the_range(world, django_capture_on_commit_callbacks):
    gate, yard, start, viewer = world["gate"], world["yard"], world["start"], world["users"]["viewer"]
    client = client_for(viewer)
    since, until = start + timedelta(seconds=3), start + timedelta(seconds=7)
    with django_capture_on_commit_callbacks() as queued:
        response = client.post("/api/v1/exports/", {"cameras": [gate.id, yard.id], "since": since.isoformat(),
                                                    "until": until.isoformat()}, format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "queued" and body["progress"] == 0 and body["files"] == []
    assert sorted(body["cameras"]) == sorted([gate.id, yard.id]) and response["Location"].endswith(f"/{body['id']}/")
    assert len(queued) == 1  # the task, queued after commit

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group(viewer.pk), channel)
    with django_capture_on_commit_callbacks(execute=True):
        assert export_run(body["id"]) == "done"
    assert export_run(body["id"]) == "done"  # a second run leaves a finished export alone

    export = client.get(f"/api/v1/exports/{body['id']}/").json()
    assert export["status"] == "done" and export["progress"] == 1.0, export
    files = {f["camera"]: f for f in export["files"]}
    assert set(files) == {gate.id, yard.id} and all(f["copied"] for f in files.values())
    folder = export_folder(body["id"])
    gate_probe = ffprobe(folder / files[gate.id]["name"])
    assert gate_probe["codec"] == "h264" and "mp4" in gate_probe["format"]
    assert gate_probe["duration"] == pytest.approx(4.0, abs=0.35)  # 3 s .. 7 s of 0 .. 8 s
    yard_probe = ffprobe(folder / files[yard.id]["name"])  # the yard recorded 0 .. 4 s only
    assert yard_probe["codec"] == "h264" and yard_probe["duration"] == pytest.approx(1.0, abs=0.35)
    assert export["size"] == sum(f["size"] for f in files.values()) > 0
    assert not list(folder.glob("*.part")) and not list(folder.glob("*.txt"))

    async def receive():
        return await asyncio.wait_for(layer.receive(channel), timeout=5)

    pushed = []
    while not pushed or pushed[-1]["export"]["status"] != "done":
        pushed.append(async_to_sync(receive)())
    assert [m["type"] for m in pushed] == ["recording.export"] * len(pushed)
    assert pushed[0]["export"]["status"] == "running" and pushed[-1]["export"]["status"] == "done"
    assert pushed[-1]["export"] == {"type": "export", "export": body["id"], "status": "done", "progress": 1.0,
                                    "message": "", "size": export["size"], "cameras": [gate.id, yard.id]}

    # The file: byte ranges, for anyone who may view that camera; the progress: the owner only.
    url = files[gate.id]["url"]
    assert url == f"http://testserver/api/v1/exports/{body['id']}/files/{gate.id}/"
    whole = client.get(url)
    data = b"".join(whole.streaming_content)
    assert whole.status_code == 200 and whole["Content-Type"] == "video/mp4" and len(data) == files[gate.id]["size"]
    part = client.get(url, HTTP_RANGE="bytes=0-99")
    assert part.status_code == 206 and part.content == data[:100] and part["Accept-Ranges"] == "bytes"
    operator = client_for(world["users"]["operator"])
    assert operator.get(url).status_code == 200  # may view the gate
    assert operator.get(files[yard.id]["url"]).status_code == 404  # may not view the yard
    assert operator.get(f"/api/v1/exports/{body['id']}/").status_code == 404  # not theirs
    assert client_for(world["users"]["outsider"]).get(url).status_code == 404


def test_the_consumer_passes_an_export_message_on(world):
    from cameras.consumers import StreamConsumer

    sent = []
    consumer = StreamConsumer.__new__(StreamConsumer)

    async def send_json(data):
        sent.append(data)

    consumer._send_json = send_json
    async_to_sync(consumer.recording_export)({"type": "recording.export", "export": {
        "type": "export", "export": "x", "status": "running", "progress": 0.5}})
    assert sent == [{"type": "export", "export": "x", "status": "running", "progress": 0.5}]


def test_segments_of_another_codec_are_encoded_to_h264(world, settings, tmp_path):
    camera = CameraFactory(record_mode="continuous")
    user = world["users"]["staff"]
    start = world["start"]
    # The real MPEG-4 Part 2 footage (not a codec recording copies) as one "segment" of 2 s.
    record(camera, [dataset("pets-walkway/vtest.avi")], start, settings.RECORDING_DIR, codec="mpeg4")
    export = Export.objects.create(user=user, since=start, until=start + timedelta(seconds=1.5))
    export.cameras.set([camera.id])
    assert export_run(export.pk) == "done"
    export.refresh_from_db()
    (entry,) = export.files
    assert entry["copied"] is False
    probe = ffprobe(export_folder(export.pk) / entry["name"])
    assert probe["codec"] == "h264" and probe["duration"] == pytest.approx(1.5, abs=0.3)


def test_a_range_without_footage_fails_saying_so(world):
    export = Export.objects.create(user=world["users"]["viewer"], since=world["start"] - timedelta(hours=2),
                                   until=world["start"] - timedelta(hours=1))
    export.cameras.set([world["gate"].id])
    assert export_run(export.pk) == "failed"
    export.refresh_from_db()
    assert export.status == "failed" and "no recorded footage" in export.message and export.expires_at
    assert not export_folder(export.pk).exists()


def _post(world, role="viewer", **changes):
    start = world["start"]
    data = {"cameras": [world["gate"].id], "since": start.isoformat(),
            "until": (start + timedelta(seconds=4)).isoformat(), **changes}
    return client_for(world["users"][role]).post("/api/v1/exports/", data, format="json")


@pytest.mark.parametrize("changes,field", [
    ({"cameras": []}, "cameras"), ({"cameras": "gate"}, "cameras"), ({"cameras": [0]}, "cameras"),
    ({"since": "yesterday"}, "since"), ({"until": None}, "until"), ({"since": "2999-01-01T00:00:00Z"}, "since"),
    ({"until": "2000-01-01T00:00:00Z"}, "until"),
])
def test_bad_input_is_a_400_naming_the_field(world, changes, field):
    response = _post(world, **changes)
    assert response.status_code == 400 and field in response.json(), response.json()


def test_cameras_the_user_may_not_view_are_named_and_nothing_is_queued(world, settings):
    hidden = CameraFactory()
    response = _post(world, role="operator", cameras=[world["gate"].id, world["yard"].id, hidden.id])
    assert response.status_code == 400
    message = response.json()["cameras"][0]
    assert str(world["yard"].id) in message and str(hidden.id) in message and str(world["gate"].id) not in message
    settings.RECORDING_EXPORT_MAX_HOURS = 1
    response = _post(world, since=(world["start"] - timedelta(hours=2)).isoformat())
    assert response.status_code == 400 and "RECORDING_EXPORT_MAX_HOURS" in response.json()["until"][0]
    settings.RECORDING_EXPORT_MAX_CAMERAS = 1
    response = _post(world, cameras=[world["gate"].id, world["yard"].id])
    assert response.status_code == 400 and "cameras" in response.json()
    assert Export.objects.count() == 0


def test_a_user_may_have_only_so_many_exports_under_way(world, settings):
    settings.RECORDING_EXPORT_MAX_ACTIVE = 1
    assert _post(world).status_code == 202
    response = _post(world)
    assert response.status_code == 429 and "RECORDING_EXPORT_MAX_ACTIVE" in response.json()["detail"]
    assert _post(world, role="operator").status_code == 202  # another user's count is theirs


def test_expired_exports_lose_files_and_rows_and_a_second_run_finds_nothing(world, settings):
    user = world["users"]["viewer"]
    now = timezone.now()
    old = Export.objects.create(user=user, since=now, until=now, status="done", expires_at=now - timedelta(minutes=1))
    fresh = Export.objects.create(user=user, since=now, until=now, status="done", expires_at=now + timedelta(hours=1))
    running = Export.objects.create(user=user, since=now, until=now, status="running",
                                    expires_at=now - timedelta(minutes=1))
    for export in (old, fresh, running):
        export_folder(export.pk).mkdir(parents=True)
        (export_folder(export.pk) / "camera-1.mp4").write_bytes(b"x")
    assert exports_expire() == 1
    assert not export_folder(old.pk).exists() and not Export.objects.filter(pk=old.pk).exists()
    assert export_folder(fresh.pk).exists() and export_folder(running.pk).exists()
    assert exports_expire() == 0
    # A run stuck past RECORDING_EXPORT_TIMEOUT_SECONDS goes too.
    assert exports_expire(now=now + timedelta(seconds=settings.RECORDING_EXPORT_TIMEOUT_SECONDS + 60)) == 2


def test_an_expired_file_is_not_served(world):
    user = world["users"]["viewer"]
    now = timezone.now()
    export = Export.objects.create(user=user, since=now, until=now, status="done", expires_at=now - timedelta(seconds=1),
                                   files=[{"camera": world["gate"].id, "name": "a.mp4", "size": 1, "duration": 1,
                                           "copied": True}])
    export_folder(export.pk).mkdir(parents=True)
    (export_folder(export.pk) / "a.mp4").write_bytes(b"x")
    response = client_for(user).get(f"/api/v1/exports/{export.pk}/files/{world['gate'].id}/")
    assert response.status_code == 404 and response.json()["detail"]


def test_the_expiry_runs_on_beat(settings):
    from surveillance.schedules import beat_schedules

    settings.RECORDING_EXPORT_CLEANUP_SECONDS = 600
    assert beat_schedules()["recordings-exports-expire"] == {"task": "recordings.tasks.recordings_exports_expire",
                                                             "every": 600}
