"""GET /health/: up or down for anyone; the details (workers' names among them) for staff and the scrape token."""

import pytest
from django.test import Client

from tests.conftest import jwt_client
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

REMOTE = "203.0.113.7"  # a client on another machine
WORKER = "health-test-worker@gpu-box-7"


@pytest.fixture
def worker():
    from cameras.live import alive_key
    from runtime.lease import RedisLease

    lease = RedisLease(WORKER, ttl=5)
    lease.alive([7, 8])
    yield WORKER
    lease.r.delete(alive_key(WORKER))


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = "scrape-token-for-health"
    return settings.METRICS_TOKEN


def get(client, **extra):
    response = client.get("/health/", REMOTE_ADDR=REMOTE, **extra)
    return response.status_code, response.json()


def assert_details(body):
    assert body["status"] == "ok" and body["database"]["ok"] and body["redis"]["ok"]
    assert WORKER in body["workers"]["names"] and body["workers"]["cameras"] >= 2


def test_anonymous_callers_get_up_or_down_only(client, worker, token):
    assert get(client) == (200, {"status": "ok"})
    # a wrong token, or the loopback address while a token is set, changes nothing
    assert get(client, HTTP_AUTHORIZATION="Bearer not-the-token") == (200, {"status": "ok"})
    response = client.get("/health/", REMOTE_ADDR="127.0.0.1")
    assert response.json() == {"status": "ok"} and WORKER not in response.content.decode()


def test_behind_a_proxy_on_this_machine_callers_are_anonymous(client, worker, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/health/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=REMOTE)
    assert response.json() == {"status": "ok"}


def test_signed_in_users_who_are_not_staff_get_up_or_down_only(client, worker, token):
    user = UserFactory()
    client.force_login(user)
    assert get(client) == (200, {"status": "ok"})
    assert get(jwt_client(user)) == (200, {"status": "ok"})


def test_the_metrics_token_gets_the_details(client, worker, token):
    status, body = get(client, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert status == 200
    assert_details(body)


def test_staff_sessions_and_staff_tokens_get_the_details(client, worker, token, staff):
    client.force_login(staff)
    assert_details(get(client)[1])
    assert_details(get(jwt_client(staff))[1])


def test_a_direct_loopback_request_gets_the_details_while_no_token_is_set(client, worker, settings):
    settings.METRICS_TOKEN = ""  # as /metrics: `make run` on one machine
    assert_details(client.get("/health/", REMOTE_ADDR="127.0.0.1").json())


def test_redis_down_is_503_for_everyone_and_the_error_only_for_staff(client, staff, token, monkeypatch):
    from surveillance import health

    class Down:
        def ping(self):
            raise ConnectionError("redis.internal.example:6379 refused")

    monkeypatch.setattr(health, "redis_client", Down)
    assert get(client) == (503, {"status": "error"})
    status, body = get(jwt_client(staff))
    assert status == 503 and body["status"] == "error"
    assert body["redis"]["ok"] is False and "refused" in body["redis"]["error"]
    assert body["database"]["ok"] is True


def test_a_malformed_access_token_is_anonymous_not_an_error(token):
    assert get(Client(), HTTP_AUTHORIZATION="Bearer a.b.c") == (200, {"status": "ok"})
