"""Every page refuses a user without access, and lists never leak other cameras' names or events."""

import pytest
from django.urls import reverse

from tests.factories import EventFactory

pytestmark = pytest.mark.django_db

PAGES = ["dashboard", "event-list-page", "my-alerts", "preferences"]


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_is_sent_to_the_login_page(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_anonymous_is_sent_to_login_from_object_pages_and_files(client, camera):
    event = EventFactory(camera=camera)
    for url in [reverse("camera-page", args=[camera.pk]), reverse("event-page", args=[event.pk]),
                reverse("event-fragment", args=[event.pk, "actions"]), reverse("event-clip", args=[event.pk]),
                reverse("event-snapshot", args=[event.pk])]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url


def test_outsider_is_refused_camera_and_event_pages(client, camera, outsider):
    event = EventFactory(camera=camera)
    client.force_login(outsider)
    assert client.get(reverse("camera-page", args=[camera.pk])).status_code == 403
    assert client.get(reverse("camera-page", args=[999999])).status_code == 403  # same answer: no existence leak
    assert client.get(reverse("event-page", args=[event.pk])).status_code == 403
    for kind in ("row", "tile", "actions", "analysis"):
        assert client.get(reverse("event-fragment", args=[event.pk, kind])).status_code == 403
    assert client.get(reverse("event-clip", args=[event.pk])).status_code == 404
    assert client.post(reverse("event-page-acknowledge", args=[event.pk])).status_code == 403
    assert client.post(reverse("camera-page-start", args=[camera.pk])).status_code == 403
    assert client.post(reverse("camera-page-zones", args=[camera.pk]), {"zones": "[]"}).status_code == 403
    event.refresh_from_db()
    assert event.status == "new"


def test_lists_never_show_other_cameras_or_their_events(client, camera, viewer, secret_event):
    mine = EventFactory(camera=camera, description="My own event")
    client.force_login(viewer)
    for name in ("dashboard", "event-list-page", "my-alerts"):
        html = client.get(reverse(name)).content.decode()
        assert "Secret vault camera" not in html and "Hidden event in the vault" not in html, name
        assert str(secret_event.pk) not in html
    assert str(mine.pk) in client.get(reverse("event-list-page")).content.decode()
    # a filter naming another camera finds nothing (and its name is not among the choices)
    html = client.get(reverse("event-list-page"), {"camera": secret_event.camera_id}).content.decode()
    assert "Hidden event in the vault" not in html and "Secret vault camera" not in html


def test_viewer_sees_no_action_buttons_and_may_not_act(client, camera, viewer):
    event = EventFactory(camera=camera)
    client.force_login(viewer)
    html = client.get(reverse("event-page", args=[event.pk])).content.decode()
    assert 'data-action="acknowledge"' not in html and 'data-action="resolve"' not in html
    assert 'data-action="false-alarm"' not in html
    camera_html = client.get(reverse("camera-page", args=[camera.pk])).content.decode()
    assert 'data-action="start"' not in camera_html and 'data-action="stop"' not in camera_html
    assert "data-zone-editor" not in camera_html  # changing the zones is for those who may change the camera
    assert client.post(reverse("camera-page-zones", args=[camera.pk]), {"zones": "[]"}).status_code == 403
    list_html = client.get(reverse("event-list-page")).content.decode()
    assert 'type="checkbox" name="event"' not in list_html and 'data-action="bulk-acknowledge"' not in list_html
    assert client.post(reverse("event-page-acknowledge", args=[event.pk])).status_code == 403
    assert client.post(reverse("event-page-resolve", args=[event.pk]), {"false_alarm": "1"}).status_code == 403
    assert client.post(reverse("camera-page-stop", args=[camera.pk])).status_code == 403
    client.post(reverse("event-bulk-acknowledge"), {"event": [str(event.pk)]})
    event.refresh_from_db()
    assert event.status == "new"


def test_pages_link_to_the_api_docs_and_staff_to_the_admin(client, camera, owner, staff):
    client.force_login(owner)
    html = client.get(reverse("dashboard")).content.decode()
    assert reverse("api-docs") in html and reverse("admin:index") not in html
    client.force_login(staff)
    event = EventFactory(camera=camera)
    html = client.get(reverse("event-page", args=[event.pk])).content.decode()
    assert reverse("admin:index") in html
    assert reverse("admin:events_anomalyevent_change", args=[event.pk]) in html
    assert reverse("admin:cameras_camera_change", args=[camera.pk]) in client.get(
        reverse("camera-page", args=[camera.pk])).content.decode()
    # and back: the admin's "view on site" of an event opens its page
    assert event.get_absolute_url() == reverse("event-page", args=[event.pk])
    admin_html = client.get(reverse("admin:index")).content.decode()
    assert 'href="/"' in admin_html  # "View site" -> the dashboard


def test_refusals_and_missing_pages_are_the_product_s_own_pages(client, camera, outsider, admin_client):
    event = EventFactory(camera=camera)
    client.force_login(outsider)
    refused = client.get(reverse("event-page", args=[event.pk]))
    html = refused.content.decode()
    assert refused.status_code == 403
    assert "You may not see this page" in html and "No such event, or you may not view its camera." in html
    assert 'class="top"' in html and reverse("dashboard") in html  # the product's header and a way back
    missing = client.get("/no-such-page/")
    assert missing.status_code == 404 and "Nothing here" in missing.content.decode()
    # Events come from the cameras' workers: the admin has no form to type one in.
    assert admin_client.get("/admin/events/anomalyevent/add/").status_code == 403
