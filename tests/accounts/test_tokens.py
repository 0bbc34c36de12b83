"""JWT lifetimes, refresh rotation and logout that revokes tokens (API and WebSocket)."""

import pytest
from django.conf import settings

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pass-word-123"


def login(client, user):
    response = client.post("/api/v1/auth/token/", {"username": user.username, "password": PASSWORD},
                           content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()


def me(client, access):
    return client.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Bearer {access}")


def refresh(client, token):
    return client.post("/api/v1/auth/token/refresh/", {"refresh": token}, content_type="application/json")


def logout(client, access, **body):
    return client.post("/api/v1/auth/logout/", body, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {access}")


def test_access_tokens_are_short_lived_and_refresh_tokens_rotate():
    assert settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds() <= 15 * 60
    assert settings.SIMPLE_JWT["ROTATE_REFRESH_TOKENS"] and settings.SIMPLE_JWT["BLACKLIST_AFTER_ROTATION"]


def test_a_refresh_gives_a_new_refresh_token_and_the_old_one_stops_working(client):
    user = UserFactory(password=PASSWORD)
    tokens = login(client, user)
    first = refresh(client, tokens["refresh"])
    assert first.status_code == 200
    assert set(first.json()) == {"access", "refresh"} and first.json()["refresh"] != tokens["refresh"]
    replay = refresh(client, tokens["refresh"])
    assert replay.status_code == 401 and "blacklisted" in replay.json()["detail"].lower()
    assert refresh(client, first.json()["refresh"]).status_code == 200


def test_logout_revokes_the_refresh_and_the_access_token(client):
    user = UserFactory(password=PASSWORD)
    tokens = login(client, user)
    assert me(client, tokens["access"]).status_code == 200
    response = logout(client, tokens["access"], refresh=tokens["refresh"])
    assert response.status_code == 200 and response.json() == {"revoked_refresh_tokens": 1}
    refused = me(client, tokens["access"])
    assert refused.status_code == 401 and "revoked" in str(refused.json()).lower()
    assert refresh(client, tokens["refresh"]).status_code == 401
    # A new login works as before.
    assert me(client, login(client, user)["access"]).status_code == 200


def test_logout_everywhere_revokes_every_device(client):
    user = UserFactory(password=PASSWORD)
    phone, laptop = login(client, user), login(client, user)
    other_user = login(client, UserFactory(password=PASSWORD))
    response = logout(client, phone["access"], everywhere=True)
    assert response.status_code == 200 and response.json()["revoked_refresh_tokens"] >= 2
    for tokens in (phone, laptop):
        assert me(client, tokens["access"]).status_code == 401
        assert refresh(client, tokens["refresh"]).status_code == 401
    assert me(client, other_user["access"]).status_code == 200  # nobody else is logged out


@pytest.mark.parametrize("body,message", [
    ({"refresh": "not-a-token"}, "Not a valid refresh token"),
    ({"everywhere": "maybe"}, "valid boolean"),
])
def test_logout_bad_input_is_a_clear_400(client, body, message):
    tokens = login(client, UserFactory(password=PASSWORD))
    response = logout(client, tokens["access"], **body)
    assert response.status_code == 400 and message in str(response.json())
    assert me(client, tokens["access"]).status_code == 200  # nothing was revoked


def test_someone_elses_refresh_token_is_refused_and_stays_valid(client):
    mine, theirs = login(client, UserFactory(password=PASSWORD)), login(client, UserFactory(password=PASSWORD))
    response = logout(client, mine["access"], refresh=theirs["refresh"])
    assert response.status_code == 400 and "another user" in str(response.json())
    assert refresh(client, theirs["refresh"]).status_code == 200


def test_logout_needs_authentication(client):
    assert client.post("/api/v1/auth/logout/", {}, content_type="application/json").status_code == 401
