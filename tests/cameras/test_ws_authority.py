"""Open sockets follow their user's authority (docs/websocket.md, "Permissions").

Every WS_PERMISSION_RECHECK_SECONDS (and on a ``permissions.changed`` message) the consumer reloads its
user from the database as the socket signed in: a session socket closes when the session is gone
(logout), no longer matches the password, or its user was deactivated; a token socket when its token
expires, is revoked or its user was deactivated. Subscriptions follow is_staff, global and object
permissions as they are now. A recheck that fails (database, Redis) closes the socket.
"""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import OperationalError
from django.test import Client
from guardian.shortcuts import assign_perm
from rest_framework_simplejwt.tokens import AccessToken

from accounts.services import tokens_revoke
from cameras import consumers
from cameras.groups import user_group
from surveillance.asgi import application
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

User = get_user_model()


@pytest.fixture(autouse=True)
def _quick_rechecks(settings):
    settings.WS_PERMISSION_RECHECK_SECONDS = 0.2


async def token_socket(user=None, token=None):
    comm = WebsocketCommunicator(application, f"/ws/stream/?token={token or AccessToken.for_user(user)}")
    connected, code = await comm.connect(timeout=5)
    assert connected, code
    return comm


async def session_socket(user):
    """A page's socket, and the browser's Django test client (same session) to act as the user."""
    client = Client()
    await sync_to_async(client.force_login)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    comm = WebsocketCommunicator(application, "/ws/stream/", headers=[(b"cookie", cookie),
                                                                     (b"origin", b"http://localhost")])
    connected, code = await comm.connect(timeout=5)
    assert connected, code
    return comm, client


async def assert_closed(comm, code, error):
    """A last ``error`` says why, then the socket is closed with ``code``."""
    message = await comm.receive_json_from(timeout=5)
    assert (message["type"], message["code"]) == ("error", error), message
    assert message["message"]
    assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": code}
    await comm.disconnect()  # as the server does once the client is gone: the consumer finishes


async def assert_still_open(comm):
    await comm.send_json_to({"action": "ping"})
    assert (await comm.receive_json_from(timeout=5))["type"] == "pong"


async def subscribe(comm, camera):
    await comm.send_json_to({"action": "subscribe", "camera": camera.id, "frames": False})
    assert (await comm.receive_json_from(timeout=5))["type"] == "subscribed"


async def assert_dropped(comm, camera):
    assert await comm.receive_json_from(timeout=5) == {"type": "unsubscribed", "camera": camera.id,
                                                       "reason": "forbidden"}
    message = await comm.receive_json_from(timeout=5)
    assert (message["type"], message["code"], message["camera"]) == ("error", "forbidden", camera.id)


def update_user(user, **fields):
    User.objects.filter(pk=user.pk).update(**fields)


# -- session sockets -------------------------------------------------------------------------------------
async def test_a_session_socket_closes_on_logout(viewer):
    comm, client = await session_socket(viewer)
    await assert_still_open(comm)
    await sync_to_async(client.logout)()
    await assert_closed(comm, consumers.CLOSE_UNAUTHENTICATED, "unauthenticated")


async def test_a_session_socket_closes_when_the_password_changes(viewer):
    comm, _client = await session_socket(viewer)
    await assert_still_open(comm)

    def change_password():
        user = User.objects.get(pk=viewer.pk)
        user.set_password("another-pass-word-456")
        user.save()

    await sync_to_async(change_password)()
    await assert_closed(comm, consumers.CLOSE_UNAUTHENTICATED, "unauthenticated")


async def test_a_session_socket_closes_when_its_user_is_deactivated(viewer):
    comm, _client = await session_socket(viewer)
    await assert_still_open(comm)
    await sync_to_async(update_user)(viewer, is_active=False)
    await assert_closed(comm, consumers.CLOSE_UNAUTHENTICATED, "unauthenticated")


async def test_a_session_socket_stays_open_while_the_session_is_good(camera, viewer):
    comm, _client = await session_socket(viewer)
    await subscribe(comm, camera)
    assert await comm.receive_nothing(timeout=1)  # five rechecks
    await assert_still_open(comm)
    await comm.disconnect()


# -- token sockets ---------------------------------------------------------------------------------------
async def test_a_token_socket_closes_when_its_token_expires(viewer):
    token = AccessToken.for_user(viewer)
    token.set_exp(lifetime=timedelta(seconds=2))
    comm = await token_socket(token=token)
    await assert_still_open(comm)
    await assert_closed(comm, consumers.CLOSE_UNAUTHENTICATED, "unauthenticated")


async def test_a_token_socket_closes_on_logout_everywhere(viewer):
    comm = await token_socket(viewer)
    await assert_still_open(comm)
    await sync_to_async(tokens_revoke)(user=viewer, everywhere=True)
    await assert_closed(comm, consumers.CLOSE_UNAUTHENTICATED, "unauthenticated")


async def test_a_token_socket_closes_when_its_user_is_deactivated(viewer):
    comm = await token_socket(viewer)
    await assert_still_open(comm)
    await sync_to_async(update_user)(viewer, is_active=False)
    await assert_closed(comm, consumers.CLOSE_UNAUTHENTICATED, "unauthenticated")


# -- subscriptions follow the user as reloaded ---------------------------------------------------------------
async def test_staff_demoted_loses_cameras_it_had_as_staff(camera):
    staff = await sync_to_async(UserFactory)(is_staff=True)
    comm = await token_socket(staff)
    await subscribe(comm, camera)
    await sync_to_async(update_user)(staff, is_staff=False)
    await assert_dropped(comm, camera)
    await assert_still_open(comm)  # still signed in: only the camera is gone
    await comm.disconnect()


async def test_a_removed_global_permission_drops_the_subscription(camera):
    user = await sync_to_async(UserFactory)()
    perm = await sync_to_async(Permission.objects.get)(codename="view_camera", content_type__app_label="cameras")
    await sync_to_async(user.user_permissions.add)(perm)
    comm = await token_socket(user)
    await subscribe(comm, camera)
    await sync_to_async(user.user_permissions.remove)(perm)
    await assert_dropped(comm, camera)
    await comm.disconnect()


async def test_permissions_changed_rechecks_at_once_with_the_user_reloaded(camera, settings):
    settings.WS_PERMISSION_RECHECK_SECONDS = 3600
    user = await sync_to_async(UserFactory)()
    await sync_to_async(assign_perm)("cameras.view_camera", user)  # global
    comm = await token_socket(user)
    await subscribe(comm, camera)
    await sync_to_async(user.user_permissions.clear)()
    await get_channel_layer().group_send(user_group(user.pk), {"type": "permissions.changed"})
    await assert_dropped(comm, camera)
    await comm.disconnect()


# -- a recheck that fails closes the socket (never fails open) -------------------------------------------
async def test_a_database_error_during_the_recheck_closes_the_socket(camera, viewer, monkeypatch):
    comm, _client = await session_socket(viewer)
    await subscribe(comm, camera)

    def database_down(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(consumers, "camera_ids_for_user", database_down)
    await assert_closed(comm, consumers.CLOSE_RECHECK_FAILED, "server_error")


async def test_a_redis_error_during_the_recheck_closes_the_socket(viewer, settings):
    comm = await token_socket(viewer)
    await assert_still_open(comm)
    # The revocation list lives in the cache (Redis): point it at a port where nothing listens.
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    await assert_closed(comm, consumers.CLOSE_RECHECK_FAILED, "server_error")


# -- Redis failing while a socket joins its groups: closed (4503), never left open and silent ----------------
# After a Redis restart a socket that could not join its user's group, or a camera's, would stay open
# receiving nothing (the client believes it is subscribed): it is closed so that the client connects and
# subscribes again (docs/websocket.md, close codes).
class _FailingGroupAdd:
    """The real channel layer, whose group_add fails for the groups ``failing(group)`` names."""

    def __init__(self, layer, failing):
        self.layer, self.failing = layer, failing

    def __getattr__(self, name):
        return getattr(self.layer, name)

    async def group_add(self, group, channel):
        if self.failing(group):
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return await self.layer.group_add(group, channel)


@pytest.fixture
def failing_group_add(monkeypatch):
    import channels.consumer

    def install(failing):
        real = get_channel_layer()
        monkeypatch.setattr(channels.consumer, "get_channel_layer", lambda alias: _FailingGroupAdd(real, failing))
    return install


async def test_a_socket_that_cannot_join_its_user_group_is_closed(viewer, failing_group_add):
    failing_group_add(lambda group: group == user_group(viewer.pk))
    comm = WebsocketCommunicator(application, f"/ws/stream/?token={AccessToken.for_user(viewer)}")
    connected, _ = await comm.connect(timeout=5)
    assert connected  # accepted first: the close code and its reason reach the client
    await assert_closed(comm, consumers.CLOSE_RECHECK_FAILED, "server_error")


async def test_a_subscription_that_cannot_join_the_camera_group_closes_the_socket(camera, viewer, failing_group_add):
    from cameras.groups import camera_group

    failing_group_add(lambda group: group == camera_group(camera.id))
    comm = await token_socket(viewer)
    await comm.send_json_to({"action": "subscribe", "camera": camera.id, "frames": False})
    await assert_closed(comm, consumers.CLOSE_RECHECK_FAILED, "server_error")


async def test_a_token_that_cannot_be_checked_is_refused_without_a_traceback(viewer, settings, caplog):
    # The revocation list (the cache, Redis) is unreachable while the socket connects: refused, a warning.
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    comm = WebsocketCommunicator(application, f"/ws/stream/?token={AccessToken.for_user(viewer)}")
    connected, code = await comm.connect(timeout=5)
    assert not connected and code == consumers.CLOSE_UNAUTHENTICATED
    assert "token check failed" in caplog.text and "Traceback" not in caplog.text
