"""The event page's score curve in Debian's Chromium: an event that has just opened has one scored
point, drawn as a dot in a 10 s window (the chart was empty: uPlot draws nothing over a zero-width
range), and the curve grows from the event's updates on the WebSocket."""


import cv2
import numpy as np
import pytest
from django.utils import timezone

from tests.factories import CameraFactory, EventFactory, UserFactory
from tests.pages.test_browser import PASSWORD

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(live_server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    assert not errors


def test_an_event_that_has_just_opened_shows_its_one_scored_point(live_server, page):
    from guardian.shortcuts import assign_perm

    user = UserFactory()
    camera = CameraFactory(threshold=0.5)
    assign_perm("view_camera", user, camera)
    event = EventFactory(camera=camera, ended_at=None, started_at=timezone.now(), peak_score=0.6964,
                         details={"score_curve": [[0.0, 0.6964]], "threshold": 0.5})
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/events/{event.pk}/")
    page.wait_for_selector("#chart-event canvas")
    page.mouse.move(5, 5)  # away from the chart: its cursor marker is not the point
    # The dot itself, in the score's colour (#79b8ff), drawn on the chart's canvas.
    png = page.locator("#chart-event canvas").screenshot()
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    score_blue = np.all(np.abs(image.astype(int) - (255, 184, 121)) < 40, axis=2)  # BGR
    assert score_blue.sum() >= 12, "the single scored point is not drawn"
    box = page.locator("#chart-event .u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # the point lies in the middle
    legend = page.inner_text("#chart-event .u-legend")
    assert "0.696" in legend, legend
