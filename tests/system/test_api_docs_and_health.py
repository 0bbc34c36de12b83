import pytest

pytestmark = pytest.mark.django_db


def test_openapi_schema_and_docs(client, viewer):
    client.force_login(viewer)
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/api/v1/cameras/", "/api/v1/cameras/{camera_id}/start/", "/api/v1/events/",
                 "/api/v1/events/{event_id}/resolve/", "/api/v1/auth/token/", "/api/v1/auth/me/"):
        assert path in paths
    assert client.get("/api/v1/docs/").status_code == 200


def test_health_reports_database_redis_and_workers(client):
    from cameras.live import alive_key
    from runtime.lease import RedisLease

    lease = RedisLease("health-test-worker", ttl=5)
    lease.alive([7, 8])
    body = client.get("/health/").json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["redis"]["ok"]
    assert "health-test-worker" in body["workers"]["names"] and body["workers"]["cameras"] >= 2
    lease.r.delete(alive_key("health-test-worker"))
