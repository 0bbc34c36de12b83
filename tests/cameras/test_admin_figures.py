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


def test_backend_fields_are_choice_lists_of_the_known_backends(admin_client):
    from cameras.backends import backend_names

    html = admin_client.get("/admin/cameras/camera/add/").content.decode()
    for field, kind in (("detector", "detector"), ("vlm_backend", "vlm"), ("agent_policy", "agent")):
        select = html.split(f'name="{field}"', 1)[1].split("</select>", 1)[0]
        assert html.count(f'<select name="{field}"') == 1, field  # a list, not a text box
        for name in backend_names(kind):
            assert f'value="{name}"' in select, (field, name)
    # An unknown name sent anyway is refused, naming the field.
    page = admin_client.post("/admin/cameras/camera/add/", {"name": "x", "source_url": "demo://", "detector": "bogus"})
    assert page.status_code == 200 and "Select a valid choice" in page.content.decode()
