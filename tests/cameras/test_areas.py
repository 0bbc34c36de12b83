"""Areas: cameras a site groups together (their events make incidents). The model and its default window,
GET/POST /api/v1/areas/, GET/PATCH /api/v1/areas/{id}/, a camera's ``area`` in the camera API, and
the admin."""

import pytest
from guardian.shortcuts import assign_perm

from audit.models import AuditEntry
from cameras.models import Area, Camera
from tests.factories import AreaFactory, CameraFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def areas(camera):
    """``camera`` (the conftest's: owner changes it, viewer views it) in Yard; a hidden camera in Roof;
    Empty holds no camera."""
    yard, roof, empty = AreaFactory(name="Yard"), AreaFactory(name="Roof"), AreaFactory(name="Empty")
    camera.area = yard
    camera.save()
    hidden = CameraFactory(name="Hidden", area=roof)
    return {"yard": yard, "roof": roof, "empty": empty, "hidden": hidden}


def test_a_new_areas_window_is_the_setting(settings):
    assert AreaFactory().incident_window_seconds == 300
    settings.INCIDENT_WINDOW_SECONDS = 45
    assert Area(name="x").incident_window_seconds == 45


def test_deleting_an_area_leaves_its_cameras_without_one(camera, areas):
    areas["yard"].delete()
    camera.refresh_from_db()
    assert camera.area is None and Camera.objects.filter(pk=camera.pk).exists()


# -- GET /api/v1/areas/ ------------------------------------------------------------------------------------------
def test_users_see_the_areas_holding_a_camera_they_may_view(api_as, camera, areas, viewer, outsider, staff):
    body = api_as(viewer).get("/api/v1/areas/").json()
    assert [(a["name"], a["cameras"]) for a in body["results"]] == [("Yard", [camera.pk])]
    assert body["results"][0]["incident_window_seconds"] == 300
    assert api_as(outsider).get("/api/v1/areas/").json()["results"] == []
    seen = {a["name"]: a["cameras"] for a in api_as(staff).get("/api/v1/areas/").json()["results"]}
    assert seen == {"Empty": [], "Roof": [areas["hidden"].pk], "Yard": [camera.pk]}


def test_one_area_for_those_who_may_see_it(api_as, camera, areas, viewer, outsider, staff):
    yard, roof = areas["yard"].pk, areas["roof"].pk
    assert api_as(viewer).get(f"/api/v1/areas/{yard}/").json()["cameras"] == [camera.pk]
    for user, area_id in ((viewer, roof), (outsider, yard), (viewer, 999999), (viewer, 2**70)):
        response = api_as(user).get(f"/api/v1/areas/{area_id}/")
        assert response.status_code == 404 and response.json()["detail"]
    assert api_as(staff).get(f"/api/v1/areas/{roof}/").json()["name"] == "Roof"


# -- staff create and change ---------------------------------------------------------------------------------
def test_staff_create_and_change_areas_and_it_is_audited(api_as, staff):
    client = api_as(staff)
    response = client.post("/api/v1/areas/", {"name": "Loading bay", "incident_window_seconds": 120}, format="json")
    assert response.status_code == 201, response.content
    area = Area.objects.get(name="Loading bay")
    assert response.json()["id"] == area.pk and area.incident_window_seconds == 120
    response = client.patch(f"/api/v1/areas/{area.pk}/", {"description": "Docks 1-4"}, format="json")
    assert response.status_code == 200 and response.json()["description"] == "Docks 1-4"
    assert list(AuditEntry.objects.filter(target_type="area").order_by("id").values_list("action", "changes")) == [
        ("area.create", ["incident_window_seconds", "name"]), ("area.update", ["description"])]


@pytest.mark.parametrize("body", [{"name": "Yard"}, {"name": ""}, {"name": "Ok", "incident_window_seconds": 0},
                                  {"name": "Ok", "incident_window_seconds": 86401}, {}])
def test_a_bad_area_is_a_400_naming_the_field(api_as, staff, areas, body):
    response = api_as(staff).post("/api/v1/areas/", body, format="json")
    assert response.status_code == 400
    assert set(response.json()) & {"name", "incident_window_seconds"}


def test_others_may_not_create_or_change_areas(api_as, camera, areas, owner, outsider):
    assert api_as(owner).post("/api/v1/areas/", {"name": "Mine"}, format="json").status_code == 403
    assert api_as(owner).patch(f"/api/v1/areas/{areas['yard'].pk}/", {"name": "Mine"}, format="json").status_code == 403
    assert api_as(outsider).patch(f"/api/v1/areas/{areas['yard'].pk}/", {"name": "Mine"},
                                  format="json").status_code == 404
    assert not Area.objects.filter(name="Mine").exists()


# -- a camera's area -------------------------------------------------------------------------------------------
def test_who_may_change_the_camera_may_put_it_in_an_area_they_may_see(api_as, camera, areas, owner, viewer):
    other = CameraFactory(name="Other", area=None)
    for perm in ("view_camera", "change_camera"):
        assign_perm(perm, owner, other)
    response = api_as(owner).patch(f"/api/v1/cameras/{other.pk}/", {"area": areas["yard"].pk}, format="json")
    assert response.status_code == 200 and response.json()["area"] == areas["yard"].pk
    other.refresh_from_db()
    assert other.area == areas["yard"]
    assert AuditEntry.objects.filter(action="camera.update", target_id=str(other.pk), changes=["area"]).exists()
    # An area the user may not see answers like one that does not exist; nothing changes.
    for area_id in (areas["roof"].pk, areas["empty"].pk, 999999):
        response = api_as(owner).patch(f"/api/v1/cameras/{other.pk}/", {"area": area_id}, format="json")
        assert response.status_code == 400 and response.json()["area"] == [f"No area with id {area_id}."]
    other.refresh_from_db()
    assert other.area == areas["yard"]
    # null takes it out of its area; a viewer may not change it at all.
    assert api_as(owner).patch(f"/api/v1/cameras/{other.pk}/", {"area": None}, format="json").json()["area"] is None
    assert api_as(viewer).patch(f"/api/v1/cameras/{camera.pk}/", {"area": None}, format="json").status_code == 403
    camera.refresh_from_db()
    assert camera.area == areas["yard"]


def test_staff_may_use_any_area_and_create_a_camera_in_one(api_as, staff, areas):
    response = api_as(staff).post("/api/v1/cameras/", {"name": "New", "source_url": "demo://",
                                                       "area": areas["empty"].pk}, format="json")
    assert response.status_code == 201, response.content
    assert Camera.objects.get(pk=response.json()["id"]).area == areas["empty"]
    assert api_as(staff).get(f"/api/v1/cameras/{response.json()['id']}/").json()["area"] == areas["empty"].pk


def test_a_form_may_leave_the_area_out_or_empty_it(api_as, owner, camera, areas):
    response = api_as(owner).patch(f"/api/v1/cameras/{camera.pk}/", {"name": "Renamed"}, format="multipart")
    assert response.status_code == 200 and response.json()["area"] == areas["yard"].pk
    response = api_as(owner).patch(f"/api/v1/cameras/{camera.pk}/", {"area": ""}, format="multipart")
    assert response.status_code == 200 and response.json()["area"] is None


# -- the admin -------------------------------------------------------------------------------------------------
@pytest.fixture
def admin_client(client, staff):
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    return client


def test_the_admin_lists_areas_with_their_camera_count_and_edits_a_cameras_area(admin_client, camera, areas):
    CameraFactory(area=areas["yard"])
    listing = admin_client.get("/admin/cameras/area/").content.decode()
    assert "Yard" in listing and "Cameras" in listing
    counts = {a.name: a.camera_count for a in admin_client.get("/admin/cameras/area/").context["cl"].result_list}
    assert counts == {"Yard": 2, "Roof": 1, "Empty": 0}
    page = admin_client.get(f"/admin/cameras/camera/{camera.pk}/change/").content.decode()
    assert 'name="area"' in page
    response = admin_client.post("/admin/cameras/area/add/", {"name": "Gatehouse", "description": "",
                                                              "incident_window_seconds": 60})
    assert response.status_code == 302, response.content[:500]
    assert Area.objects.get(name="Gatehouse").incident_window_seconds == 60
    assert AuditEntry.objects.filter(action="area.create").exists()


def test_the_outsider_never_learns_of_an_area(api_as, areas, outsider):
    UserFactory(username="someone")
    assert api_as(outsider).get("/api/v1/areas/").json()["results"] == []
    assert api_as(outsider).get(f"/api/v1/areas/{areas['empty'].pk}/").status_code == 404
