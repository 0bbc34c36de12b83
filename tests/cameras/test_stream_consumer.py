"""/ws/stream/ with WebsocketCommunicator, the real Redis channel layer and the real database."""

import base64
import json
import time

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from guardian.shortcuts import remove_perm
from rest_framework_simplejwt.tokens import AccessToken

from cameras import live
from cameras.groups import camera_frames_group, camera_group
from surveillance.asgi import application
from tests.factories import EventFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def connect(user=None, token=None):
    path = "/ws/stream/"
    if user is not None:
        path += f"?token={AccessToken.for_user(user)}"
    elif token is not None:
        path += f"?token={token}"
    comm = WebsocketCommunicator(application, path, headers=[(b"origin", b"http://localhost")])
    connected, code = await comm.connect(timeout=5)
    return comm, connected, code


async def send(comm, message):
    await comm.send_to(text_data=json.dumps(message) if not isinstance(message, str) else message)
    return json.loads(await comm.receive_from(timeout=5))


async def test_unauthenticated_connection_is_closed_with_a_clear_code():
    comm, connected, code = await connect()
    assert not connected and code == 4401
    comm, connected, code = await connect(token="not-a-jwt")
    assert not connected and code == 4401


async def test_ping_subscribe_unsubscribe(camera, viewer):
    comm, connected, _ = await connect(viewer)
    assert connected
    assert (await send(comm, {"action": "ping"}))["type"] == "pong"
    reply = await send(comm, {"action": "subscribe", "camera": camera.id})
    assert reply == {"type": "subscribed", "camera": camera.id, "fps": 5, "frames": True, "binary": False,
                     "state": "stopped"}
    assert await sync_to_async(live.watched_tiers)(live.client(), camera.id) == {5}
    assert await send(comm, {"action": "unsubscribe", "camera": camera.id}) == {"type": "unsubscribed",
                                                                                "camera": camera.id}
    assert await sync_to_async(live.watched_tiers)(live.client(), camera.id) == set()
    await comm.disconnect()


@pytest.mark.parametrize(
    "message,code",
    [
        ("not json", "bad_request"),
        ("[1, 2]", "bad_request"),
        ({"no": "action"}, "bad_request"),
        ({"action": "dance"}, "bad_request"),
        ({"action": "subscribe"}, "bad_request"),
        ({"action": "subscribe", "camera": "one"}, "bad_request"),
        ({"action": "subscribe", "camera": True}, "bad_request"),
        ({"action": "subscribe", "camera": "CAM", "fps": 5}, "bad_request"),
        ({"action": "subscribe", "camera": 999999}, "not_found"),
        ({"action": "unsubscribe", "camera": 999999}, "not_found"),
        ("x" * 10000, "bad_request"),
    ],
)
async def test_malformed_messages_get_an_error_and_the_connection_stays(viewer, message, code):
    comm, _, _ = await connect(viewer)
    reply = await send(comm, message)
    assert reply["type"] == "error" and reply["code"] == code and reply["message"]
    assert (await send(comm, {"action": "ping"}))["type"] == "pong"
    await comm.disconnect()


async def test_bad_fps_and_flags(camera, viewer):
    comm, _, _ = await connect(viewer)
    for bad in ({"fps": 7}, {"fps": "5"}, {"frames": "yes"}):
        reply = await send(comm, {"action": "subscribe", "camera": camera.id, **bad})
        assert (reply["type"], reply["code"]) == ("error", "bad_request")
    await comm.disconnect()


async def test_outsider_is_forbidden(camera, outsider):
    comm, connected, _ = await connect(outsider)
    assert connected
    reply = await send(comm, {"action": "subscribe", "camera": camera.id})
    assert (reply["type"], reply["code"], reply["camera"]) == ("error", "not_found", camera.id)
    missing = await send(comm, {"action": "subscribe", "camera": camera.id + 1000})
    assert reply["message"].replace(str(camera.id), "N") == missing["message"].replace(str(camera.id + 1000), "N")
    # Nothing of that camera reaches the outsider.
    await get_channel_layer().group_send(camera_group(camera.id), {"type": "camera.status", "camera": camera.id,
                                                                   "state": "running", "error": "", "at": 0})
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


async def test_event_status_score_and_frame_messages(camera, viewer):
    comm, _, _ = await connect(viewer)
    await send(comm, {"action": "subscribe", "camera": camera.id, "fps": 5})
    layer = get_channel_layer()

    event = await sync_to_async(EventFactory)(camera=camera)
    from events.services import events_broadcast

    await sync_to_async(events_broadcast)(event_ids=[event.id])
    message = json.loads(await comm.receive_from(timeout=5))
    assert message["type"] == "event" and message["event"]["id"] == str(event.id)
    assert message["event"]["camera_name"] == camera.name  # the same JSON as the events API

    await layer.group_send(camera_group(camera.id), {"type": "camera.status", "camera": camera.id,
                                                     "state": "reconnecting", "error": "stream lost", "at": 1.0})
    message = json.loads(await comm.receive_from(timeout=5))
    assert message == {"type": "camera.status", "camera": camera.id, "state": "reconnecting",
                       "error": "stream lost", "at": 1.0}

    for score in (0.1, 0.2):  # at most one score a second per subscription
        await layer.group_send(camera_group(camera.id), {"type": "camera.score", "camera": camera.id,
                                                         "score": score, "at": 2.0})
    message = json.loads(await comm.receive_from(timeout=5))
    assert message == {"type": "score", "camera": camera.id, "score": 0.1, "at": 2.0}
    assert await comm.receive_nothing(timeout=0.3)

    now = time.time()
    await layer.group_send(camera_frames_group(camera.id, 5), {
        "type": "camera.frame", "camera": camera.id, "fps": 5, "ts": now, "jpeg": b"\xff\xd8abc",
        "width": 4, "height": 3})
    message = json.loads(await comm.receive_from(timeout=5))
    assert message["type"] == "frame" and message["camera"] == camera.id and message["ts"] == now
    assert base64.b64decode(message["jpeg"]) == b"\xff\xd8abc"
    await comm.disconnect()


async def test_binary_frames_carry_a_small_json_header(camera, viewer):
    comm, _, _ = await connect(viewer)
    await send(comm, {"action": "subscribe", "camera": camera.id, "fps": 1, "binary": True})
    await get_channel_layer().group_send(camera_frames_group(camera.id, 1), {
        "type": "camera.frame", "camera": camera.id, "fps": 1, "ts": time.time(), "jpeg": b"\xff\xd8xyz",
        "width": 4, "height": 3})
    data = await comm.receive_output(timeout=5)
    raw = data["bytes"]
    size = int.from_bytes(raw[:4], "big")
    header = json.loads(raw[4:4 + size])
    assert header["type"] == "frame" and header["camera"] == camera.id and raw[4 + size:] == b"\xff\xd8xyz"
    await comm.disconnect()


async def test_frames_false_gets_events_but_no_frames(camera, viewer):
    comm, _, _ = await connect(viewer)
    await send(comm, {"action": "subscribe", "camera": camera.id, "frames": False})
    assert await sync_to_async(live.watched_tiers)(live.client(), camera.id) == set()
    await get_channel_layer().group_send(camera_frames_group(camera.id, 5), {
        "type": "camera.frame", "camera": camera.id, "fps": 5, "ts": 1.0, "jpeg": b"x", "width": 1, "height": 1})
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


async def test_revoked_permission_stops_live_subscriptions(camera, viewer, settings):
    settings.WS_PERMISSION_RECHECK_SECONDS = 0.2
    comm, _, _ = await connect(viewer)
    await send(comm, {"action": "subscribe", "camera": camera.id})
    await sync_to_async(remove_perm)("view_camera", viewer, camera)
    first = json.loads(await comm.receive_from(timeout=5))
    second = json.loads(await comm.receive_from(timeout=5))
    assert first == {"type": "unsubscribed", "camera": camera.id, "reason": "forbidden"}
    assert (second["type"], second["code"]) == ("error", "forbidden")
    await get_channel_layer().group_send(camera_group(camera.id), {"type": "camera.status", "camera": camera.id,
                                                                   "state": "error", "error": "", "at": 0})
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


async def test_session_cookie_authenticates_pages(camera, viewer):
    from django.test import Client

    client = Client()
    await sync_to_async(client.force_login)(viewer)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    comm = WebsocketCommunicator(application, "/ws/stream/",
                                 headers=[(b"cookie", cookie), (b"origin", b"http://localhost")])
    connected, _ = await comm.connect(timeout=5)
    assert connected
    assert (await send(comm, {"action": "subscribe", "camera": camera.id}))["type"] == "subscribed"
    await comm.disconnect()


async def test_a_lagging_connection_drops_stale_frames_but_never_events(camera, viewer):
    comm, _, _ = await connect(viewer)
    await send(comm, {"action": "subscribe", "camera": camera.id, "fps": 5})
    layer = get_channel_layer()
    stale = {"type": "camera.frame", "camera": camera.id, "fps": 5, "ts": time.time() - 30, "jpeg": b"old",
             "width": 1, "height": 1}
    await layer.group_send(camera_frames_group(camera.id, 5), stale)
    event = await sync_to_async(EventFactory)(camera=camera)
    from events.services import events_broadcast

    await sync_to_async(events_broadcast)(event_ids=[event.id])
    message = json.loads(await comm.receive_from(timeout=5))
    assert message["type"] == "event"  # the stale frame before it was dropped
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()
