"""GET /api/v1/cameras/{id}/status/ lists the objects its worker follows now (from the worker's figures)."""

import pytest

from cameras.live import stats_key
from cameras.models import Camera
from runtime.stats import StatsPublisher

pytestmark = pytest.mark.django_db

OBJECTS = [{"track": 4, "label": "person", "confidence": 0.77, "box": [0.1, 0.2, 0.15, 0.4], "since": 1765000000.5}]


def test_the_status_lists_the_objects_followed_now(api_as, camera, viewer, outsider):
    worker = "status-objects-worker"
    publisher = StatsPublisher(worker, ttl=30)
    try:
        assert api_as(viewer).get(f"/api/v1/cameras/{camera.pk}/status/").json()["objects"] == []  # no worker
        Camera.objects.filter(pk=camera.pk).update(worker=worker, state="running")
        publisher.publish({camera.pk: {"state": "running", "fps": 5.0, "objects": OBJECTS}})
        body = api_as(viewer).get(f"/api/v1/cameras/{camera.pk}/status/").json()
        assert body["objects"] == OBJECTS and body["state"] == "running"
        assert api_as(outsider).get(f"/api/v1/cameras/{camera.pk}/status/").status_code == 404
    finally:
        publisher.r.delete(stats_key(worker))
