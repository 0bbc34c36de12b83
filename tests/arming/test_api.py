"""The arming API: GET/POST /api/v1/cameras/{id}/arming/ and /api/v1/areas/{id}/arming/."""

import pytest
from guardian.shortcuts import assign_perm

from arming.models import ArmingState
from audit.models import AuditEntry
from tests.factories import AreaFactory, CameraFactory, UserFactory, role_users

pytestmark = pytest.mark.django_db


@pytest.fixture
def site():
    area = AreaFactory(name="Yard")
    camera = CameraFactory(name="Gate", area=area)
    return area, camera, role_users(camera)


def url(camera):
    return f"/api/v1/cameras/{camera.pk}/arming/"


def test_viewers_read_the_mode_operators_switch_it_outsiders_see_nothing(site, api_as):
    _area, camera, users = site
    answer = api_as(users["viewer"]).get(url(camera))
    assert answer.status_code == 200
    body = answer.json()
    assert (body["mode"], body["source"], body["override"], body["can_switch"]) == ("armed", "default", None, False)
    assert [m["value"] for m in body["modes"]] == ["armed", "home", "away", "disarmed"]
    assert api_as(users["viewer"]).post(url(camera), {"mode": "disarmed"}, format="json").status_code == 403
    assert api_as(users["outsider"]).get(url(camera)).status_code == 404
    assert api_as(users["outsider"]).post(url(camera), {"mode": "disarmed"}, format="json").status_code == 404
    assert api_as(users["outsider"]).get("/api/v1/cameras/999999/arming/").status_code == 404

    answer = api_as(users["operator"]).post(url(camera), {"mode": "disarmed"}, format="json")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["mode"], body["source"], body["override"], body["set_by"]) == ("disarmed", "camera", "disarmed",
                                                                                 "operator")
    assert body["can_switch"] is True and body["source_label"] == "Set on this camera by operator"
    entry = AuditEntry.objects.get(action="arming.set")
    assert entry.actor == users["operator"] and entry.details == {"scope": "camera", "old": "auto", "new": "disarmed"}

    answer = api_as(users["operator"]).post(url(camera), {"mode": None}, format="json")
    assert answer.status_code == 200 and answer.json()["source"] == "default"
    assert not ArmingState.objects.exists()


@pytest.mark.parametrize("data", [{"mode": "sleeping"}, {"mode": 3}, {"mode": ["armed"]}, {}])
def test_a_bad_mode_is_a_400_naming_the_field(site, api_as, data):
    _area, camera, users = site
    answer = api_as(users["operator"]).post(url(camera), data, format="json")
    assert answer.status_code == 400 and "mode" in answer.json()
    assert not ArmingState.objects.exists()


def test_a_body_that_is_not_an_object_is_a_400(site, api_as):
    _area, camera, users = site
    answer = api_as(users["operator"]).post(url(camera), ["disarmed"], format="json")
    assert answer.status_code == 400


def test_an_area_is_switched_by_who_operates_every_one_of_its_cameras(site, api_as):
    area, camera, users = site
    area_url = f"/api/v1/areas/{area.pk}/arming/"
    answer = api_as(users["operator"]).post(area_url, {"mode": "away"}, format="json")
    assert answer.status_code == 200
    body = answer.json()
    assert body["mode"] == "away" and body["set_by"] == "operator"
    assert body["cameras"] == [{**body["cameras"][0], "camera": camera.pk, "mode": "away", "source": "area"}]
    assert api_as(users["viewer"]).get(url(camera)).json()["mode"] == "away"
    assert api_as(users["viewer"]).post(area_url, {"mode": "home"}, format="json").status_code == 403
    assert api_as(users["outsider"]).get(area_url).status_code == 404

    # A second camera in the area the operator may only view: they may no longer switch the area.
    door = CameraFactory(name="Door", area=area)
    assign_perm("view_camera", users["operator"], door)
    answer = api_as(users["operator"]).post(area_url, {"mode": "home"}, format="json")
    assert answer.status_code == 403
    assert api_as(users["operator"]).get(area_url).json()["can_switch"] is False
    # The camera itself stays theirs to switch.
    assert api_as(users["operator"]).post(url(camera), {"mode": "armed"}, format="json").status_code == 200
    assert api_as(users["staff"]).post(area_url, {"mode": None}, format="json").json()["mode"] is None


def test_a_camera_with_no_area_and_an_unknown_area(api_as):
    user = UserFactory(username="solo")
    camera = CameraFactory()
    assign_perm("view_camera", user, camera)
    assert api_as(user).get(url(camera)).json()["area"] is None
    assert api_as(user).get("/api/v1/areas/abc/arming/").status_code == 404
