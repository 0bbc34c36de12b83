import pytest
from django.contrib.auth import get_user_model

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pass-word-123"


def test_register_then_token_then_me_then_refresh(client, site):
    site(registration_open=True)
    response = client.post("/api/v1/auth/register/", {"username": "ana", "password": "a-long-pass-phrase",
                                                      "email": "ana@example.com"}, content_type="application/json")
    assert response.status_code == 201, response.json()
    assert "password" not in response.json()
    tokens = client.post("/api/v1/auth/token/", {"username": "ana", "password": "a-long-pass-phrase"},
                         content_type="application/json").json()
    assert set(tokens) == {"access", "refresh"}
    me = client.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert me.status_code == 200 and me.json()["username"] == "ana" and me.json()["is_staff"] is False
    refreshed = client.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]},
                            content_type="application/json")
    assert refreshed.status_code == 200 and "access" in refreshed.json()


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"username": "bob", "password": "123"}, "password"),
        ({"username": "bob", "password": "password"}, "password"),
        ({"username": "b", "password": "a-long-pass-phrase"}, "username"),
        ({"username": "bob smith", "password": "a-long-pass-phrase"}, "username"),
        ({"password": "a-long-pass-phrase"}, "username"),
        ({"username": "bob", "password": "a-long-pass-phrase", "email": "not-an-email"}, "email"),
    ],
)
def test_register_rejects_bad_input_naming_the_field(client, site, payload, field):
    site(registration_open=True)
    response = client.post("/api/v1/auth/register/", payload, content_type="application/json")
    assert response.status_code == 400 and field in response.json()
    assert get_user_model().objects.count() == 0


def test_register_refuses_a_taken_username(client, site):
    site(registration_open=True)
    UserFactory(username="carol")
    response = client.post("/api/v1/auth/register/", {"username": "Carol", "password": "a-long-pass-phrase"},
                           content_type="application/json")
    assert response.status_code == 400 and "username" in response.json()


def test_wrong_password_is_401_and_bad_tokens_are_refused(client):
    UserFactory(username="dan")
    assert client.post("/api/v1/auth/token/", {"username": "dan", "password": "nope"},
                       content_type="application/json").status_code == 401
    assert client.get("/api/v1/auth/me/", HTTP_AUTHORIZATION="Bearer not.a.token").status_code == 401
    assert client.post("/api/v1/auth/token/refresh/", {"refresh": "garbage"},
                       content_type="application/json").status_code == 401
    assert client.get("/api/v1/auth/me/").status_code == 401


def test_token_login_is_throttled_after_repeated_failures(client, site):
    site(login_max_failures=3)
    UserFactory(username="eve")
    for _ in range(3):
        assert client.post("/api/v1/auth/token/", {"username": "eve", "password": "wrong"},
                           content_type="application/json").status_code == 401
    # Even the right password waits now.
    response = client.post("/api/v1/auth/token/", {"username": "eve", "password": PASSWORD},
                           content_type="application/json")
    assert response.status_code == 429 and "Too many failed sign-ins" in response.json()["detail"]
    assert int(response["Retry-After"]) > 0


def test_session_login_page_logout_and_throttle(client, site):
    site(login_max_failures=2)
    UserFactory(username="fay")
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/").status_code == 302  # the dashboard needs a login
    response = client.post("/accounts/login/", {"username": "fay", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302
    for _ in range(2):
        assert client.post("/accounts/login/", {"username": "fay", "password": "bad"}).status_code == 200
    throttled = client.post("/accounts/login/", {"username": "fay", "password": PASSWORD})
    assert throttled.status_code == 429 and b"Too many failed sign-ins" in throttled.content
