"""The camera's live figures for those who may view it: the API and the camera page's panel."""

import os

import pytest

from inference.stats import CameraStats
from cameras.live import stats_key
from runtime.stats import StatsPublisher

pytestmark = pytest.mark.django_db

WORKER = f"figures-test-{os.getpid()}"


@pytest.fixture
def published(camera):
    from cameras import live

    client = live.client()
    camera.state, camera.worker = "running", WORKER
    camera.save(update_fields=["state", "worker"])
    stats = CameraStats()
    for ms in (3.0, 4.0, 30.0):
        stats.analysed(ms, 0.05)
    stats.event()
    StatsPublisher(WORKER, ttl=30, client=client).publish(
        {camera.pk: {"state": "running", "fps": 4.9, "frames": 120, **stats.snapshot()}})
    yield camera
    client.delete(stats_key(WORKER))


def test_a_viewer_gets_the_cameras_live_figures(api_as, viewer, published):
    response = api_as(viewer).get(f"/api/v1/cameras/{published.pk}/figures/")
    assert response.status_code == 200
    figures = response.json()
    assert figures["id"] == published.pk and figures["worker"] == WORKER
    assert figures["fps"] == pytest.approx(4.9) and figures["frames"] == 120 and figures["events"] == 1
    assert 0 < figures["detector_ms_p50"] <= figures["detector_ms_p95"] <= 50
    assert figures["subscribers"] == 0


def test_outsiders_and_anonymous_get_nothing(api_as, client, outsider, published):
    assert api_as(outsider).get(f"/api/v1/cameras/{published.pk}/figures/").status_code == 404
    assert client.get(f"/api/v1/cameras/{published.pk}/figures/").status_code == 401


def test_the_camera_page_has_the_live_figures_panel(client, viewer, camera):
    client.force_login(viewer)
    page = client.get(f"/cameras/{camera.pk}/").content.decode()
    assert f'data-url="/api/v1/cameras/{camera.pk}/figures/"' in page and "js/figures.js" in page


def test_a_camera_no_worker_runs_still_answers(api_as, viewer, camera):
    figures = api_as(viewer).get(f"/api/v1/cameras/{camera.pk}/figures/").json()
    assert figures["id"] == camera.pk and figures["state"] == camera.state
