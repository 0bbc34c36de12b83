import pytest
from guardian.shortcuts import assign_perm

from cameras.models import Camera
from tests.factories import CameraFactory, UserFactory

pytestmark = pytest.mark.django_db


def url(camera_id=None, action=""):
    base = "/api/v1/cameras/"
    if camera_id is None:
        return base
    return f"{base}{camera_id}/" + (f"{action}/" if action else "")


def test_list_shows_only_viewable_cameras(api_as, camera, owner, viewer, outsider):
    CameraFactory(name="Someone else's")
    for user in (owner, viewer):
        names = [c["name"] for c in api_as(user).get(url()).json()["results"]]
        assert names == [camera.name]
    assert api_as(outsider).get(url()).json()["results"] == []


def test_group_grant_gives_access(api_as, camera):
    from django.contrib.auth.models import Group

    user = UserFactory()
    group = Group.objects.create(name="night shift")
    user.groups.add(group)
    assign_perm("view_camera", group, camera)
    assert [c["id"] for c in api_as(user).get(url()).json()["results"]] == [camera.id]


def test_staff_see_everything(api_as, camera, staff):
    CameraFactory()
    assert len(api_as(staff).get(url()).json()["results"]) == 2


def test_anonymous_is_refused(client, camera):
    assert client.get(url()).status_code == 401
    assert client.get(url(camera.id)).status_code == 401


def test_detail_and_status(api_as, camera, owner, viewer, outsider):
    for user in (owner, viewer):
        body = api_as(user).get(url(camera.id)).json()
        assert body["name"] == camera.name and body["state"] == "stopped"
        status = api_as(user).get(url(camera.id, "status")).json()
        assert set(status) >= {"state", "last_frame_at", "measured_fps", "last_error", "enabled"}
    assert api_as(outsider).get(url(camera.id)).status_code == 404


def test_create_needs_add_permission_and_grants_creator(api_as, outsider):
    payload = {"name": "Gate", "source_url": "demo://?seed=2"}
    assert api_as(outsider).post(url(), payload, format="json").status_code == 403
    assign_perm("cameras.add_camera", outsider)
    outsider = type(outsider).objects.get(pk=outsider.pk)  # fresh permission cache
    response = api_as(outsider).post(url(), payload, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["analysis_fps"] == 5.0 and created["stream_fps"] == 5 and created["threshold"] == 0.5
    camera = Camera.objects.get(pk=created["id"])
    for perm in ("view_camera", "operate_camera", "change_camera"):
        assert outsider.has_perm(f"cameras.{perm}", camera)


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("source_url", "ftp://example.com/cam", "source_url"),
        ("source_url", "", "source_url"),
        ("source_url", "/no/such/file.mp4", "source_url"),
        ("source_url", "device://abc", "source_url"),
        ("analysis_fps", 0, "analysis_fps"),
        ("analysis_fps", "fast", "analysis_fps"),
        ("stream_fps", 7, "stream_fps"),
        ("detector", "crystal-ball", "detector"),
        ("vlm_backend", "oracle", "vlm_backend"),
        ("detector_params", [1, 2], "detector_params"),
        ("threshold", -1, "threshold"),
    ],
)
def test_invalid_input_gets_400_naming_the_field(api_as, staff, field, value, message):
    payload = {"name": "Bad", "source_url": "demo://", field: value}
    response = api_as(staff).post(url(), payload, format="json")
    assert response.status_code == 400
    assert message in response.json()
    assert Camera.objects.count() == 0


def test_vlm_backend_needs_a_model_path(api_as, staff):
    response = api_as(staff).post(url(), {"name": "x", "source_url": "demo://", "vlm_backend": "transformers"},
                                  format="json")
    assert response.status_code == 400
    assert "vlm_model_path" in response.json()


def test_update_needs_change_permission(api_as, camera, owner, viewer, outsider):
    assert api_as(viewer).patch(url(camera.id), {"name": "x"}, format="json").status_code == 403
    assert api_as(outsider).patch(url(camera.id), {"name": "x"}, format="json").status_code == 404
    response = api_as(owner).patch(url(camera.id), {"name": "Front door", "threshold": 0.7}, format="json")
    assert response.status_code == 200
    camera.refresh_from_db()
    assert (camera.name, camera.threshold) == ("Front door", 0.7)


def test_bad_update_keeps_what_is_stored(api_as, camera, owner):
    response = api_as(owner).patch(url(camera.id), {"source_url": "javascript:alert(1)"}, format="json")
    assert response.status_code == 400 and "source_url" in response.json()
    camera.refresh_from_db()
    assert camera.source_url == "demo://?seed=1"


def test_delete_needs_change_permission(api_as, camera, owner, viewer, outsider):
    assert api_as(outsider).delete(url(camera.id)).status_code == 404
    assert api_as(viewer).delete(url(camera.id)).status_code == 403
    assert api_as(owner).delete(url(camera.id)).status_code == 204
    assert not Camera.objects.filter(pk=camera.id).exists()


def test_start_and_stop_need_operate_permission(api_as, camera, owner, viewer, outsider, django_capture_on_commit_callbacks):
    from unittest import mock

    assert api_as(outsider).post(url(camera.id, "start")).status_code == 404
    assert api_as(viewer).post(url(camera.id, "start")).status_code == 403
    with mock.patch("cameras.dispatch.camera_run") as delay, django_capture_on_commit_callbacks(execute=True):
        response = api_as(owner).post(url(camera.id, "start"))
    assert response.status_code == 202
    assert response.json()["state"] == "starting" and response.json()["enabled"] is True
    delay.assert_called_once_with(camera.id)

    assert api_as(viewer).post(url(camera.id, "stop")).status_code == 403
    response = api_as(owner).post(url(camera.id, "stop"))
    assert response.status_code == 202
    camera.refresh_from_db()
    assert (camera.enabled, camera.state) == (False, "stopped")


def test_unknown_camera_is_404(api_as, staff):
    assert api_as(staff).get(url(99999)).status_code == 404
    assert api_as(staff).post(url(99999, "start")).status_code == 404


@pytest.mark.parametrize("field,value", [("detector_params", {"no_such_knob": 3}), ("agent_params", {"bogus": 1})])
def test_backend_params_are_checked_by_the_backend(api_as, staff, field, value):
    response = api_as(staff).post(url(), {"name": "x", "source_url": "demo://", field: value}, format="json")
    assert response.status_code == 400 and field in response.json()


def test_admin_start_reaches_a_worker(client, camera, staff, dispatched, django_capture_on_commit_callbacks):
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/cameras/camera/", {"action": "start_cameras", "_selected_action": [camera.id]})
    assert response.status_code == 302
    camera.refresh_from_db()
    assert camera.enabled and camera.state == "starting" and dispatched == [camera.id]


def test_stream_credentials_are_shown_only_to_those_who_may_change_the_camera(api_as, camera, owner, viewer):
    Camera.objects.filter(pk=camera.pk).update(source_url="rtsp://admin:s3cret@camera.example/stream")
    for client in (api_as(viewer).get(url(camera.id)), api_as(viewer).get(url())):
        assert "s3cret" not in client.content.decode()
    assert api_as(viewer).get(url(camera.id)).json()["source_url"] == "rtsp://admin:***@camera.example/stream"
    assert api_as(owner).get(url(camera.id)).json()["source_url"] == "rtsp://admin:s3cret@camera.example/stream"
    assert api_as(owner).get(url()).json()["results"][0]["source_url"].endswith("s3cret@camera.example/stream")


# -- zones ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "zones,problem",
    [
        ({"name": "gate"}, "zones must be a list"),
        ([{"name": "gate", "kind": "maybe", "points": [[0, 0], [1, 0], [1, 1]]}], "zones[0] 'gate': unknown kind 'maybe'"),
        ([{"name": "gate", "kind": "forbidden", "points": [[0, 0], [1, 0]]}], "zones[0] 'gate': has 2 point(s)"),
        ([{"name": "gate", "kind": "forbidden", "points": [[0, 0], [640, 0], [640, 360]]}], "out of range"),
    ],
)
def test_bad_zones_get_400_naming_the_problem(api_as, staff, zones, problem):
    response = api_as(staff).post(url(), {"name": "x", "source_url": "demo://", "zones": zones}, format="json")
    assert response.status_code == 400
    assert problem in " ".join(response.json()["zones"])
    assert Camera.objects.count() == 0


def test_good_zones_are_stored_and_returned(api_as, camera, owner):
    zones = [
        {"name": "trees", "kind": "ignore", "points": [[0, 0], [0.3, 0], [0.3, 0.2]]},
        {"name": "fence", "kind": "forbidden", "points": [[0.6, 0.2], [0.95, 0.2], [0.95, 0.8], [0.6, 0.8]]},
        {"name": "entrance", "kind": "loiter", "points": [[0, 0.5], [0.2, 0.5], [0.2, 1]], "loiter_seconds": 45},
    ]
    response = api_as(owner).patch(url(camera.id), {"zones": zones}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["zones"] == zones
    camera.refresh_from_db()
    assert camera.zones == zones and camera.runtime_config()["zones"] == zones
    assert api_as(owner).get(url(camera.id)).json()["zones"] == zones
    # a bad update keeps what is stored
    bad = [{**zones[1], "name": "trees"}, zones[0]]
    response = api_as(owner).patch(url(camera.id), {"zones": bad}, format="json")
    assert response.status_code == 400 and "duplicate name" in " ".join(response.json()["zones"])
    camera.refresh_from_db()
    assert camera.zones == zones


def test_saving_a_camera_with_a_model_detector_loads_no_model_in_the_web_process(api_as, staff, monkeypatch,
                                                                                 settings):
    from inference import semantic

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded while validating a camera")

    monkeypatch.setattr(semantic.ClipScorer, "__init__", refuse)
    clip = f"{settings.MODEL_ROOTS[0]}/clip"  # in the allowed model folders; not on this disk
    response = api_as(staff).post("/api/v1/cameras/", {"name": "clip cam", "source_url": "demo://",
                                                       "detector": "semantic",
                                                       "detector_params": {"model_path": clip}},
                                  format="json")
    assert response.status_code == 201, response.json()


# -- camera health (tamper) settings: checked as the worker will use them, handed to it --------------------------
@pytest.mark.parametrize("params, problem", [
    ([1], "Must be a JSON object."),
    ({"enabled": "no"}, "'enabled' must be true or false."),
    ({"colour": 1}, "unknown camera health parameter(s): colour"),
    ({"confirm_seconds": -1}, "bad camera health parameter"),
    ({"orb_features": 1e300}, "'orb_features' must be at most 5000"),
])
def test_bad_health_params_get_400_naming_the_problem(api_as, camera, owner, params, problem):
    response = api_as(owner).patch(url(camera.id), {"health_params": params}, format="json")
    assert response.status_code == 400, response.json()
    assert problem in str(response.json()["health_params"])
    camera.refresh_from_db()
    assert camera.health_params == {}


def test_health_params_are_stored_and_reach_the_worker(api_as, camera, owner):
    response = api_as(owner).patch(url(camera.id), {"health_params": {"enabled": False, "frozen_seconds": 30}},
                                   format="json")
    assert response.status_code == 200 and response.json()["health_params"] == {"enabled": False,
                                                                                  "frozen_seconds": 30}
    camera.refresh_from_db()
    config = camera.runtime_config()
    assert config["health"] == {"enabled": False, "frozen_seconds": 30} and "health_params" not in config
    from inference.e2e import make_health

    assert make_health(config) is None  # turned off
    assert make_health({**config, "health": {"frozen_seconds": 30}}).params["frozen_seconds"] == 30
