"""The dashboard's arming badge and switch, rendered by the server (the browser test: tests/pages/test_arming.py)."""

import pytest
from guardian.shortcuts import assign_perm

from arming.services import arming_set
from tests.factories import AreaFactory, CameraFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_each_tile_shows_its_mode_and_operators_get_a_switch(client, django_assert_max_num_queries):
    area = AreaFactory()
    gate, yard = CameraFactory(name="Gate", area=area), CameraFactory(name="Yard")
    operator, viewer = UserFactory(username="op"), UserFactory(username="view")
    for camera in (gate, yard):
        assign_perm("view_camera", viewer, camera)
        assign_perm("view_camera", operator, camera)
    assign_perm("operate_camera", operator, gate)
    arming_set(area=area, mode="home", by=operator)

    client.force_login(operator)
    page = client.get("/").content.decode()
    assert f'data-arming-camera="{gate.pk}" data-mode="home" data-source="area"' in page
    assert f'data-arming-camera="{yard.pk}" data-mode="armed" data-source="default"' in page
    assert page.count('data-role="arming-select"') == 1  # the gate only: the yard is not theirs to operate
    assert f'action="/api/v1/cameras/{gate.pk}/arming/"' in page
    assert 'id="arming-labels"' in page and "js/arming.js" in page
    assert 'data-role="conditions"' in page  # the tile header keeps the camera's conditions
    assert page.count("data-camera=") == 2  # one per tile: dashboard.js finds the tiles by it

    client.force_login(viewer)
    page = client.get("/").content.decode()
    assert page.count('data-role="arming-badge"') == 2 and 'data-role="arming-select"' not in page
