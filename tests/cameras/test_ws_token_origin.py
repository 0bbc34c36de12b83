"""/ws/stream/ and the Origin header: token sockets need none, cookie-session sockets must come from
ALLOWED_HOSTS (cross-site WebSocket hijacking). Through the real ``surveillance.asgi.application``."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken

from surveillance.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

OWN = b"http://localhost"
FOREIGN = b"https://evil.example"


async def open_socket(path, *, origin=None, cookie=None):
    headers = []
    if origin is not None:
        headers.append((b"origin", origin))
    if cookie is not None:
        headers.append((b"cookie", cookie))
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await comm.connect(timeout=5)
    return comm, connected, code


async def session_cookie(user) -> bytes:
    client = Client()
    await sync_to_async(client.force_login)(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def test_a_token_socket_needs_no_origin(camera, viewer):
    """Native apps (OkHttp, URLSession) send no Origin: their token is all they need."""
    comm, connected, code = await open_socket(f"/ws/stream/?token={AccessToken.for_user(viewer)}")
    assert connected, code
    await comm.send_json_to({"action": "subscribe", "camera": camera.id, "frames": False})
    assert (await comm.receive_json_from(timeout=5))["type"] == "subscribed"
    await comm.disconnect()


async def test_a_token_socket_is_allowed_from_another_origin(viewer):
    """A token is not ambient (a page of another site has it only if it was given it), so the
    Origin does not matter to token sockets."""
    comm, connected, code = await open_socket(f"/ws/stream/?token={AccessToken.for_user(viewer)}", origin=FOREIGN)
    assert connected, code
    await comm.send_json_to({"action": "ping"})
    assert (await comm.receive_json_from(timeout=5))["type"] == "pong"
    await comm.disconnect()


@pytest.mark.parametrize("origin", [None, OWN, FOREIGN])
async def test_a_bad_token_is_refused_with_4401_whatever_the_origin(origin):
    comm, connected, code = await open_socket("/ws/stream/?token=not-a-jwt", origin=origin)
    assert (connected, code) == (False, 4401)


async def test_a_session_socket_from_the_site_is_accepted(viewer):
    comm, connected, code = await open_socket("/ws/stream/", origin=OWN, cookie=await session_cookie(viewer))
    assert connected, code
    await comm.disconnect()


@pytest.mark.parametrize("origin", [None, FOREIGN])
async def test_a_session_socket_without_origin_or_from_another_site_is_refused(viewer, origin):
    """The browser sends the session cookie whatever page opens the socket: only the site's own pages
    may use it. Refused before the consumer runs (HTTP 403 under daphne), not with 4401."""
    comm, connected, code = await open_socket("/ws/stream/", origin=origin, cookie=await session_cookie(viewer))
    assert not connected and code != 4401


async def test_a_bad_token_never_falls_back_to_the_session_cookie(viewer):
    """Another site cannot borrow the victim's cookie by adding a token of its own making."""
    cookie = await session_cookie(viewer)
    comm, connected, code = await open_socket("/ws/stream/?token=forged", origin=FOREIGN, cookie=cookie)
    assert (connected, code) == (False, 4401)
