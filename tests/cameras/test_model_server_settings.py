"""Cameras and the site default pointing at an OpenAI-compatible model server: settings, secrets, the test action."""

import time

import pytest
from django.core.exceptions import ValidationError

from cameras import live
from cameras.models import Camera

pytestmark = pytest.mark.django_db


@pytest.fixture
def running(camera):
    """The camera running, with a current picture in the live store (as its worker keeps it)."""
    import cv2
    import numpy as np

    Camera.objects.filter(pk=camera.pk).update(enabled=True, state=Camera.State.RUNNING)
    camera.refresh_from_db()
    ok, jpeg = cv2.imencode(".jpg", np.full((120, 160, 3), 128, np.uint8))
    live.picture_store(live.client(), camera.pk, jpeg.tobytes(), at=time.time(), width=160, height=120, ttl=30)
    yield camera
    live.picture_forget(live.client(), camera.pk)


def test_a_camera_uses_a_model_server_and_its_key_is_never_shown(api_as, owner, viewer, camera, server):
    body = {"vlm_backend": "openai", "vlm_params": {"base_url": server.base_url, "model": "llava", "api_key": "sk-1",
                                                     "timeout": 20}}
    response = api_as(owner).patch(f"/api/v1/cameras/{camera.pk}/", body, format="json")
    assert response.status_code == 200, response.json()
    for user in (owner, viewer):
        shown = api_as(user).get(f"/api/v1/cameras/{camera.pk}/").json()["vlm_params"]
        assert shown == {"base_url": server.base_url, "model": "llava", "api_key": "***", "timeout": 20}
    # Sent back as shown, the key is kept; a new one replaces it.
    shown["timeout"] = 30
    assert api_as(owner).patch(f"/api/v1/cameras/{camera.pk}/", {"vlm_params": shown}, format="json").status_code == 200
    camera.refresh_from_db()
    assert camera.vlm_params["api_key"] == "sk-1" and camera.vlm_params["timeout"] == 30
    shown["api_key"] = "sk-2"
    api_as(owner).patch(f"/api/v1/cameras/{camera.pk}/", {"vlm_params": shown}, format="json")
    camera.refresh_from_db()
    assert camera.vlm_params["api_key"] == "sk-2"
    assert "sk-2" not in str(api_as(owner).get("/api/v1/cameras/").json())


@pytest.mark.parametrize("params,message", [
    ({"model": "llava"}, "base_url is required"),
    ({"base_url": "http://127.0.0.1:11434/v1", "model": "llava", "temprature": 1}, "unknown parameter(s) temprature"),
    ({"base_url": "ftp://x/v1", "model": "llava"}, "must be an http(s) URL"),
    ({"base_url": "http://127.0.0.1:11434/v1", "model": "llava", "timeout": 0}, "timeout must be between"),
])
def test_bad_server_parameters_are_a_400_naming_them(api_as, owner, camera, params, message):
    response = api_as(owner).patch(f"/api/v1/cameras/{camera.pk}/", {"vlm_backend": "openai", "vlm_params": params},
                                   format="json")
    assert response.status_code == 400 and message in str(response.json()["vlm_params"]), response.json()


def test_the_site_default_server_fills_what_a_camera_leaves_out(api_as, staff, owner, camera, server, site):
    response = api_as(staff).patch("/api/v1/site/settings/", {"vlm_server": {
        "base_url": server.base_url, "model": "qwen2.5vl", "api_key": "sk-site"}}, format="json")
    assert response.status_code == 200 and response.json()["vlm_server"]["api_key"] == "***"
    # The site's key survives an edit that sends the masked value back.
    shown = api_as(staff).get("/api/v1/site/settings/").json()["vlm_server"]
    api_as(staff).patch("/api/v1/site/settings/", {"vlm_server": {**shown, "timeout": 15}}, format="json")
    response = api_as(owner).patch(f"/api/v1/cameras/{camera.pk}/", {"vlm_backend": "openai",
                                   "vlm_params": {"model": "llava"}}, format="json")
    assert response.status_code == 200, response.json()
    camera.refresh_from_db()
    config = camera.runtime_config()["vlm_params"]
    assert config == {"base_url": server.base_url, "model": "llava", "api_key": "sk-site", "timeout": 15}


def test_a_model_server_outside_the_sites_networks_is_refused(api_as, owner, camera, server, site):
    site(model_server_networks="10.0.0.0/8")
    response = api_as(owner).patch(f"/api/v1/cameras/{camera.pk}/", {"vlm_backend": "openai", "vlm_params": {
        "base_url": server.base_url, "model": "llava"}}, format="json")
    assert response.status_code == 400
    assert "127.0.0.1 is an internal address" in str(response.json()) and "model server networks" in str(
        response.json())


def test_the_vlm_test_sends_the_current_picture_and_says_what_came_back(api_as, owner, running, server):
    running.vlm_backend, running.vlm_params = "openai", {"base_url": server.base_url, "model": "llava"}
    running.save(update_fields=["vlm_backend", "vlm_params"])
    response = api_as(owner).post(f"/api/v1/cameras/{running.pk}/model-test/", {"which": "vlm"}, format="json")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["ok"] and data["summary"] == "A person is lying on the ground." and data["threat_level"] == "high"
    assert data["seconds"] >= 0 and data["model"] == "llava"
    (image,) = server.images()
    assert image.startswith("data:image/jpeg;base64,/9j/")  # the stored JPEG itself
    assert running.vlm_prompt.strip()[:20] in server.requests[-1]["messages"][0]["content"][0]["text"]


def test_a_wrong_key_is_an_answer_not_an_error(api_as, owner, running, server):
    server.api_key = "right"
    running.vlm_backend, running.vlm_params = "openai", {"base_url": server.base_url, "model": "m", "api_key": "wrong"}
    running.save(update_fields=["vlm_backend", "vlm_params"])
    data = api_as(owner).post(f"/api/v1/cameras/{running.pk}/model-test/", {}, format="json").json()
    assert data["ok"] is False and "refused the API key" in data["error"] and "wrong" not in data["error"]


def test_the_agent_test_decides_about_a_sample_episode(api_as, owner, camera, server):
    server.reply = '{"severity": "critical", "actions": ["alert_now"], "reasons": ["person down"]}'
    camera.agent_policy, camera.agent_params = "openai", {"base_url": server.base_url, "model": "qwen2.5"}
    camera.save(update_fields=["agent_policy", "agent_params"])
    data = api_as(owner).post(f"/api/v1/cameras/{camera.pk}/model-test/", {"which": "agent"}, format="json").json()
    assert data["ok"] and data["severity"] == "critical" and data["reasons"] == ["person down"]
    assert "lying on the ground" in server.requests[-1]["messages"][0]["content"]


def test_the_test_needs_a_model_server_a_picture_and_the_change_permission(api_as, owner, viewer, camera, server):
    url = f"/api/v1/cameras/{camera.pk}/model-test/"
    response = api_as(owner).post(url, {"which": "vlm"}, format="json")
    assert response.status_code == 400 and 'not "openai"' in str(response.json())
    camera.vlm_backend, camera.vlm_params = "openai", {"base_url": server.base_url, "model": "llava"}
    camera.save(update_fields=["vlm_backend", "vlm_params"])
    response = api_as(owner).post(url, {"which": "vlm"}, format="json")
    assert response.status_code == 400 and "no current picture" in str(response.json())
    assert api_as(viewer).post(url, {"which": "vlm"}, format="json").status_code == 403
    assert server.requests == []


def test_the_admin_never_shows_the_key_and_keeps_it(client, camera, server):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", "", "pw-12345678")
    camera.vlm_backend, camera.vlm_params = "openai", {"base_url": server.base_url, "model": "m", "api_key": "sk-secret"}
    camera.save(update_fields=["vlm_backend", "vlm_params"])
    client.force_login(admin)
    page = client.get(f"/admin/cameras/camera/{camera.pk}/change/")
    assert page.status_code == 200 and b"sk-secret" not in page.content and b"***" in page.content
    form = page.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None:
            continue
        data[name] = field.prepare_value(value) if hasattr(field, "prepare_value") else value
    data = {k: ("on" if v is True else v) for k, v in data.items() if v is not False}
    data["name"] = "Renamed"
    response = client.post(f"/admin/cameras/camera/{camera.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    camera.refresh_from_db()
    assert camera.name == "Renamed" and camera.vlm_params["api_key"] == "sk-secret"


def test_the_worker_gives_a_server_backend_the_sites_networks():
    from runtime.process import _model_server
    from siteconfig.selectors import model_server_networks

    config = _model_server({"base_url": "http://127.0.0.1:1/v1", "model": "m"})
    assert config["allowed_networks"] is model_server_networks and "model server networks" in config["networks_where"]


def test_validation_without_the_api(camera, server, site):
    site(model_server_networks="")
    camera.vlm_backend, camera.vlm_params = "openai", {"base_url": server.base_url, "model": "m"}
    with pytest.raises(ValidationError, match="internal address"):
        camera.full_clean()
