"""A camera's stream credentials are shown only to those who may change the camera.

Cameras take their password in the user information (``rtsp://admin:secret@cam``) or in the query
(``rtsp://cam/stream?user=admin&pwd=secret``, ``?token=``, ``?apikey=``...), some in the path
(``/user=admin_password=secret_channel=1``). ``inference.source_urls.mask_credentials`` masks them
all; the API, the pages (through the worker's error text), the WebSocket status (the same text),
the logs and the audit log show nothing else to a viewer.
"""

import pytest
from django.urls import reverse

from inference.source_urls import mask_credentials

pytestmark = pytest.mark.django_db

SECRET = "s3cretXYZ"


@pytest.mark.parametrize("url,masked", [
    (f"rtsp://cam.example/stream?user=admin&pwd={SECRET}", "rtsp://cam.example/stream?user=admin&pwd=***"),
    (f"rtsp://cam.example/s?password={SECRET}&channel=1", "rtsp://cam.example/s?password=***&channel=1"),
    (f"rtsp://cam.example/s?passwd={SECRET}", "rtsp://cam.example/s?passwd=***"),
    (f"http://cam.example/mjpg?token={SECRET}", "http://cam.example/mjpg?token=***"),
    (f"http://cam.example/mjpg?key={SECRET}&fps=5", "http://cam.example/mjpg?key=***&fps=5"),
    (f"https://cam.example/live?auth={SECRET}", "https://cam.example/live?auth=***"),
    (f"https://cam.example/live?apikey={SECRET}&api_key={SECRET}&ApiKey={SECRET}",
     "https://cam.example/live?apikey=***&api_key=***&ApiKey=***"),
    (f"https://cam.example/live?access_token={SECRET}#secret={SECRET}",
     "https://cam.example/live?access_token=***#secret=***"),
    (f"https://cam.example/live?X-Amz-Credential={SECRET}&X-Amz-Signature={SECRET};sid={SECRET}",
     "https://cam.example/live?X-Amz-Credential=***&X-Amz-Signature=***;sid=***"),
    (f"rtsp://admin:{SECRET}@cam.example/s?pwd={SECRET}", "rtsp://admin:***@cam.example/s?pwd=***"),
    (f"rtsp://admin:p@ss{SECRET}@cam.example/s", "rtsp://admin:***@cam.example/s"),
    (f"rtsp://192.168.1.10:554/user=admin_password={SECRET}_channel=1_stream=0.sdp?real_stream",
     "rtsp://192.168.1.10:554/user=admin_password=***?real_stream"),
    (f"rtsp://cam.example/s?pass%77ord={SECRET}", "rtsp://cam.example/s?pass%77ord=***"),
])
def test_credential_like_parameters_are_masked(url, masked):
    assert mask_credentials(url) == masked
    assert mask_credentials(masked) == masked


@pytest.mark.parametrize("url", [
    "rtsp://cam.example/stream?channel=1&subtype=0", "rtsp://admin@cam.example/s", "demo://?seed=3&fps=10",
    "/videos/key=1.mp4", "file:///videos/key=1.mp4", "device://0", "rtsp://cam.example/s?pwd=",
])
def test_what_is_no_secret_is_shown_as_it_is(url):
    assert mask_credentials(url) == url


def test_urls_in_a_message_are_masked():
    message = f"stream unreachable: cannot connect to rtsp://a:{SECRET}@cam.example/s?token={SECRET} within 5 s"
    assert mask_credentials(message) == ("stream unreachable: cannot connect to rtsp://a:***@cam.example/s?token=*** "
                                         "within 5 s")


URL = f"rtsp://cam.example/stream?user=admin&pwd={SECRET}&channel=1"
MASKED = "rtsp://cam.example/stream?user=admin&pwd=***&channel=1"


def _set_url(camera, url=URL):
    from cameras.models import Camera

    Camera.objects.filter(pk=camera.pk).update(source_url=url)


def test_a_viewer_gets_the_url_masked_from_the_api(api_as, camera, owner, viewer):
    _set_url(camera)
    detail = api_as(viewer).get(f"/api/v1/cameras/{camera.id}/")
    listing = api_as(viewer).get("/api/v1/cameras/")
    for response in (detail, listing):
        assert response.status_code == 200 and SECRET not in response.content.decode()
    assert detail.json()["source_url"] == MASKED
    assert listing.json()["results"][0]["source_url"] == MASKED
    # Whoever may change the camera edits the URL as stored.
    assert api_as(owner).get(f"/api/v1/cameras/{camera.id}/").json()["source_url"] == URL


class _Closed:
    """A capture that cannot open (cv2.VideoCapture of an unreachable stream)."""

    def isOpened(self):
        return False

    def release(self):
        pass


def _worker_error(url) -> str:
    """What the worker reports (and stores as the camera's last error) when the stream is unreachable."""
    from inference.base import SourceError
    from inference.sources import OpenCVSource

    source = OpenCVSource(url, capture_factory=lambda *args: _Closed(), open_timeout=0.1)
    with pytest.raises(SourceError) as info:
        source.open()
    return str(info.value)


def test_the_camera_page_and_status_never_show_the_secret(client, api_as, camera, viewer, caplog):
    from cameras.models import Camera

    _set_url(camera)
    error = _worker_error(URL)
    assert SECRET not in error and MASKED in error
    Camera.objects.filter(pk=camera.pk).update(state=Camera.State.ERROR, last_error=error)
    client.force_login(viewer)
    for page in (reverse("camera-page", args=[camera.pk]), reverse("dashboard")):
        html = client.get(page).content.decode()
        assert SECRET not in html and camera.name in html, page
    assert MASKED.replace("&", "&amp;") in client.get(reverse("camera-page", args=[camera.pk])).content.decode()
    for path in (f"/api/v1/cameras/{camera.id}/status/", f"/api/v1/cameras/{camera.id}/"):
        response = api_as(viewer).get(path)
        assert response.status_code == 200 and SECRET not in response.content.decode(), path
        assert response.json()["last_error"] == error
    assert SECRET not in caplog.text


def test_the_audit_log_keeps_no_url(api_as, camera, owner, viewer):
    from audit.models import AuditEntry

    response = api_as(owner).patch(f"/api/v1/cameras/{camera.id}/",
                                   {"source_url": f"rtsp://192.168.1.20/s?token={SECRET}"}, format="json")
    assert response.status_code == 200, response.json()
    entries = list(AuditEntry.objects.values())
    assert entries and SECRET not in str(entries)
    assert api_as(viewer).get(f"/api/v1/cameras/{camera.id}/").json()["source_url"] == "rtsp://192.168.1.20/s?token=***"
