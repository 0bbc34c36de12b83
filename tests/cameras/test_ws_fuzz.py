"""Fuzzed /ws/stream/ messages: wrong types, huge payloads, unknown actions, invalid JSON, binary
frames and floods. Every bad message gets an ``error`` (code and message), the connection stays
usable, floods are rate-limited and finally closed with 4429, and other clients are unaffected.

Real ASGI stack (surveillance.asgi), real Redis channel layer, real database.
"""

import asyncio
import json
import random

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from guardian.shortcuts import assign_perm
from rest_framework_simplejwt.tokens import AccessToken

from cameras.consumers import CLOSE_RATE_LIMITED
from cameras.groups import camera_group
from surveillance.asgi import application
from tests.factories import EventFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

ERROR_CODES = {"bad_request", "not_found", "forbidden", "rate_limited"}


async def connect(user):
    comm = WebsocketCommunicator(application, f"/ws/stream/?token={AccessToken.for_user(user)}",
                                 headers=[(b"origin", b"http://localhost")])
    connected, _ = await comm.connect(timeout=5)
    assert connected
    return comm


async def reply_to(comm, *, text=None, binary=None):
    # send_input, not send_to: it also sends empty frames, as a real client can.
    if binary is not None:
        await comm.send_input({"type": "websocket.receive", "bytes": binary})
    else:
        await comm.send_input({"type": "websocket.receive", "text": text if isinstance(text, str) else json.dumps(text)})
    return json.loads(await comm.receive_from(timeout=5))


async def assert_usable(comm):
    assert (await reply_to(comm, text={"action": "ping"}))["type"] == "pong"


def assert_clear_error(reply, code=None):
    assert reply["type"] == "error", reply
    assert reply["code"] in ERROR_CODES and (code is None or reply["code"] == code), reply
    assert isinstance(reply["message"], str) and len(reply["message"]) > 10, reply


BAD_MESSAGES = [
    # invalid JSON, and JSON that is not an object with an action
    ("", "bad_request"), ("{", "bad_request"), ("{'action': 'ping'}", "bad_request"), ("null", "bad_request"),
    ("NaN", "bad_request"), ('"ping"', "bad_request"), ("123", "bad_request"), ("[]", "bad_request"),
    ("[" * 2000 + "]" * 2000, "bad_request"),                    # nested too deeply for the JSON parser
    ('{"action": ' * 300 + '"ping"' + "}" * 300, "bad_request"),
    ("\udcff\x00\ufffe", "bad_request"),
    # the action
    ({"action": None}, "bad_request"), ({"action": 1}, "bad_request"), ({"action": ["ping"]}, "bad_request"),
    ({"action": {"x": 1}}, "bad_request"), ({"action": ""}, "bad_request"), ({"action": "PING"}, "bad_request"),
    ({"action": "delete_everything", "camera": 1}, "bad_request"), ({"action": "x" * 3000}, "bad_request"),
    # camera ids of every wrong type and range
    ({"action": "subscribe", "camera": None}, "bad_request"), ({"action": "subscribe", "camera": 1.0}, "bad_request"),
    ({"action": "subscribe", "camera": 1.5}, "bad_request"), ({"action": "subscribe", "camera": -1}, "bad_request"),
    ({"action": "subscribe", "camera": 0}, "bad_request"), ({"action": "subscribe", "camera": "1"}, "bad_request"),
    ({"action": "subscribe", "camera": [1]}, "bad_request"), ({"action": "subscribe", "camera": {"id": 1}},
                                                               "bad_request"),
    ({"action": "subscribe", "camera": 10**30}, "bad_request"),   # would overflow the database integer
    ({"action": "subscribe", "camera": 2**63 - 1}, "not_found"),
    ({"action": "unsubscribe", "camera": False}, "bad_request"), ({"action": "unsubscribe", "camera": 10**30},
                                                                   "bad_request"),
    ('{"action": "subscribe", "camera": Infinity}', "bad_request"),
    # huge payloads: over 4 KiB of characters, and over 4 KiB of UTF-8 bytes in fewer characters
    ({"action": "ping", "pad": "x" * 5000}, "bad_request"), ({"action": "ping", "pad": "é" * 2100}, "bad_request"),
    ("x" * 1_000_000, "bad_request"),
]


@pytest.mark.parametrize("message,code", BAD_MESSAGES, ids=[str(i) for i in range(len(BAD_MESSAGES))])
async def test_every_bad_message_gets_a_clear_error_and_the_connection_stays(viewer, message, code):
    comm = await connect(viewer)
    assert_clear_error(await reply_to(comm, text=message), code)
    await assert_usable(comm)
    await comm.disconnect()


@pytest.mark.parametrize("options", [
    {"fps": 5.0}, {"fps": "5"}, {"fps": True}, {"fps": 0}, {"fps": -5}, {"fps": 10**40}, {"fps": None}, {"fps": [5]},
    {"frames": 1}, {"frames": "true"}, {"frames": None}, {"binary": 0}, {"binary": "yes"}, {"binary": []},
])
async def test_wrong_option_types_on_a_viewable_camera(camera, viewer, options):
    comm = await connect(viewer)
    reply = await reply_to(comm, text={"action": "subscribe", "camera": camera.id, **options})
    assert_clear_error(reply, "bad_request")
    assert reply["camera"] == camera.id
    # Still nothing subscribed: unsubscribing says so.
    assert_clear_error(await reply_to(comm, text={"action": "unsubscribe", "camera": camera.id}), "not_found")
    await comm.disconnect()


@pytest.mark.parametrize("payload", [b"", b"\x00", b'{"action": "ping"}', bytes(range(256)) * 16, b"\xff" * 100_000])
async def test_binary_frames_are_refused_with_an_error(viewer, payload):
    comm = await connect(viewer)
    assert_clear_error(await reply_to(comm, binary=payload), "bad_request")
    await assert_usable(comm)
    await comm.disconnect()


NASTY = [None, True, False, 0, -1, 1, 2**31, 2**63, 10**30, 1.5, float("inf"), "", "1", "subscribe", "ping",
         "unsubscribe", "é" * 50, "\x00", [], [1], {}, {"a": {"b": [None]}}, 5, 30, 7]


def random_message(rng: random.Random, camera_id: int):
    """A random message: mostly objects with the protocol's keys and nasty values, sometimes raw text."""
    roll = rng.random()
    if roll < 0.15:
        return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0, 0x2FFF)]))
                       for _ in range(rng.randrange(0, 60)))
    if roll < 0.25:
        return json.dumps(rng.choice(NASTY), allow_nan=True)
    message = {}
    for key in ("action", "camera", "fps", "frames", "binary", rng.choice(["extra", "type", "__proto__"])):
        if rng.random() < 0.7:
            message[key] = rng.choice(NASTY + ([camera_id] * 3 if key == "camera" else []) +
                                      (["subscribe", "unsubscribe", "ping"] * 3 if key == "action" else []))
    return json.dumps(message, allow_nan=True)


async def test_random_messages_each_get_one_well_formed_reply(camera, viewer, settings):
    """Seeded random fuzzing (300 messages): each gets exactly one reply, either a protocol answer
    or a clear error, and the connection survives all of them."""
    settings.WS_MESSAGE_BURST = 10_000
    rng = random.Random(20240608)
    comm = await connect(viewer)
    kinds = {}
    for _ in range(300):
        raw = random_message(rng, camera.id)
        reply = await reply_to(comm, text=raw)
        kinds[reply["type"]] = kinds.get(reply["type"], 0) + 1
        if reply["type"] == "error":
            assert_clear_error(reply)
            assert reply["code"] != "rate_limited"
        else:
            assert reply["type"] in {"pong", "subscribed", "unsubscribed"}, (raw, reply)
    assert await comm.receive_nothing(timeout=0.2)
    await assert_usable(comm)
    assert kinds.get("error", 0) > 100 and kinds.get("pong", 0) > 0  # the fuzzing reached both paths
    await comm.disconnect()


async def test_a_flood_is_rate_limited_then_the_connection_recovers(viewer, settings):
    settings.WS_MESSAGE_BURST = 3
    settings.WS_MESSAGES_PER_SECOND = 0.5
    settings.WS_RATE_LIMIT_CLOSE_AFTER = 1000
    comm = await connect(viewer)
    for _ in range(8):
        await comm.send_to(text_data=json.dumps({"action": "ping"}))
    replies = [json.loads(await comm.receive_from(timeout=5)) for _ in range(8)]
    assert [r["type"] for r in replies[:3]] == ["pong"] * 3
    for refused in replies[3:]:
        assert_clear_error(refused, "rate_limited")
        assert 0 < refused["retry_after"] <= 2
    await asyncio.sleep(2.2)  # one message's worth of tokens at 0.5 a second
    await assert_usable(comm)
    await comm.disconnect()


async def test_sustained_abuse_closes_the_connection_with_4429(viewer, settings):
    settings.WS_MESSAGE_BURST = 2
    settings.WS_MESSAGES_PER_SECOND = 0.01
    settings.WS_RATE_LIMIT_CLOSE_AFTER = 5
    comm = await connect(viewer)
    for _ in range(20):
        await comm.send_to(text_data='{"action": "ping"}')
    outputs = []
    while True:
        output = await comm.receive_output(timeout=5)
        outputs.append(output)
        if output["type"] == "websocket.close":
            break
    texts = [json.loads(o["text"]) for o in outputs if o["type"] == "websocket.send"]
    assert [t["type"] for t in texts[:2]] == ["pong", "pong"]
    assert all(t["code"] == "rate_limited" for t in texts[2:]) and len(texts[2:]) == 5
    assert "Closing the connection" in texts[-1]["message"]
    assert outputs[-1] == {"type": "websocket.close", "code": CLOSE_RATE_LIMITED}
    assert await comm.receive_nothing(timeout=0.3)  # nothing answered after the close


async def test_an_abusive_client_does_not_affect_other_clients_of_the_camera(camera, viewer, settings):
    settings.WS_MESSAGE_BURST = 5
    settings.WS_MESSAGES_PER_SECOND = 0.01
    settings.WS_RATE_LIMIT_CLOSE_AFTER = 50
    other = await sync_to_async(UserFactory)(username="other-viewer")
    await sync_to_async(assign_perm)("view_camera", other, camera)
    abuser, calm = await connect(viewer), await connect(other)
    for comm in (abuser, calm):
        assert (await reply_to(comm, text={"action": "subscribe", "camera": camera.id, "frames": False}))["type"] \
            == "subscribed"

    junk = ["x" * 5000, "{", json.dumps({"action": "subscribe", "camera": 10**30}), '{"action": 1}']
    for i in range(200):  # the abuser floods with junk until it is cut off
        await abuser.send_to(text_data=junk[i % len(junk)])

    # Meanwhile the camera's events and status reach the calm client, and it is answered at once.
    event = await sync_to_async(EventFactory)(camera=camera)
    from events.services import events_broadcast

    await sync_to_async(events_broadcast)(event_ids=[event.id])
    message = json.loads(await calm.receive_from(timeout=5))
    assert message["type"] == "event" and message["event"]["id"] == str(event.id)
    await get_channel_layer().group_send(camera_group(camera.id), {"type": "camera.status", "camera": camera.id,
                                                                   "state": "running", "error": "", "at": 1.0})
    assert json.loads(await calm.receive_from(timeout=5))["state"] == "running"
    await assert_usable(calm)

    # The abuser got errors (never a crash) and was closed with 4429.
    codes = []
    while True:
        output = await abuser.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            assert output["code"] == CLOSE_RATE_LIMITED
            break
        data = json.loads(output["text"])
        if data["type"] == "error":
            codes.append(data["code"])
    # Burst of 5, one spent on subscribing: 4 junk messages are judged, then the limit holds.
    assert codes[:4] == ["bad_request"] * 4 and codes[4:] == ["rate_limited"] * 50
    assert await calm.receive_nothing(timeout=0.3)
    await calm.disconnect()
