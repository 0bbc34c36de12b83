"""Event kinds (events/kinds.py): scene, camera_health, camera_offline; and what is wrong with a camera now."""

import pytest
from django.utils import timezone

from events.kinds import EVENT_KINDS, event_kind
from events.selectors import camera_conditions_for_user
from tests.factories import CameraFactory, EventFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("details,kind", [
    ({}, "scene"), (None, "scene"), ({"kind": "loitering"}, "scene"), ({"kind": "camera_health"}, "camera_health"),
    ({"kind": "camera_offline"}, "camera_offline"), ("not a dict", "scene"),
])
def test_the_kind_of_an_event_comes_from_its_details(details, kind):
    assert event_kind(details) == kind and kind in EVENT_KINDS


def test_open_health_events_are_the_cameras_conditions_for_who_may_view_it(camera, owner, viewer, outsider):
    other = CameraFactory()
    covered = EventFactory(camera=camera, details={"kind": "camera_health", "condition": "covered"}, ended_at=None)
    EventFactory(camera=camera, details={"kind": "camera_health", "condition": "dark"}, ended_at=timezone.now())
    EventFactory(camera=camera, details={"kind": "camera_offline"}, ended_at=None)  # its state says that
    EventFactory(camera=camera, ended_at=None)  # a scene anomaly
    EventFactory(camera=other, details={"kind": "camera_health", "condition": "moved"}, ended_at=None)
    for user in (owner, viewer):
        conditions = camera_conditions_for_user(user, [camera.pk, other.pk])
        assert conditions == {camera.pk: [{"condition": "covered", "event": covered.pk,
                                           "since": covered.started_at}]}
    assert camera_conditions_for_user(outsider, [camera.pk, other.pk]) == {}
