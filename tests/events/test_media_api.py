"""Media for clients holding a JWT (issue 16): an event's snapshot, clip (byte ranges) and object thumbnails,
and a camera's current picture, under /api/v1, with the per-camera permission; absolute URLs in the event JSON."""

import threading
import time

import pytest
import redis

from cameras import live
from events.views import UNSATISFIABLE, byte_range
from tests.factories import EventFactory, UserFactory

pytestmark = pytest.mark.django_db

CLIP = bytes(range(256)) * 4  # 1024 bytes: byte i is i % 256
JPEG = b"\xff\xd8\xff snapshot"
THUMB = b"\xff\xd8\xff thumbnail"


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    for name, data in {"events/snapshots/s.jpg": JPEG, "events/clips/c.webm": CLIP,
                       "events/objects/2026/01/02/e-3.jpg": THUMB}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    return tmp_path


@pytest.fixture
def event(camera, media):
    return EventFactory(camera=camera, snapshot="events/snapshots/s.jpg", clip="events/clips/c.webm", details={
        "objects": [{"track": 3, "label": "person", "thumbnail": "events/objects/2026/01/02/e-3.jpg"},
                    {"track": 4, "label": "car"},  # no thumbnail
                    {"track": 9, "label": "dog", "thumbnail": "../../etc/passwd"}]})  # not ours: left out


def urls(event) -> dict:
    base = f"/api/v1/events/{event.pk}"
    return {"snapshot": f"{base}/snapshot/", "clip": f"{base}/clip/", "thumbnail": f"{base}/objects/3/thumbnail/"}


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def r(camera):
    client = live.client()
    yield client
    client.delete(live.picture_key(camera.pk), live.picture_wanted_key(camera.pk))


# -- the event's files ------------------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["owner", "viewer"])
def test_a_bearer_token_fetches_the_snapshot_clip_and_thumbnail(api_as, event, owner, viewer, who):
    client = api_as({"owner": owner, "viewer": viewer}[who])
    expected = {"snapshot": ("image/jpeg", JPEG), "clip": ("video/webm", CLIP), "thumbnail": ("image/jpeg", THUMB)}
    for kind, url in urls(event).items():
        response = client.get(url)
        assert response.status_code == 200, (kind, response.status_code)
        assert "Location" not in response  # never the sign-in page
        assert (response["Content-Type"], body(response)) == expected[kind]
        assert response["Content-Length"] == str(len(expected[kind][1]))
        assert response["ETag"] and response["Last-Modified"] and response["Cache-Control"].startswith("private")
    assert client.get(urls(event)["clip"])["Accept-Ranges"] == "bytes"


def test_the_files_come_whatever_the_accept_header_and_errors_as_json(api_as, event, viewer):
    client = api_as(viewer)
    response = client.get(urls(event)["snapshot"], HTTP_ACCEPT="image/jpeg")
    assert response.status_code == 200 and body(response) == JPEG
    response = client.get(f"/api/v1/events/{event.pk}/objects/4/thumbnail/", HTTP_ACCEPT="image/jpeg")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert "thumbnail" in response.json()["detail"]


def test_anonymous_gets_401_and_never_a_redirect_to_the_sign_in_page(client, event, camera):
    for url in [*urls(event).values(), f"/api/v1/cameras/{camera.pk}/picture/"]:
        response = client.get(url)
        assert response.status_code == 401 and "Location" not in response, url
        assert response.json()["detail"] and response["WWW-Authenticate"].startswith("Bearer")


def test_an_invalid_token_gets_401(client, event):
    response = client.get(urls(event)["snapshot"], HTTP_AUTHORIZATION="Bearer not-a-token")
    assert response.status_code == 401 and response.json()["detail"]


def test_an_outsider_gets_404_as_for_the_event_itself(api_as, event, camera, outsider, r):
    client = api_as(outsider)
    live.picture_store(r, camera.pk, JPEG, at=time.time(), width=2, height=2, ttl=30)
    for url in [*urls(event).values(), f"/api/v1/events/{event.pk}/", f"/api/v1/cameras/{camera.pk}/picture/"]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert set(response.json()) == {"detail"}  # nothing about the camera or its picture
    # Granted the camera, the same user gets them.
    from guardian.shortcuts import assign_perm

    assign_perm("view_camera", outsider, camera)
    assert all(client.get(url).status_code == 200 for url in urls(event).values())


def test_a_signed_in_page_session_may_fetch_them_too(client, event, viewer):
    client.force_login(viewer)
    assert body(client.get(urls(event)["snapshot"])) == JPEG


def test_missing_files_and_absent_media_are_a_json_404_never_a_500(api_as, camera, viewer, media):
    gone = EventFactory(camera=camera, snapshot="events/snapshots/gone.jpg", clip="events/clips/gone.webm",
                        details={"objects": [{"track": 3, "label": "person",
                                              "thumbnail": "events/objects/gone-3.jpg"}]})
    bare = EventFactory(camera=camera)
    client = api_as(viewer)
    for url, words in [(urls(gone)["snapshot"], "missing"), (urls(gone)["clip"], "retention"),
                       (urls(gone)["thumbnail"], "missing"), (urls(bare)["snapshot"], "no snapshot"),
                       (urls(bare)["clip"], "no clip"), (urls(bare)["thumbnail"], "no thumbnail"),
                       (f"/api/v1/events/{gone.pk}/objects/99/thumbnail/", "no thumbnail"),
                       ("/api/v1/events/00000000-0000-0000-0000-000000000000/snapshot/", "No event")]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert response["Content-Type"] == "application/json" and words in response.json()["detail"], url
    # A directory where the file should be, or a name outside the media folder: still a clear 404.
    (media / "events/snapshots/dir.jpg").mkdir()
    odd = EventFactory(camera=camera, snapshot="events/snapshots/dir.jpg", clip="../../../etc/passwd")
    assert client.get(urls(odd)["snapshot"]).status_code == 404
    assert client.get(urls(odd)["clip"]).status_code == 404


def test_a_thumbnail_outside_the_objects_folder_is_never_served(api_as, event, viewer):
    assert api_as(viewer).get(f"/api/v1/events/{event.pk}/objects/9/thumbnail/").status_code == 404


def test_unchanged_files_answer_304(api_as, event, viewer):
    client = api_as(viewer)
    first = client.get(urls(event)["snapshot"])
    again = client.get(urls(event)["snapshot"], HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304 and again["ETag"] == first["ETag"]


# -- byte ranges ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("header,first,last", [
    ("bytes=10-19", 10, 19),
    ("bytes=1000-", 1000, 1023),
    ("bytes=-4", 1020, 1023),
    ("bytes=0-", 0, 1023),
    ("bytes=1000-5000", 1000, 1023),  # the end is clipped to the file
    ("bytes=-5000", 0, 1023),  # more than the file: all of it
    ("bytes=1023-1023", 1023, 1023),
    ("BYTES = 5 - 6", 5, 6),
])
@pytest.mark.parametrize("streamed", [False, True])
def test_a_range_request_gets_exactly_the_bytes_asked(api_as, event, viewer, monkeypatch, header, first, last,
                                                      streamed):
    from events import views

    monkeypatch.setattr(views, "SMALL_RANGE", 0 if streamed else 64 * 1024)
    response = api_as(viewer).get(urls(event)["clip"], HTTP_RANGE=header)
    assert response.status_code == 206 and response.streaming == streamed
    assert body(response) == CLIP[first:last + 1]
    assert response["Content-Range"] == f"bytes {first}-{last}/1024"
    assert response["Content-Length"] == str(last - first + 1)
    assert response["Accept-Ranges"] == "bytes" and response["Content-Type"] == "video/webm"


@pytest.mark.parametrize("header", ["bytes=1024-", "bytes=5000-6000", "bytes=20-10", "bytes=-0"])
def test_an_unsatisfiable_range_gets_416_with_the_size(api_as, event, viewer, header):
    response = api_as(viewer).get(urls(event)["clip"], HTTP_RANGE=header)
    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */1024" and "1024 bytes" in response.json()["detail"]


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-5", "bytes=-", "bytes=a-b", "bytes=" + "9" * 40 + "-"])
def test_several_or_malformed_ranges_get_the_whole_clip(api_as, event, viewer, header):
    response = api_as(viewer).get(urls(event)["clip"], HTTP_RANGE=header)
    assert response.status_code == 200 and body(response) == CLIP


def test_if_range_serves_the_range_only_while_the_file_is_unchanged(api_as, event, viewer):
    client = api_as(viewer)
    etag = client.get(urls(event)["clip"])["ETag"]
    same = client.get(urls(event)["clip"], HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=etag)
    assert same.status_code == 206 and body(same) == CLIP[:10]
    changed = client.get(urls(event)["clip"], HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"another-version"')
    assert changed.status_code == 200 and body(changed) == CLIP


def test_snapshots_ignore_ranges(api_as, event, viewer):
    response = api_as(viewer).get(urls(event)["snapshot"], HTTP_RANGE="bytes=0-1")
    assert response.status_code == 200 and body(response) == JPEG


def test_the_range_parser():
    assert byte_range("", 10) is None and byte_range("bytes=2-3", 10) == (2, 3)
    assert byte_range("bytes=-3", 10) == (7, 9) and byte_range("bytes=8-", 10) == (8, 9)
    assert byte_range("bytes=10-", 10) == UNSATISFIABLE and byte_range("bytes=-1", 0) == UNSATISFIABLE
    assert byte_range("bytes=0-0,2-3", 10) is None


def test_the_page_clip_keeps_answering_ranges(client, event, viewer):
    client.force_login(viewer)
    response = client.get(f"/events/{event.pk}/clip.webm", HTTP_RANGE="bytes=10-19")
    assert response.status_code == 206 and body(response) == CLIP[10:20]


# -- the event JSON -----------------------------------------------------------------------------------------
def test_the_event_json_has_absolute_api_urls_that_work_with_the_token(api_as, event, viewer, camera):
    client = api_as(viewer)
    detail = client.get(f"/api/v1/events/{event.pk}/").json()
    listed = client.get("/api/v1/events/").json()["results"][0]
    base = f"http://testserver/api/v1/events/{event.pk}"
    for data in (detail, listed):
        assert data["snapshot_url"] == f"{base}/snapshot/" and data["clip_url"] == f"{base}/clip/"
        assert data["thumbnails"] == [{"track": 3, "label": "person", "url": f"{base}/objects/3/thumbnail/"}]
        assert data["snapshot"] == f"/events/{event.pk}/snapshot.jpg"  # the page's, as before
        assert data["clip"] == f"/events/{event.pk}/clip.webm"
    for url in (detail["snapshot_url"], detail["clip_url"], detail["thumbnails"][0]["url"]):
        assert client.get(url).status_code == 200, url
    acknowledged = api_as(UserFactory(is_staff=True)).post(f"/api/v1/events/{event.pk}/acknowledge/").json()
    assert acknowledged["snapshot_url"] == f"{base}/snapshot/"


def test_without_media_the_urls_are_null(api_as, camera, viewer):
    bare = EventFactory(camera=camera)
    data = api_as(viewer).get(f"/api/v1/events/{bare.pk}/").json()
    assert data["snapshot_url"] is None and data["clip_url"] is None and data["thumbnails"] == []


def test_without_a_request_the_urls_start_with_site_url(event, settings):
    """Events pushed over the WebSocket and alert payloads are serialized without a request."""
    from events.serializers import EventOutputSerializer

    settings.SITE_URL = "https://cams.example.com/"
    data = EventOutputSerializer(event).data
    assert data["snapshot_url"] == f"https://cams.example.com/api/v1/events/{event.pk}/snapshot/"
    assert data["thumbnails"][0]["url"] == f"https://cams.example.com/api/v1/events/{event.pk}/objects/3/thumbnail/"


def test_the_schema_describes_the_media_endpoints(client):
    schema = client.get("/api/v1/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    binary = {"type": "string", "format": "binary"}
    clips = {"video/mp4": {"schema": binary}, "video/webm": {"schema": binary}}  # H.264 MP4; WebM for older events
    for path, content in [("/api/v1/events/{event_id}/snapshot/", {"image/jpeg": {"schema": binary}}),
                          ("/api/v1/events/{event_id}/clip/", clips),
                          ("/api/v1/events/{event_id}/objects/{track}/thumbnail/", {"image/jpeg": {"schema": binary}}),
                          ("/api/v1/cameras/{camera_id}/picture/", {"image/jpeg": {"schema": binary}})]:
        responses = paths[path]["get"]["responses"]
        assert responses["200"]["content"] == content, path
        assert "application/json" in responses["404"]["content"] and "401" in responses, path
    clip = paths["/api/v1/events/{event_id}/clip/"]["get"]
    assert clip["responses"]["206"]["content"] == clips and "416" in clip["responses"]
    assert any(p["name"] == "Range" and p["in"] == "header" for p in clip["parameters"])
    fields = schema["components"]["schemas"]["EventOutput"]["properties"]
    for name in ("snapshot_url", "clip_url", "thumbnails"):
        assert fields[name]["description"], name
    assert fields["snapshot_url"]["format"] == "uri" and fields["snapshot_url"]["nullable"] is True


# -- a camera's current picture -------------------------------------------------------------------------------
def picture_url(camera) -> str:
    return f"/api/v1/cameras/{camera.pk}/picture/"


def test_the_current_picture_is_served_to_viewers(api_as, camera, owner, viewer, r):
    live.picture_store(r, camera.pk, JPEG, at=1_700_000_000.25, width=640, height=360, ttl=30)
    for user in (owner, viewer):
        response = api_as(user).get(picture_url(camera), HTTP_ACCEPT="image/jpeg")
        assert response.status_code == 200 and response.content == JPEG
        assert response["Content-Type"] == "image/jpeg" and response["Cache-Control"] == "no-store"
        assert response["X-Captured-At"] == "1700000000.250"
        assert response["Last-Modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert live.picture_wanted(r, camera.pk)  # asking keeps the worker storing it


def test_a_stopped_camera_has_no_picture_a_clear_404(api_as, camera, viewer, r, settings):
    settings.CAMERA_PICTURE_WAIT_SECONDS = 5
    started = time.monotonic()
    response = api_as(viewer).get(picture_url(camera))
    assert time.monotonic() - started < 2  # no waiting for a camera that does not run
    assert response.status_code == 404
    assert response.json()["code"] == "camera_not_running" and response.json()["state"] == "stopped"
    assert "not running" in response.json()["detail"]


def test_a_running_camera_without_a_picture_yet_waits_then_says_retry(api_as, camera, viewer, r, settings):
    settings.CAMERA_PICTURE_WAIT_SECONDS = 0.3
    camera.enabled, camera.state = True, "running"
    camera.save()
    response = api_as(viewer).get(picture_url(camera))
    assert response.status_code == 404 and response.json()["code"] == "no_picture_yet"
    assert response["Retry-After"] == "2" and live.picture_wanted(r, camera.pk)


def test_the_first_request_gets_the_picture_the_worker_stores_meanwhile(api_as, camera, viewer, r, settings):
    settings.CAMERA_PICTURE_WAIT_SECONDS = 3
    camera.enabled, camera.state = True, "running"
    camera.save()

    def worker():  # stores a picture once it sees the wish, as runtime/frames.py does
        if wait_for_wish():
            live.picture_store(live.client(), camera.pk, JPEG, at=time.time(), width=2, height=2, ttl=10)

    def wait_for_wish():
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if live.picture_wanted(live.client(), camera.pk):
                return True
            time.sleep(0.05)
        return False

    thread = threading.Thread(target=worker)
    thread.start()
    response = api_as(viewer).get(picture_url(camera))
    thread.join()
    assert response.status_code == 200 and response.content == JPEG


def test_pictures_turned_off(api_as, camera, viewer, settings):
    settings.CAMERA_PICTURE_SECONDS = 0
    response = api_as(viewer).get(picture_url(camera))
    assert response.status_code == 404 and response.json()["code"] == "disabled"


def test_an_unreachable_redis_is_a_503_not_a_500(api_as, camera, viewer, monkeypatch):
    def down(*args, **kwargs):
        raise redis.ConnectionError("connection refused")

    monkeypatch.setattr(live, "picture_read", down)
    response = api_as(viewer).get(picture_url(camera))
    assert response.status_code == 503 and response.json()["code"] == "live_unavailable"


def test_an_expired_picture_is_not_served(api_as, camera, viewer, r):
    live.picture_store(r, camera.pk, JPEG, at=time.time(), width=2, height=2, ttl=0.05)
    time.sleep(0.15)
    assert api_as(viewer).get(picture_url(camera)).status_code == 404


# -- the worker's side: keeping the current picture ------------------------------------------------------------
class Layer:
    def __init__(self):
        self.sent = []

    async def group_send(self, group, message):
        self.sent.append(message)


def frame(value=60):
    import numpy as np

    from inference.base import Frame

    return Frame(np.full((240, 320, 3), value, np.uint8), 1.0, 1)


def test_the_worker_keeps_a_picture_only_of_wanted_cameras_at_a_low_rate(camera, r):
    from runtime.frames import FramePublisher
    from tests.waiting import wait_for

    pub = FramePublisher(Layer(), r, width=640, quality=80, picture_every=60, picture_ttl=30)
    pub.on_frame(camera.pk, frame(), 1_700_000_000.0)
    assert pub.encoded == 0 and live.picture_read(r, camera.pk) is None  # nobody asked: no work

    live.picture_want(r, camera.pk, 30)
    pub._wanted.clear()  # (the publisher checks the wish once a second)
    pub.on_frame(camera.pk, frame(), 1_700_000_001.0)
    assert wait_for(lambda: live.picture_read(r, camera.pk) is not None, timeout=3)
    picture = live.picture_read(r, camera.pk)
    assert picture["jpeg"][:2] == b"\xff\xd8" and picture["at"] == 1_700_000_001.0
    assert (picture["width"], picture["height"]) == (320, 240)
    assert 0 < r.pttl(live.picture_key(camera.pk)) <= 30_000
    for _ in range(5):  # within picture_every: no new encode
        pub.on_frame(camera.pk, frame(), 1_700_000_002.0)
    assert pub.encoded == 1 and pub.pictures == 1

    pub.forget_picture(camera.pk)  # the camera stopped
    assert wait_for(lambda: live.picture_read(r, camera.pk) is None, timeout=3)


def test_live_viewers_jpeg_is_reused_and_oversized_pictures_are_skipped(camera, r):
    from runtime.frames import FramePublisher
    from tests.waiting import wait_for

    live.picture_want(r, camera.pk, 30)
    pub = FramePublisher(Layer(), r, width=640, quality=80, picture_every=60, picture_ttl=30)
    pub.tiers = lambda camera_id: {5}
    pub.on_frame(camera.pk, frame(), 5.0)
    assert wait_for(lambda: pub.layer.sent and pub.pictures == 1, timeout=3)
    assert pub.encoded == 1  # one encode for the viewers and the picture
    assert live.picture_read(r, camera.pk)["jpeg"] == pub.layer.sent[0]["jpeg"]

    small = FramePublisher(Layer(), r, width=640, quality=80, picture_every=60, picture_max_bytes=10)
    r.delete(live.picture_key(camera.pk))
    small.on_frame(camera.pk, frame(), 6.0)
    assert small.pictures_skipped == 1 and live.picture_read(r, camera.pk) is None


def test_without_picture_settings_the_publisher_never_asks_redis():
    from runtime.frames import FramePublisher

    pub = FramePublisher(Layer(), client=None, width=640, quality=80)
    pub.tiers = lambda camera_id: set()
    pub.on_frame(1, frame(), 1.0)
    assert pub.encoded == 0 and not pub.picture_due(1, time.monotonic())


def test_the_worker_callbacks_forget_a_stopped_cameras_picture(monkeypatch):
    from runtime import callbacks

    forgotten = []

    class Frames:
        def forget_picture(self, camera_id):
            forgotten.append(camera_id)

    class Writer:
        def try_submit(self, fn, *args):
            return True

    cb = callbacks.WorkerCallbacks.__new__(callbacks.WorkerCallbacks)
    cb.frames, cb.db_writer = Frames(), Writer()
    for state in ("running", "stopped", "reconnecting", "error"):
        cb.on_state(7, state)
    assert forgotten == [7, 7]



@pytest.mark.django_db(transaction=True)
def test_a_running_camera_answers_its_current_picture_end_to_end(api_as, camera, viewer, settings, tmp_path, r):
    """A real worker loop on the demo scene: nobody asked, nothing is encoded; the first request waits for
    the worker to notice and store a picture, and gets the scene as a JPEG."""
    import cv2
    import numpy as np

    from cameras.services import camera_start
    from runtime.process import create_logger, create_manager, create_pool

    settings.EVENT_LOG_DIR = tmp_path / "log"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.WORKER_HEARTBEAT_SECONDS = 0.5
    settings.CAMERA_PICTURE_WAIT_SECONDS = 5
    camera.source_url = "demo://?seed=8&anomaly_every=1000"
    camera.save()
    logger = create_logger("picture-test").start()
    manager = create_manager("picture-test", logger, create_pool())
    try:
        camera_start(camera=camera, by=None)
        assert manager.start(camera.id) == "started"
        time.sleep(1.5)
        publisher = manager.callbacks.frames
        assert manager.cameras[camera.id].system.frames > 0 and publisher.encoded == 0
        response = api_as(viewer).get(picture_url(camera))
        assert response.status_code == 200, response.content[:200]
        image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[1] <= settings.STREAM_WIDTH
        assert abs(float(response["X-Captured-At"]) - time.time()) < 10
        assert publisher.pictures >= 1
    finally:
        manager.close()
        logger.close()
