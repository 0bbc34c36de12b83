from pathlib import Path

import pytest
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from tests.factories import CameraFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"


def dataset(relative: str) -> Path:
    """A file of ../shared/datasets, or a skip saying why the test cannot run."""
    path = DATASETS / relative
    if not path.exists():
        pytest.skip(f"real footage {path} is not present (../shared/datasets is absent in this clone)")
    return path


def clear_cache() -> None:
    """Delete this test run's cache keys (its KEY_PREFIX) only: ``cache.clear()`` would FLUSHDB the Redis
    database every test run on the machine shares, wiping another run's throttle counters and token
    revocations in the middle of its tests."""
    from django.conf import settings
    from django.core.cache import cache

    prefix = settings.CACHES["default"].get("KEY_PREFIX") or ""
    if not prefix:
        cache.clear()
        return
    client = cache._cache.get_client(write=True)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start:start + 500])


@pytest.fixture(autouse=True)
def _isolated_cache():
    """Throttle counters and other cached state never leak between tests."""
    clear_cache()
    yield
    clear_cache()


@pytest.fixture(autouse=True)
def _site_settings_fresh():
    """The site settings row is read again in each test (a rolled-back edit never lingers)."""
    from siteconfig.selectors import site_settings_clear_cache

    site_settings_clear_cache()
    yield
    site_settings_clear_cache()


@pytest.fixture
def site(db):
    """site(**fields): change the site settings as an administrator would (validated, saved)."""
    from siteconfig.services import site_settings_update

    return site_settings_update


@pytest.fixture
def server():
    """A real local OpenAI-compatible chat-completions server (tests/chat_server.py), closed after the test."""
    from tests.chat_server import ChatServer

    s = ChatServer()
    yield s
    s.close()


@pytest.fixture
def camera(db):
    return CameraFactory()


@pytest.fixture
def owner(db, camera):
    user = UserFactory(username="owner")
    for perm in ("view_camera", "operate_camera", "change_camera", "delete_camera"):
        assign_perm(perm, user, camera)
    return user


@pytest.fixture
def viewer(db, camera):
    user = UserFactory(username="viewer")
    assign_perm("view_camera", user, camera)
    return user


@pytest.fixture
def outsider(db):
    return UserFactory(username="outsider")


@pytest.fixture
def staff(db):
    return UserFactory(username="staff", is_staff=True)


def jwt_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def api_as():
    """api_as(user) -> an APIClient authenticated with a real JWT access token."""
    return jwt_client


@pytest.fixture(autouse=True)
def dispatched(monkeypatch):
    """Camera runs queued by the code under test, recorded instead of sent to a broker.

    End-to-end tests run real workers in subprocesses, which this does not touch.
    """
    from cameras import dispatch

    queued: list[int] = []
    monkeypatch.setattr(dispatch, "camera_run", lambda camera_id: queued.append(camera_id))
    # Learning jobs likewise (tests that run them call the task function directly).
    monkeypatch.setattr(dispatch, "detector_learn", lambda job_id: None)
    return queued


@pytest.fixture(autouse=True)
def default_queue_at_once(request, monkeypatch):
    """Tasks that the apps queue for each other after a commit (alert routing, false-alarm learning) run at
    once in this process, as a default-queue worker would run them. Tests that start real workers (marked
    slow) leave them to the broker.
    """
    if request.node.get_closest_marker("slow"):
        return
    from alerts.tasks import alerts_route
    from events.tasks import events_false_alarm_learn

    for task in (alerts_route, events_false_alarm_learn):
        monkeypatch.setattr(task, "delay", lambda *args, task=task: task.apply(args=args).get())
