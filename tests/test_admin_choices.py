"""The admin offers choice lists where a free text would only invite typos: time zones."""

import pytest

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_time_zones_are_chosen_from_a_list(admin_client):
    user = UserFactory(username="seoul")
    page = admin_client.get(f"/admin/accounts/user/{user.pk}/change/").content.decode()
    assert '<select name="time_zone"' in page and '<option value="Asia/Seoul">' in page
    rule_page = admin_client.get("/admin/alerts/alertrule/add/").content.decode()
    assert '<select name="time_zone"' in rule_page and "The owner&#x27;s time zone" in rule_page
    data = {"username": "seoul", "password": user.password, "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
            "language": user.language, "time_zone": "Mars/Olympus", "is_active": "on"}
    response = admin_client.post(f"/admin/accounts/user/{user.pk}/change/", data)
    assert response.status_code == 200 and "Mars/Olympus is not one of the available choices" in response.content.decode()
    response = admin_client.post(f"/admin/accounts/user/{user.pk}/change/", {**data, "time_zone": "Asia/Seoul"})
    assert response.status_code == 302, response.content.decode()[:2000]
    user.refresh_from_db()
    assert user.time_zone == "Asia/Seoul"
