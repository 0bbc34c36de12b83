"""The recordings API: a camera's segments in a time range, each segment's file with byte ranges, per-camera
permission (an outsider is told nothing exists), and bad query values answered 400 naming the field."""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from recordings.services import segment_index
from tests.conftest import dataset
from tests.factories import CameraFactory, role_users


def real_segment(folder: Path, camera_id: int, seconds: float = 2.0) -> tuple[str, int]:
    """A real H.264 MP4 cut from real footage (what the recorder writes), as a path under ``folder``."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    rel = f"{camera_id}/2026-01-01/000000-test.mp4"
    out = folder / rel
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(dataset("pets-walkway/vtest.avi")), "-t", f"{seconds}",
                    "-an", "-c:v", "copy", "-movflags", "+faststart", str(out)], check=True)
    return rel, out.stat().st_size


@pytest.fixture
def recorded(db, settings, tmp_path):
    settings.RECORDING_DIR = tmp_path / "rec"
    camera = CameraFactory(record_mode="continuous")
    users = role_users(camera)
    rel, size = real_segment(settings.RECORDING_DIR, camera.id)
    start = timezone.now() - timedelta(minutes=5)
    segment = segment_index(camera_id=camera.id, start=start, end=start + timedelta(seconds=2), path=rel, size=size,
                            codec="h264", has_objects=True)
    older = segment_index(camera_id=camera.id, start=start - timedelta(hours=30),
                          end=start - timedelta(hours=30) + timedelta(seconds=2), path="old.mp4", size=1)
    return {"camera": camera, "users": users, "segment": segment, "older": older, "size": size}


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return client


def test_a_viewer_lists_the_last_24_hours_and_a_given_range(recorded):
    camera, segment = recorded["camera"], recorded["segment"]
    client = client_for(recorded["users"]["viewer"])
    body = client.get(f"/api/v1/cameras/{camera.id}/recordings/").json()
    assert body["record_mode"] == "continuous" and body["truncated"] is False
    assert [s["id"] for s in body["segments"]] == [segment.id]
    item = body["segments"][0]
    assert item["size"] == recorded["size"]
    # The marks the timeline draws as its lanes, each on its own: objects without motion, no event.
    assert (item["has_motion"], item["has_objects"], item["has_event"]) == (False, True, False)
    assert item["url"] == f"http://testserver/api/v1/recordings/{segment.id}/video/"
    since = (segment.start - timedelta(days=2)).isoformat()
    body = client.get(f"/api/v1/cameras/{camera.id}/recordings/", {"since": since}).json()
    assert [s["id"] for s in body["segments"]] == [recorded["older"].id, segment.id]


def test_the_segment_plays_with_the_bearer_token_and_byte_ranges(recorded):
    segment, size = recorded["segment"], recorded["size"]
    client = client_for(recorded["users"]["viewer"])
    whole = client.get(f"/api/v1/recordings/{segment.id}/video/")
    assert whole.status_code == 200 and whole["Content-Type"] == "video/mp4"
    assert whole["Accept-Ranges"] == "bytes"
    body = b"".join(whole.streaming_content)
    assert len(body) == size and body[4:8] == b"ftyp"
    part = client.get(f"/api/v1/recordings/{segment.id}/video/", HTTP_RANGE="bytes=100-1123")
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 100-1123/{size}"
    assert part.content == body[100:1124]
    tail = client.get(f"/api/v1/recordings/{segment.id}/video/", HTTP_RANGE=f"bytes={size + 10}-")
    assert tail.status_code == 416


def test_an_outsider_and_an_anonymous_client_get_nothing(recorded):
    camera, segment = recorded["camera"], recorded["segment"]
    outsider = client_for(recorded["users"]["outsider"])
    for url in (f"/api/v1/cameras/{camera.id}/recordings/", f"/api/v1/recordings/{segment.id}/video/"):
        response = outsider.get(url)
        assert response.status_code == 404 and response.json()["detail"]
        assert client_for(None).get(url).status_code == 401
    staff = client_for(recorded["users"]["staff"])
    assert staff.get(f"/api/v1/recordings/{segment.id}/video/").status_code == 200


def test_a_missing_file_is_a_404_that_says_so(recorded):
    response = client_for(recorded["users"]["viewer"]).get(f"/api/v1/recordings/{recorded['older'].id}/video/")
    assert response.status_code == 404 and "missing" in response.json()["detail"]


@pytest.mark.parametrize("query,field", [({"since": "yesterday"}, "since"), ({"until": "2026-13-45"}, "until"),
                                         ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
                                         ({"since": "2999-01-01T00:00:00Z"}, "since")])
def test_bad_since_or_until_is_a_400_naming_the_field(recorded, query, field):
    client = client_for(recorded["users"]["viewer"])
    response = client.get(f"/api/v1/cameras/{recorded['camera'].id}/recordings/", query)
    assert response.status_code == 400
    assert field in response.json(), response.json()


def test_record_mode_is_a_camera_field_of_the_api(recorded):
    camera = recorded["camera"]
    staff = client_for(recorded["users"]["staff"])
    assert staff.get(f"/api/v1/cameras/{camera.id}/").json()["record_mode"] == "continuous"
    response = staff.patch(f"/api/v1/cameras/{camera.id}/", {"record_mode": "motion"}, format="json")
    assert response.status_code == 200 and response.json()["record_mode"] == "motion"
    response = staff.patch(f"/api/v1/cameras/{camera.id}/", {"record_mode": "sometimes"}, format="json")
    assert response.status_code == 400 and "record_mode" in response.json()
    camera.refresh_from_db()
    assert camera.record_mode == "motion" and "record_mode" in camera.runtime_config()
