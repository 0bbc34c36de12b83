import uuid
from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from cameras.models import Area, Camera
from events.models import AnomalyEvent


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pass-word-123")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class AreaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Area

    name = factory.Sequence(lambda n: f"Area {n}")


class CameraFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Camera

    name = factory.Sequence(lambda n: f"Camera {n}")
    source_url = "demo://?seed=1"
    # The suite's cameras run motion alone (quick); the default is "objects" (settings.CAMERA_DEFAULTS),
    # which the tests of objects and the system tests of `make run` ask for.
    detector = "motion"


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AnomalyEvent

    id = factory.LazyFunction(uuid.uuid4)
    camera = factory.SubFactory(CameraFactory)
    started_at = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=1))
    ended_at = factory.LazyAttribute(lambda e: e.started_at + timedelta(seconds=5))
    peak_score = 0.9
    mean_score = 0.7
    severity = AnomalyEvent.Severity.MEDIUM
    description = "A person runs across the walkway."
    decision = factory.LazyFunction(lambda: {"severity": "medium", "actions": ["record", "notify"], "reasons": []})


def role_users(camera, prefix: str = "") -> dict:
    """The outsider / viewer / operator / staff set: the viewer may view ``camera``, the operator
    view and operate it, staff is staff, the outsider has no grant."""
    from guardian.shortcuts import assign_perm

    users = {role: UserFactory(username=f"{prefix}{role}", is_staff=role == "staff")
             for role in ("outsider", "viewer", "operator", "staff")}
    assign_perm("view_camera", users["viewer"], camera)
    for perm in ("view_camera", "operate_camera"):
        assign_perm(perm, users["operator"], camera)
    return users
