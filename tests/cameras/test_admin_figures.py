"""The admin shows each camera's live figures, from the figures the worker publishes."""

import pytest

from tests.cameras.test_figures import published  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


def test_the_camera_list_and_page_show_live_figures(client, staff, published):  # noqa: F811
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    listing = client.get("/admin/cameras/camera/").content.decode()
    assert "4.9 · 50 ms" in listing  # fps · last frame lag · detector p95
    page = client.get(f"/admin/cameras/camera/{published.pk}/change/").content.decode()
    assert "Live figures" in page and "figures-test-" in page and "<th>Live viewers</th>" in page
