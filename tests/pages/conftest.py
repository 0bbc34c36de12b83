"""Helpers for the operator page tests."""

from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from tests.factories import CameraFactory, EventFactory
from tests.system.processes import Processes

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@contextmanager
def chromium(monkeypatch, args=CHROMIUM_ARGS):
    """Debian's Chromium driven by Playwright; the test skips, saying why, where it is missing."""
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are plain sync code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser(monkeypatch):
    with chromium(monkeypatch) as launched:
        yield launched


@pytest.fixture
def processes():
    """daphne, Celery workers and beat as their own processes (tests/system/processes.py), stopped after."""
    procs = Processes()
    yield procs
    procs.stop()


def grant(user, camera, *perms):
    for perm in perms or ("view_camera",):
        assign_perm(perm, user, camera)


@pytest.fixture
def other_camera(db):
    """A camera none of the standard users may see: its name must never show up for them."""
    return CameraFactory(name="Secret vault camera")


@pytest.fixture
def secret_event(other_camera):
    return EventFactory(camera=other_camera, description="Hidden event in the vault")


def event_with_details(camera, **kwargs):
    details = {
        "regions": [[100, 50, 80, 120]], "frame_size": [640, 360], "threshold": 0.5,
        "score_curve": [[0.0, 0.55], [0.2, 0.91], [0.4, 0.7], [3.4, 0.1]],
    }
    return EventFactory(camera=camera, details=details, **kwargs)


def many(camera_count, events_per_camera, user, *perms):
    """camera_count cameras granted to user, each with events_per_camera events over the last hours."""
    cameras = [CameraFactory() for _ in range(camera_count)]
    now = timezone.now()
    for i, camera in enumerate(cameras):
        grant(user, camera, *(perms or ("view_camera",)))
        for j in range(events_per_camera):
            event_with_details(camera, started_at=now - timedelta(minutes=5 * j + i))
    return cameras
