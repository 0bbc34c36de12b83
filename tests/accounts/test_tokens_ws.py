"""A token revoked by logout cannot open the WebSocket."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from surveillance.asgi import application
from tests.accounts.test_tokens import PASSWORD, login, logout
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def stream(access: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/stream/?token={access}", headers=[(b"origin", b"http://localhost")])


async def test_a_revoked_token_cannot_open_a_websocket(client):
    user = await sync_to_async(UserFactory)(password=PASSWORD)
    tokens = await sync_to_async(login)(client, user)
    communicator = stream(tokens['access'])
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    await communicator.disconnect()
    await sync_to_async(logout)(client, tokens["access"], refresh=tokens["refresh"])
    communicator = stream(tokens['access'])
    connected, code = await communicator.connect(timeout=5)
    assert not connected and code == 4401


async def test_an_open_websocket_is_closed_when_its_token_is_revoked(client, settings):
    settings.WS_PERMISSION_RECHECK_SECONDS = 0.2
    user = await sync_to_async(UserFactory)(password=PASSWORD)
    tokens = await sync_to_async(login)(client, user)
    communicator = stream(tokens['access'])
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    await sync_to_async(logout)(client, tokens["access"], refresh=tokens["refresh"])
    message = await communicator.receive_json_from(timeout=5)
    assert message["type"] == "error" and message["code"] == "unauthenticated"
    closed = await communicator.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 4401}
