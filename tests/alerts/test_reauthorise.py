"""Every attempt to send an alert checks again that the recipient may still view the camera.

Routing checks the permission when the event is stored; a retry (or the first attempt, queued on
commit) may come later, after an administrator revoked the recipient's access. Then nothing about
that camera is sent: its events are withheld and a delivery left with none is cancelled, saying why.
Real transports throughout: a local HTTP receiver, Django's test mailbox, the channel layer.
"""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.models import Group
from django.core import mail
from guardian.shortcuts import assign_perm, remove_perm

from alerts.models import AlertItem, Delivery
from alerts.services import alert_delivery_retry, alerts_requeue_overdue
from cameras.groups import user_group
from tests.alerts.conftest import make_channel, make_rule
from tests.factories import CameraFactory, EventFactory, UserFactory

pytestmark = pytest.mark.django_db


def revoke(user, camera):
    remove_perm("view_camera", user, camera)


def assert_cancelled(delivery: Delivery, camera) -> None:
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.CANCELLED and delivery.sent_at is None
    assert "may no longer view camera" in delivery.error and str(camera.pk) in delivery.error
    assert delivery.next_attempt_at is None
    assert set(delivery.items.values_list("state", flat=True)) == {AlertItem.State.WITHHELD}


def test_a_retry_after_the_access_was_revoked_sends_nothing(camera, owner, hook, route, run_queued, alert_queue,
                                                            settings):
    settings.ALERT_RETRY_BASE_SECONDS = 0.01
    settings.ALERT_MAX_ATTEMPTS = 5
    hook.statuses = [500]  # the first attempt fails: a retry is queued
    channel = make_channel(owner, kind="webhook", url=hook.url())
    make_rule(owner, channels=[channel])
    route(EventFactory(camera=camera, severity="critical"))
    run_queued(limit=1)
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.PENDING and alert_queue  # the retry waits

    revoke(owner, camera)
    assert run_queued() == ["done"]

    assert [r["status"] for r in hook.requests] == [500]  # the retry posted nothing
    assert_cancelled(delivery, camera)
    assert alert_queue == []  # and queued no further attempt


def test_revoked_between_routing_and_the_first_attempt_no_email(camera, owner, route, run_queued):
    channel = make_channel(owner, kind="email")
    make_rule(owner, channels=[channel])
    route(EventFactory(camera=camera, severity="high"))
    revoke(owner, camera)
    run_queued()
    assert mail.outbox == []
    assert_cancelled(Delivery.objects.get(), camera)


def test_a_lost_attempt_requeued_by_the_beat_is_checked_too(camera, owner, route, run_queued, alert_queue,
                                                             django_capture_on_commit_callbacks):
    channel = make_channel(owner, kind="email")
    make_rule(owner, channels=[channel])
    route(EventFactory(camera=camera, severity="critical"))
    alert_queue.clear()  # the broker lost the task
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=delivery.created_at - timedelta(minutes=5))
    revoke(owner, camera)
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts_requeue_overdue() == [delivery.pk]
    run_queued()
    assert mail.outbox == []
    assert_cancelled(delivery, camera)


def test_an_administrators_retry_of_a_failed_delivery_is_checked_too(camera, owner, route, run_queued,
                                                                     django_capture_on_commit_callbacks):
    channel = make_channel(owner, kind="email")
    make_rule(owner, channels=[channel])
    route(EventFactory(camera=camera, severity="critical"))
    run_queued()
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED, error="SMTP down", sent_at=None)
    mail.outbox.clear()
    revoke(owner, camera)
    with django_capture_on_commit_callbacks(execute=True):
        alert_delivery_retry(delivery=delivery)
    run_queued()
    assert mail.outbox == []
    assert_cancelled(delivery, camera)


def test_in_app_notification_of_a_revoked_camera_is_not_pushed(camera, owner, route, run_queued):
    make_rule(owner, notify_in_app=True)
    layer = get_channel_layer()
    name = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group(owner.pk), name)
    try:
        route(EventFactory(camera=camera, severity="critical"))
        revoke(owner, camera)
        run_queued()
        # A marker sent after the attempt: the first thing the socket receives.
        async_to_sync(layer.group_send)(user_group(owner.pk), {"type": "marker"})
        first = async_to_sync(layer.receive)(name)
    finally:
        async_to_sync(layer.group_discard)(user_group(owner.pk), name)
    assert first["type"] == "marker"
    delivery = Delivery.objects.get()
    assert delivery.medium == Delivery.Medium.IN_APP
    assert_cancelled(delivery, camera)


def test_group_channel_after_the_groups_access_was_revoked(camera, route, run_queued):
    team = Group.objects.create(name="night shift")
    team.user_set.add(UserFactory())
    assign_perm("view_camera", team, camera)
    channel = make_channel(group=team, kind="email", email="night@example.com")
    make_rule(group=team, channels=[channel])
    route(EventFactory(camera=camera, severity="critical"))
    remove_perm("view_camera", team, camera)
    run_queued()
    assert mail.outbox == []
    delivery = Delivery.objects.get()
    assert_cancelled(delivery, camera)
    assert "recipient group" in delivery.error


def test_a_digest_sends_only_the_cameras_still_viewable(camera, owner, route, digest, run_queued):
    vault = CameraFactory(name="Vault")
    assign_perm("view_camera", owner, vault)
    channel = make_channel(owner, kind="email")
    make_rule(owner, channels=[channel])
    kept = EventFactory(camera=camera, severity="medium", description="A cat crosses.")
    dropped = EventFactory(camera=vault, severity="medium", description="The vault door opens.")
    route(kept, dropped)
    assert len(digest()) == 1  # both viewable when the digest was built
    revoke(owner, vault)
    run_queued()

    [message] = mail.outbox
    assert "A cat crosses." in message.body
    assert "vault door" not in message.body and "Vault" not in message.body + message.subject
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.SENT
    states = dict(delivery.items.values_list("event_id", "state"))
    assert states == {kept.pk: AlertItem.State.DELIVERED, dropped.pk: AlertItem.State.WITHHELD}


def test_earlier_suppressed_alerts_of_a_revoked_camera_are_not_reported(camera, owner, route, run_queued):
    vault = CameraFactory(name="Vault")
    assign_perm("view_camera", owner, vault)
    channel = make_channel(owner, kind="email")
    make_rule(owner, channels=[channel])
    route(EventFactory(camera=vault, severity="high"))
    run_queued()
    route(EventFactory(camera=vault, severity="high"))  # suppressed: reported by the next message after the window
    first = Delivery.objects.get()
    Delivery.objects.filter(pk=first.pk).update(
        created_at=first.created_at - timedelta(seconds=settings.ALERT_SUPPRESS_SECONDS + 1))
    revoke(owner, vault)
    mail.outbox.clear()

    route(EventFactory(camera=camera, severity="high", description="Someone at the gate."))
    run_queued()

    [message] = mail.outbox
    assert "Someone at the gate." in message.body and "Vault" not in message.body
    latest = Delivery.objects.exclude(pk=first.pk).get()
    assert latest.status == Delivery.Status.SENT and latest.reported_count == 0
