"""The outsider (no grant on the camera) is refused on every camera and event endpoint."""

import pytest

from tests.factories import EventFactory

pytestmark = pytest.mark.django_db

OBJECT_ENDPOINTS = [
    ("get", "/api/v1/cameras/{camera}/"),
    ("patch", "/api/v1/cameras/{camera}/"),
    ("put", "/api/v1/cameras/{camera}/"),
    ("delete", "/api/v1/cameras/{camera}/"),
    ("post", "/api/v1/cameras/{camera}/start/"),
    ("post", "/api/v1/cameras/{camera}/stop/"),
    ("get", "/api/v1/cameras/{camera}/status/"),
    ("get", "/api/v1/cameras/{camera}/figures/"),
    ("post", "/api/v1/cameras/{camera}/learn/"),
    ("get", "/api/v1/cameras/{camera}/learning-jobs/"),
    ("get", "/api/v1/cameras/{camera}/learning-jobs/1/"),
    ("get", "/api/v1/cameras/{camera}/detector-versions/"),
    ("post", "/api/v1/cameras/{camera}/detector-versions/1/restore/"),
    ("get", "/api/v1/cameras/{camera}/scores/"),
    ("get", "/api/v1/cameras/{camera}/picture/"),
    ("post", "/api/v1/cameras/{camera}/model-test/"),
    ("get", "/api/v1/events/{event}/"),
    ("post", "/api/v1/events/{event}/acknowledge/"),
    ("post", "/api/v1/events/{event}/resolve/"),
    ("get", "/api/v1/events/{event}/snapshot/"),
    ("get", "/api/v1/events/{event}/clip/"),
    ("get", "/api/v1/events/{event}/objects/1/thumbnail/"),
    ("get", "/api/v1/areas/{area}/"),
    ("patch", "/api/v1/areas/{area}/"),
    ("get", "/api/v1/incidents/{incident}/"),
]


def _incident_of(camera, event):
    """The camera in an area, the event in an incident of it: (area id, incident id)."""
    from events.models import Incident
    from tests.factories import AreaFactory

    area = AreaFactory(name="Yard")
    camera.area = area
    camera.save()
    incident = Incident.objects.create(area=area, opened_at=event.started_at, last_event_at=event.started_at,
                                       event_count=1)
    event.incident = incident
    event.save(update_fields=["incident"])
    return area.id, incident.id


@pytest.mark.parametrize("method,path", OBJECT_ENDPOINTS)
def test_outsider_is_refused_and_nothing_changes(api_as, camera, owner, outsider, method, path):
    event = EventFactory(camera=camera)
    area_id, incident_id = _incident_of(camera, event)
    url = path.format(camera=camera.id, event=event.id, area=area_id, incident=incident_id)
    response = getattr(api_as(outsider), method)(url, {"name": "hijacked"}, format="json")
    assert response.status_code == 404
    camera.refresh_from_db()
    event.refresh_from_db()
    assert camera.name != "hijacked" and not camera.enabled and event.status == "new"
    assert camera.area.name == "Yard"


@pytest.mark.parametrize("method,path", OBJECT_ENDPOINTS)
def test_anonymous_is_refused(client, camera, method, path):
    event = EventFactory(camera=camera)
    area_id, incident_id = _incident_of(camera, event)
    response = getattr(client, method)(path.format(camera=camera.id, event=event.id, area=area_id,
                                                   incident=incident_id))
    assert response.status_code == 401


def test_outsider_lists_are_empty_and_create_is_forbidden(api_as, camera, outsider):
    EventFactory(camera=camera)
    client = api_as(outsider)
    assert client.get("/api/v1/cameras/").json()["results"] == []
    assert client.get("/api/v1/events/").json()["results"] == []
    assert client.get("/api/v1/events/", {"camera": camera.id}).json()["results"] == []
    _incident_of(camera, camera.events.first())
    assert client.get("/api/v1/areas/").json()["results"] == []
    assert client.post("/api/v1/areas/", {"name": "x"}, format="json").status_code == 403
    assert client.post("/api/v1/cameras/", {"name": "x", "source_url": "demo://"}, format="json").status_code == 403


def test_outsider_pages_do_not_leak_camera_names(client, camera, outsider):
    EventFactory(camera=camera)
    client.force_login(outsider)
    page = client.get("/").content.decode()
    assert camera.name not in page
    event = camera.events.first()
    assert client.get(f"/events/{event.id}/snapshot.jpg").status_code == 404
