"""Zones on the pages (issue 18): the camera page's editor saves through the camera update service (validated,
audited), for those who may change the camera only; the admin's zones widget; the zones drawn over the live
view and the event page; the demo camera's forbidden zone; the camera page's fps note and live facts."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from guardian.shortcuts import assign_perm

from audit.models import AuditEntry
from cameras.models import Camera
from cameras.widgets import ZonesWidget, zones_json
from tests.factories import CameraFactory, EventFactory, UserFactory, role_users

pytestmark = pytest.mark.django_db

FENCE = {"name": "Fence", "kind": "forbidden", "points": [[0.6, 0.2], [0.95, 0.2], [0.95, 0.8], [0.6, 0.8]]}
GATE = {"name": "Gate", "kind": "line", "points": [[0.5, 0.1], [0.5, 0.9]], "direction": "left",
        "classes": ["person"]}


@pytest.fixture
def camera():
    return CameraFactory(name="Yard")


@pytest.fixture
def users(camera):
    users = role_users(camera)
    changer = UserFactory(username="changer")
    for perm in ("view_camera", "change_camera"):
        assign_perm(perm, changer, camera)
    users["changer"] = changer
    return users


def page_client(client, user):
    client.force_login(user)
    return client


def save(client, camera, zones, fetch=True):
    text = zones if isinstance(zones, str) else json.dumps(zones)
    headers = {"HTTP_X_REQUESTED_WITH": "fetch", "HTTP_ACCEPT": "application/json"} if fetch else {}
    return client.post(reverse("camera-page-zones", args=[camera.pk]), {"zones": text}, **headers)


@pytest.mark.parametrize("role,editor", [("viewer", False), ("operator", False), ("changer", True), ("staff", True)])
def test_the_editor_is_for_those_who_may_change_the_camera(client, camera, users, role, editor):
    camera.zones = [FENCE]
    camera.save(update_fields=["zones"])
    html = page_client(client, users[role]).get(reverse("camera-page", args=[camera.pk])).content.decode()
    assert ("data-zone-editor" in html) is editor
    assert (reverse("camera-page-zones", args=[camera.pk]) in html) is editor
    # Everyone who may view the camera gets its zones for the live view, and zones.js to draw them.
    assert 'id="camera-zones"' in html and '"Fence"' in html and "js/zones.js" in html
    if editor:
        assert reverse("camera-picture", args=[camera.pk]) in html  # drawn over the latest picture


@pytest.mark.parametrize("role", ["outsider", "viewer", "operator"])
def test_only_those_who_may_change_the_camera_save_zones(client, camera, users, role):
    response = save(page_client(client, users[role]), camera, [FENCE])
    assert response.status_code == 403
    camera.refresh_from_db()
    assert camera.zones == []


def test_saving_goes_through_the_update_service(client, camera, users):
    response = save(page_client(client, users["changer"]), camera, [FENCE, GATE])
    assert response.status_code == 200, response.content
    body = response.json()
    assert [z["name"] for z in body["zones"]] == ["Fence", "Gate"] and "saved" in body["message"].lower()
    camera.refresh_from_db()
    assert camera.zones == [FENCE, GATE]
    entry = AuditEntry.objects.filter(action="camera.update").latest("id")
    assert entry.changes == ["zones"] and entry.actor == users["changer"]
    # The worker's config carries them (a running camera restarts when its runtime config changes).
    assert camera.runtime_config()["zones"] == [FENCE, GATE]


@pytest.mark.parametrize("zones,problem", [
    ([{"name": "x", "kind": "forbidden", "points": [[0.1, 0.1], [0.5, 0.5]]}],
     "zones[0] 'x': has 2 point(s); a polygon needs 3 to 50"),
    ([FENCE, {"name": "y", "kind": "loiter", "points": [[0.1, 0.1], [1.2, 0.5], [0.2, 0.9]]}],
     "zones[1] 'y': point 1 [1.2, 0.5] is out of range"),
    ([{"name": "z", "kind": "loiter", "points": FENCE["points"], "loiter_seconds": 0}],
     "loiter_seconds must be a number of seconds, above 0"),
    ([FENCE, {**FENCE}], "zones[1] 'Fence': duplicate name"),
    ("[{'name': 1}", "The zones are not valid JSON"),
    ("null", "not null"),
    ('{"name": "a"}', "zones must be a list of zone objects"),
])
def test_a_bad_zone_is_refused_naming_the_problem(client, camera, users, zones, problem):
    camera.zones = [GATE]
    camera.save(update_fields=["zones"])
    response = save(page_client(client, users["changer"]), camera, zones)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("Zones not saved: ") and problem in error, error
    camera.refresh_from_db()
    assert camera.zones == [GATE]


def test_a_plain_form_post_comes_back_to_the_page_with_a_message(client, camera, users):
    c = page_client(client, users["changer"])
    response = save(c, camera, [FENCE], fetch=False)
    assert response.status_code == 302 and response["Location"].endswith(f"/cameras/{camera.pk}/#zones")
    assert "Zones saved (1)." in c.get(response["Location"]).content.decode()
    response = save(c, camera, [{"name": "x", "kind": "forbidden", "points": [[0, 0], [1, 1]]}], fetch=False)
    page = c.get(response["Location"]).content.decode()
    assert "Zones not saved: zones[0] &#x27;x&#x27;: has 2 point(s)" in page
    response = c.post(reverse("camera-page-zones", args=[camera.pk]), {})
    assert "No zones were sent" in c.get(response["Location"]).content.decode()
    assert c.get(reverse("camera-page-zones", args=[camera.pk])).status_code == 405


# -- the admin's widget ------------------------------------------------------------------------------------
def _admin_data(page) -> dict:
    form = page.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None:
            continue
        data[name] = field.prepare_value(value) if hasattr(field, "prepare_value") else value
    return {k: ("on" if v is True else v) for k, v in data.items() if v is not False}


def test_the_admin_draws_the_zones_over_the_picture_and_saves_them(client, camera, users):
    camera.zones = [GATE]
    camera.save(update_fields=["zones"])
    c = page_client(client, users["staff"])
    users["staff"].is_superuser = True
    users["staff"].save(update_fields=["is_superuser"])
    page = c.get(reverse("admin:cameras_camera_change", args=[camera.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "data-zone-editor" in html and 'name="zones"' in html and "js/zones.js" in html and "css/zones.css" in html
    assert f'data-picture-url="{reverse("camera-picture", args=[camera.pk])}"' in html
    assert "&quot;Gate&quot;" in html  # the JSON, readable, one zone a line
    data = _admin_data(page)
    data["zones"] = json.dumps([FENCE])
    response = c.post(reverse("admin:cameras_camera_change", args=[camera.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    camera.refresh_from_db()
    assert camera.zones == [FENCE]
    assert AuditEntry.objects.filter(action="camera.update", changes=["zones"]).exists()
    data["zones"] = json.dumps([{"name": "x", "kind": "line", "points": [[0.1, 0.1]]}])
    response = c.post(reverse("admin:cameras_camera_change", args=[camera.pk]), data)
    assert response.status_code == 200
    assert "zones[0] &#x27;x&#x27;: has 1 point(s); a line needs exactly 2" in response.content.decode()
    camera.refresh_from_db()
    assert camera.zones == [FENCE]
    # A new camera has no picture yet: the editor draws on an empty frame.
    add = c.get(reverse("admin:cameras_camera_add")).content.decode()
    assert "data-zone-editor" in add and 'data-picture-url=""' in add


def test_the_widget_keeps_what_was_typed_when_it_is_not_json():
    widget = ZonesWidget()
    assert "{not json" in widget.render("zones", "{not json")
    assert zones_json([FENCE]).startswith("[\n  {") and json.loads(zones_json([FENCE])) == [FENCE]


# -- the zones drawn elsewhere -----------------------------------------------------------------------------
def test_the_event_page_gets_the_cameras_zones(client, camera, users):
    camera.zones = [FENCE]
    camera.save(update_fields=["zones"])
    event = EventFactory(camera=camera)
    html = page_client(client, users["viewer"]).get(reverse("event-page", args=[event.pk])).content.decode()
    assert 'id="event-zones"' in html and '"Fence"' in html and "js/zones.js" in html


def test_the_camera_page_says_the_frame_rate_limit(client, camera, users):
    Camera.objects.filter(pk=camera.pk).update(analysis_fps=2.5, measured_fps=1.5)
    html = page_client(client, users["viewer"]).get(reverse("camera-page", args=[camera.pk])).content.decode()
    assert 'id="live-fps-note"' in html and 'data-analysis-fps="2.5"' in html and 'data-measured-fps="1.5"' in html
    assert "This camera is analysed at {limit} fps: {choice} fps shows at most {limit}." in html
    assert f'data-camera-url="{reverse("camera-detail", args=[camera.pk])}"' in html
    assert 'data-fact="measured_fps"' in html and 'data-fact="state"' in html


# -- the demo camera ----------------------------------------------------------------------------------------
def test_the_demo_camera_ships_with_the_scenes_forbidden_zone(settings, tmp_path, monkeypatch):
    from inference.demo import DemoSource
    from surveillance.management.commands import setup_system

    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    monkeypatch.setattr(setup_system, "SAMPLE_VIDEO", Path(tmp_path / "none.avi"))
    settings.DATA_DIR = tmp_path
    out = StringIO()
    call_command("setup_system", stdout=out)
    camera = Camera.objects.get(name="Demo camera")
    assert camera.enabled and camera.source_url == "demo://"
    assert camera.zones == setup_system.DEMO_ZONES
    (zone,) = camera.zones
    assert zone["kind"] == "forbidden"
    # The same area as the scene draws (and walks people into), in fractions of its frame.
    scene = DemoSource("demo://")
    x0, y0, x1, y1 = scene.zone
    fractions = [[x0 / scene.width, y0 / scene.height], [x1 / scene.width, y0 / scene.height],
                 [x1 / scene.width, y1 / scene.height], [x0 / scene.width, y1 / scene.height]]
    assert [c for p in zone["points"] for c in p] == pytest.approx([c for p in fractions for c in p], abs=1e-6)
    assert "with its forbidden zone" in out.getvalue()
