"""The zone editor (issue 18) in Debian's Chromium against a real daphne and Redis: a user who may change the
camera draws a polygon with the mouse over the camera's latest picture, names it, saves it (the camera's zones
in the database hold it, validated) and sees it over the live view; drags a point, adds a line with a direction;
a bad zone shows the server's validation error next to the editor and nothing is stored. The admin's widget
draws and saves the same way; the event page draws the zones over the snapshot and the clip; the camera
page's facts follow the camera without a reload, and the frame-rate choice says the camera's limit."""

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.conf import settings as django_settings
from guardian.shortcuts import assign_perm

from cameras import live
from cameras.models import Camera
from tests.factories import CameraFactory, EventFactory, UserFactory
from tests.pages.test_browser import JS_ERRORS, sign_in
from tests.system.processes import process_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def picture(camera, width=640, height=480):
    """The camera's latest picture in Redis (what the worker keeps while someone asks for it)."""
    image = np.full((height, width, 3), 70, np.uint8)
    cv2.rectangle(image, (width // 4, height // 4), (width // 2, height // 2), (200, 200, 200), -1)
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    live.picture_store(live.client(), camera.pk, jpeg, at=time.time(), width=width, height=height, ttl=900)


def stage_point(page):
    """The stage's box, and where a fraction of the frame is on the screen now (after any scrolling)."""
    stage = page.locator("[data-zone-stage]")

    def at(fx, fy):
        stage.evaluate("e => e.scrollIntoView({block: 'center'})")  # clicking the buttons scrolls the page
        box = stage.bounding_box()
        return box["x"] + fx * box["width"], box["y"] + fy * box["height"]
    at(0, 0)
    return stage.bounding_box(), at


def saved(page, before: str = ""):
    page.wait_for_function("(before) => { const s = document.querySelector('[data-zone-status]').textContent;"
                           " return s.startsWith('Zones saved') && s !== before; }", arg=before, timeout=10_000)
    return page.inner_text("[data-zone-status]")


def close(a, b, tolerance=0.01):
    return all(abs(x - y) <= tolerance for p, q in zip(a, b) for x, y in zip(p, q)) and len(a) == len(b)


def test_draw_save_and_show_zones(processes, browser, tmp_path, settings):
    JS_ERRORS.clear()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    carol = UserFactory(username="carol")
    camera = CameraFactory(name="Yard", analysis_fps=5)
    for perm in ("view_camera", "change_camera"):
        assign_perm(perm, carol, camera)
    picture(camera)
    env = process_env(tmp_path)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    base = f"http://127.0.0.1:{processes.daphne(env)}"

    page = sign_in(browser, base, "carol")
    page.goto(f"{base}/cameras/{camera.pk}/")
    page.wait_for_selector("[data-zone-stage].zone-has-picture")
    box, at = stage_point(page)
    assert abs(box["width"] / box["height"] - 4 / 3) < 0.02  # the picture's shape, not the page's 16:9

    # -- a polygon, with the mouse: three clicks and a double-click -------------------------------------
    page.click("[data-zone-add=polygon]")
    for fx, fy in [(0.2, 0.2), (0.6, 0.2), (0.6, 0.7)]:
        page.mouse.click(*at(fx, fy))
    page.mouse.dblclick(*at(0.2, 0.7))
    page.fill('[data-field="name"]', "Fence")
    assert page.input_value('[data-field="kind"]') == "forbidden"
    assert "unsaved" in page.inner_text("[data-zone-status]").lower()
    page.click("[data-zone-submit]")
    status = saved(page)
    camera.refresh_from_db()
    (zone,) = camera.zones
    assert zone["name"] == "Fence" and zone["kind"] == "forbidden"
    assert close(zone["points"], [[0.2, 0.2], [0.6, 0.2], [0.6, 0.7], [0.2, 0.7]]), zone["points"]
    # ... and it is drawn over the live view at once
    page.wait_for_selector('#live-zones g.zone-forbidden[data-zone="Fence"] polygon', state="attached")

    # -- drag a point; add a line with a direction and classes -------------------------------------------
    page.mouse.click(*at(0.4, 0.45))  # selects the zone: its points get handles
    page.wait_for_selector(".zone-handle", state="attached")
    page.mouse.move(*at(0.2, 0.2))
    page.mouse.down()
    page.mouse.move(*at(0.15, 0.12), steps=5)
    page.mouse.move(*at(0.1, 0.1), steps=5)
    page.mouse.up()
    page.click("[data-zone-add=line]")
    page.mouse.click(*at(0.8, 0.1))
    page.mouse.click(*at(0.8, 0.9))
    page.fill('[data-field="name"]', "Gate")
    assert page.input_value('[data-field="kind"]') == "line"
    page.select_option('[data-field="direction"]', "left")
    page.fill('[data-field="classes"]', "person, car")
    page.click("[data-zone-submit]")
    saved(page, status)
    camera.refresh_from_db()
    fence, gate = camera.zones
    assert close(fence["points"][:1], [[0.1, 0.1]]) and close(fence["points"][1:], [[0.6, 0.2], [0.6, 0.7], [0.2, 0.7]])
    assert gate["name"] == "Gate" and gate["kind"] == "line" and gate["direction"] == "left"
    assert gate["classes"] == ["person", "car"] and close(gate["points"], [[0.8, 0.1], [0.8, 0.9]])
    page.wait_for_selector('#live-zones g.zone-line[data-zone="Gate"] line', state="attached")
    stored = camera.zones

    # -- bad zones: the server's error, next to the editor; nothing stored --------------------------------
    page.click('.zone-list button:has-text("Fence")')
    page.select_option('[data-field="kind"]', "loiter")
    page.fill('[data-field="loiter_seconds"]', "0")
    page.click("[data-zone-submit]")
    error = page.wait_for_selector("[data-zone-error]:not(:empty)")
    assert "zones[0] 'Fence': loiter_seconds must be a number of seconds, above 0" in error.inner_text()
    page.click(".zone-json summary")
    page.fill(".zone-json textarea", '[{"name": "Two", "kind": "forbidden", "points": [[0.1, 0.1], [0.5, 0.5]]}]')
    page.click("[data-zone-submit]")
    page.wait_for_function("document.querySelector('[data-zone-error]').textContent.includes('has 2 point(s)')")
    assert "zones[0] 'Two': has 2 point(s); a polygon needs 3 to 50" in page.inner_text("[data-zone-error]")
    camera.refresh_from_db()
    assert camera.zones == stored

    # -- a fresh page: the live view draws the stored zones; the fps note; the facts follow the camera --------
    page.reload()
    page.wait_for_selector("#live-zones g.zone", state="attached")
    assert page.locator("#live-zones g.zone").count() == 2
    assert page.is_hidden("#live-fps-note")
    page.select_option("#live-fps", "30")
    assert page.inner_text("#live-fps-note") == "This camera is analysed at 5 fps: 30 fps shows at most 5."
    Camera.objects.filter(pk=camera.pk).update(state="running", measured_fps=3.0, last_error="")
    page.wait_for_function("document.querySelector('[data-fact=measured_fps]').textContent === '3.0'", timeout=15_000)
    assert page.inner_text("[data-fact=state]") == "Running"
    assert page.get_attribute("#camera-state", "data-state") == "running"
    assert page.inner_text("#live-fps-note") == "This camera's source delivers 3 fps: 30 fps shows at most 3."

    # -- the event page: the camera's zones over the snapshot and over the clip ----------------------------
    media = Path(django_settings.MEDIA_ROOT) / "events"
    media.mkdir(parents=True, exist_ok=True)
    snapshot = np.full((360, 640, 3), 50, np.uint8)
    (media / f"zones-{camera.pk}.jpg").write_bytes(cv2.imencode(".jpg", snapshot)[1].tobytes())
    (media / f"zones-{camera.pk}.webm").write_bytes(b"\x1aE\xdf\xa3not really a clip")
    event = EventFactory(camera=camera, snapshot=f"events/zones-{camera.pk}.jpg", clip=f"events/zones-{camera.pk}.webm")
    page.goto(f"{base}/events/{event.pk}/")
    page.wait_for_selector('#snapshot-zones g.zone-forbidden[data-zone="Fence"] polygon', state="attached")
    assert page.locator("#snapshot-zones g.zone").count() == 2
    assert page.locator('#clip-zones g.zone-line[data-zone="Gate"]').count() == 1
    assert page.get_attribute("#snapshot-zones", "viewBox") == "0 0 640 360"
    assert not JS_ERRORS, JS_ERRORS


def test_the_admin_widget_draws_and_saves(processes, browser, tmp_path, settings):
    JS_ERRORS.clear()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    UserFactory(username="root", is_staff=True, is_superuser=True)
    camera = CameraFactory(name="Gatehouse", zones=[
        {"name": "Fence", "kind": "forbidden", "points": [[0.6, 0.2], [0.95, 0.2], [0.95, 0.8], [0.6, 0.8]]}])
    picture(camera, 640, 360)
    env = process_env(tmp_path)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    base = f"http://127.0.0.1:{processes.daphne(env)}"

    page = sign_in(browser, base, "root")
    page.goto(f"{base}/admin/cameras/camera/{camera.pk}/change/")
    page.wait_for_selector("[data-zone-stage].zone-has-picture")
    assert page.locator('[data-zone-stage] g.zone[data-zone="Fence"]').count() == 1
    _box, at = stage_point(page)
    page.click("[data-zone-add=line]")
    page.mouse.click(*at(0.3, 0.2))
    page.mouse.click(*at(0.3, 0.8))
    page.fill('[data-field="name"]', "Gate")
    assert '"Gate"' in page.input_value("textarea[name=zones]")  # the field's value follows the drawing
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    camera.refresh_from_db()
    assert [z["name"] for z in camera.zones] == ["Fence", "Gate"]
    assert close(camera.zones[1]["points"], [[0.3, 0.2], [0.3, 0.8]]) and camera.zones[1]["direction"] == "both"
    assert not JS_ERRORS, JS_ERRORS
