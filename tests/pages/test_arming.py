"""Arming on the dashboard (docs/alerts.md, "Arming"), in Debian's Chromium against a real daphne and Redis: an
operator switches a camera to "disarmed" with the tile's switch and sees its badge change; a viewer's open
dashboard follows the change live (the `arming` push) and shows the mode but no switch."""

import time

import pytest
from guardian.shortcuts import assign_perm

from arming.models import ArmingState
from audit.models import AuditEntry
from tests.factories import CameraFactory, UserFactory
from tests.pages.test_browser import JS_ERRORS, sign_in
from tests.system.processes import process_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BADGE = '[data-camera="{camera}"] [data-role="arming-badge"]'
SELECT = '[data-camera="{camera}"] [data-role="arming-select"]'


def test_an_operator_disarms_a_camera_and_a_viewer_sees_the_mode_but_no_switch(processes, browser, tmp_path,
                                                                                settings):
    JS_ERRORS.clear()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    gate, yard = CameraFactory(name="North gate"), CameraFactory(name="Yard")
    for camera in (gate, yard):
        assign_perm("view_camera", alice, camera)
        assign_perm("operate_camera", alice, camera)
        assign_perm("view_camera", bob, camera)
    env = process_env(tmp_path)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    base = f"http://127.0.0.1:{processes.daphne(env)}"

    viewer = sign_in(browser, base, "bob")
    viewer.wait_for_function("window.Surveillance && document.querySelectorAll('[data-camera]').length === 2")
    assert viewer.inner_text(BADGE.format(camera=gate.pk)) == "Armed"
    assert viewer.locator(SELECT.format(camera=gate.pk)).count() == 0  # no operate_camera: no switch

    operator = sign_in(browser, base, "alice")
    operator.wait_for_function("window.Surveillance && document.querySelectorAll('[data-camera]').length === 2")
    time.sleep(1.0)  # both pages subscribed to both cameras
    assert operator.inner_text(BADGE.format(camera=gate.pk)) == "Armed"
    operator.select_option(SELECT.format(camera=gate.pk), "disarmed")
    operator.wait_for_function(
        f"document.querySelector('{BADGE.format(camera=gate.pk)}').textContent.trim() === 'Disarmed'",
        timeout=5_000)
    assert "arming-disarmed" in operator.get_attribute(BADGE.format(camera=gate.pk), "class")
    assert operator.get_attribute(BADGE.format(camera=gate.pk), "title") == "Set on this camera by alice"
    assert operator.inner_text(BADGE.format(camera=yard.pk)) == "Armed"

    # The viewer's open page follows at once (the camera.arming push), still without a switch.
    viewer.wait_for_function(
        f"document.querySelector('{BADGE.format(camera=gate.pk)}').textContent.trim() === 'Disarmed'",
        timeout=5_000)
    assert viewer.locator(SELECT.format(camera=gate.pk)).count() == 0

    state = ArmingState.objects.get()
    assert (state.camera_id, state.mode, state.set_by) == (gate.pk, "disarmed", alice)
    entry = AuditEntry.objects.get(action="arming.set")
    assert entry.details == {"scope": "camera", "old": "auto", "new": "disarmed"} and entry.actor == alice

    operator.reload()  # from the server now
    operator.wait_for_selector(BADGE.format(camera=gate.pk))
    assert operator.inner_text(BADGE.format(camera=gate.pk)) == "Disarmed"
    assert operator.eval_on_selector(SELECT.format(camera=gate.pk), "s => s.value") == "disarmed"
    assert not JS_ERRORS, JS_ERRORS
