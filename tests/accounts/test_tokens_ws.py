"""A token revoked by logout cannot open the WebSocket."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from surveillance.asgi import application
from tests.accounts.test_tokens import PASSWORD, login, logout
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def test_a_revoked_token_cannot_open_a_websocket(client):
    user = await sync_to_async(UserFactory)(password=PASSWORD)
    tokens = await sync_to_async(login)(client, user)
    communicator = WebsocketCommunicator(application, f"/ws/stream/?token={tokens['access']}",
                                         headers=[(b"origin", b"http://localhost")])
    connected, _ = await communicator.connect()
    assert connected
    await communicator.disconnect()
    await sync_to_async(logout)(client, tokens["access"], refresh=tokens["refresh"])
    communicator = WebsocketCommunicator(application, f"/ws/stream/?token={tokens['access']}",
                                         headers=[(b"origin", b"http://localhost")])
    connected, code = await communicator.connect()
    assert not connected and code == 4401
