"""What is wrong with the camera itself, on the dashboard tile (issue 20), in Debian's Chromium against a real
daphne and Redis: a camera-health event (covered, moved, dark...) puts a badge with its condition on the
camera's tile as it happens, the badge links to the event, a page opened meanwhile shows it from the server,
and the event's end takes it off. Another camera's tile stays clean."""

import time
import uuid

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from events.services import event_records_store
from tests.factories import CameraFactory, UserFactory
from tests.pages.test_alert_toasts import in_thread
from tests.pages.test_browser import JS_ERRORS, sign_in
from tests.system.processes import process_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BADGE = '[data-camera="{camera}"] [data-role="conditions"] .badge.condition'


def covered(camera) -> dict:
    """The record the worker emits when a camera is covered (inference/e2e.py, camera health events)."""
    return {"id": str(uuid.uuid4()), "camera_id": camera.pk, "started_at": timezone.now().isoformat(),
            "ended_at": None, "severity": "high", "peak_score": 0.0, "mean_score": 0.0,
            "description": "Camera view covered: 83% of the image lost its texture",
            "decision": {"severity": "high", "actions": ["record", "notify", "alert_now"], "policy": "system",
                         "reasons": ["camera view covered"]},
            "snapshot": "", "details": {"kind": "camera_health", "condition": "covered", "covered": 0.83}}


def test_a_covered_camera_shows_on_its_tile_until_it_is_uncovered(processes, browser, tmp_path, settings):
    JS_ERRORS.clear()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    alice = UserFactory(username="alice")
    gate, yard = CameraFactory(name="North gate"), CameraFactory(name="Yard")
    for camera in (gate, yard):
        assign_perm("view_camera", alice, camera)
    env = process_env(tmp_path)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    base = f"http://127.0.0.1:{processes.daphne(env)}"

    dash = sign_in(browser, base, "alice")
    dash.wait_for_function("window.Surveillance && document.querySelectorAll('[data-camera]').length === 2")
    time.sleep(1.0)  # subscribed to both cameras
    assert dash.locator(BADGE.format(camera=gate.pk)).count() == 0

    record = covered(gate)
    in_thread(event_records_store, [record])
    badge = dash.wait_for_selector(BADGE.format(camera=gate.pk), timeout=5_000)
    assert badge.inner_text() == "Covered"
    assert badge.get_attribute("href") == f"/events/{record['id']}/"
    assert dash.locator(BADGE.format(camera=yard.pk)).count() == 0

    fresh = dash.context.new_page()  # a page opened while it lasts: from the server
    fresh.goto(f"{base}/")
    assert fresh.inner_text(BADGE.format(camera=gate.pk)) == "Covered"
    fresh.close()

    in_thread(event_records_store, [{**record, "ended_at": timezone.now().isoformat(),
                                     "description": "Camera view no longer covered (lasted 12 s)"}])
    dash.wait_for_selector(BADGE.format(camera=gate.pk), state="detached", timeout=5_000)
    dash.reload()
    dash.wait_for_selector('[data-camera]')
    assert dash.locator(BADGE.format(camera=gate.pk)).count() == 0
    assert not JS_ERRORS, JS_ERRORS
