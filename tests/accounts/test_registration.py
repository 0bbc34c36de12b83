"""Self-registration is off unless the site settings open it; the API says so, and the schema documents it."""

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied

from accounts.services import REGISTRATION_CLOSED, user_register

pytestmark = pytest.mark.django_db

NEW = {"username": "newcomer", "password": "a-long-pass-word-987"}


def register(client, data=NEW):
    return client.post("/api/v1/auth/register/", data, content_type="application/json")


def test_registration_is_closed_by_default_with_a_clear_message(client):
    response = register(client)
    assert response.status_code == 403
    assert response.json() == {"detail": "Self-registration is turned off on this site; an administrator "
                                         "creates accounts."}
    assert get_user_model().objects.count() == 0


def test_a_closed_registration_reads_no_input(client):
    assert register(client, {"username": "x"}).status_code == 403


def test_the_site_setting_opens_and_closes_it(client, site):
    site(registration_open=True)
    assert register(client).status_code == 201
    site(registration_open=False)
    assert register(client, {**NEW, "username": "second"}).status_code == 403
    assert list(get_user_model().objects.values_list("username", flat=True)) == ["newcomer"]


def test_the_service_refuses_while_closed():
    with pytest.raises(PermissionDenied, match="Self-registration is turned off"):
        user_register(**NEW)


def test_the_schema_still_documents_registration_and_its_refusal(client):
    schema = client.get("/api/v1/schema/", {"format": "json"}).json()
    post = schema["paths"]["/api/v1/auth/register/"]["post"]
    assert {"201", "403"} <= set(post["responses"])
    assert REGISTRATION_CLOSED in post["responses"]["403"]["description"]


def test_the_sign_in_page_offers_no_registration(client):
    page = client.get("/accounts/login/").content.decode().lower()
    assert "register" not in page and "sign up" not in page
