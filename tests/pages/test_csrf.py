"""Page forms are protected by CSRF: a POST without the page's token is refused and changes nothing."""

import re

import pytest
from django.test import Client

from events.models import AnomalyEvent
from tests.factories import EventFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    return client


def token_from(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def test_acknowledging_without_the_token_is_refused(browser, camera):
    event = EventFactory(camera=camera)
    response = browser.post(f"/events/{event.pk}/acknowledge/")
    assert response.status_code == 403
    assert AnomalyEvent.objects.get(pk=event.pk).status == "new"


def test_acknowledging_with_the_pages_token_works(browser, camera):
    event = EventFactory(camera=camera)
    page = browser.get(f"/events/{event.pk}/").content.decode()
    response = browser.post(f"/events/{event.pk}/acknowledge/", {"csrfmiddlewaretoken": token_from(page)})
    assert response.status_code in (200, 302)
    assert AnomalyEvent.objects.get(pk=event.pk).status == "acknowledged"


@pytest.mark.parametrize("path", ["/cameras/{camera}/start/", "/cameras/{camera}/stop/", "/cameras/{camera}/learn/",
                                  "/events/acknowledge/", "/accounts/logout/"])
def test_every_page_form_needs_the_token(browser, camera, path):
    assert browser.post(path.format(camera=camera.pk), {"minutes": 1}).status_code == 403


def test_the_api_with_a_jwt_needs_no_csrf_token(api_as, owner, camera):
    event = EventFactory(camera=camera)
    client = api_as(owner)
    client.enforce_csrf_checks = True
    assert client.post(f"/api/v1/events/{event.pk}/acknowledge/").status_code == 200
