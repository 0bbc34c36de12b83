"""One alert thread per incident (docs/alerts.md, "Incidents"): the first event of an incident is a full
alert; the later ones, on the area's other cameras, are ``incident`` follow-ups to it (email reply,
webhook ``follow_up_of``, in-app update), per slot (channel, or a user's in-app notifications).

Events are stored as the worker stores them (``event_records_store``: the incident is made, then the
``events_stored`` announcement routes them) and sent through real transports: a local HTTP receiver,
Django's test mailbox, the channel layer.
"""

import json
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core import mail
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from alerts.models import AlertItem, Delivery
from cameras.groups import user_group
from events.models import AnomalyEvent, Incident
from tests.alerts.conftest import make_channel, make_rule
from tests.factories import AreaFactory, CameraFactory, UserFactory

pytestmark = pytest.mark.django_db


def opened(camera, at=0, severity="high", **extra) -> dict:
    """The record a worker emits when an episode opens ``at`` seconds from now (no description yet)."""
    started = timezone.now() - timedelta(seconds=600) + timedelta(seconds=at)
    return {"id": str(uuid.uuid4()), "camera_id": camera.pk, "started_at": started.isoformat(),
            "severity": severity, "peak_score": 0.9, "description": "", "labels": ["person"],
            "details": {"detector": "motion", "objects": [{"id": 1, "track": 1, "label": "person"}]}, **extra}


@pytest.fixture
def site():
    """Yard (Gate, Door), Roof (Antenna), and a guard who may view all three."""
    yard, roof = AreaFactory(name="Yard"), AreaFactory(name="Roof")
    cams = {"gate": CameraFactory(name="Gate", area=yard), "door": CameraFactory(name="Door", area=yard),
            "antenna": CameraFactory(name="Antenna", area=roof)}
    guard = UserFactory(username="guard")
    for camera in cams.values():
        assign_perm("view_camera", guard, camera)
    return {"yard": yard, "roof": roof, "guard": guard, **cams}


def listen(user):
    """Read every ``notification`` the user's open WebSockets got (once, at the end of a test)."""
    layer = get_channel_layer()
    name = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group(user.pk), name)

    async def drain():
        import asyncio

        got = []
        while True:
            try:
                got.append(await asyncio.wait_for(layer.receive(name), 0.5))
            except asyncio.TimeoutError:
                return [m["payload"] for m in got]

    return lambda: async_to_sync(drain)()


@pytest.fixture
def everywhere(site, hook):
    """The guard's email and webhook channels and in-app notifications, for every event."""
    channels = {"email": make_channel(site["guard"], kind="email", email="guard@example.com"),
                "webhook": make_channel(site["guard"], kind="webhook", url=hook.url("/hook"))}
    make_rule(site["guard"], channels=list(channels.values()), notify_in_app=True)
    return channels


def by_medium(**filters) -> dict:
    return {d.medium: d for d in Delivery.objects.filter(**filters)}


def test_two_cameras_of_an_area_within_the_window_make_one_thread_per_slot(site, everywhere, hook, store,
                                                                            run_queued):
    pushes = listen(site["guard"])
    first_record = opened(site["gate"], 0)
    store(first_record)
    run_queued()
    second_record = opened(site["door"], 60, description="A man climbs over the fence.")
    store(second_record)
    run_queued()

    incident = Incident.objects.get()
    assert incident.event_count == 2
    first = by_medium(mode="immediate")
    assert sorted(first) == ["email", "in_app", "webhook"]  # one full alert per slot, about the first event
    assert {d.events.get().pk for d in first.values()} == {uuid.UUID(first_record["id"])}
    joined = by_medium(mode="follow_up")
    assert sorted(joined) == ["email", "in_app", "webhook"]  # and one incident follow-up per slot
    for medium, delivery in joined.items():
        assert delivery.follow_up_kind == "incident" and delivery.follow_up_of_id == first[medium].pk
        assert delivery.status == "sent" and delivery.events.get().pk == uuid.UUID(second_record["id"])
    line = "Also on camera Door (area Yard): high – A man climbs over the fence."

    # Email: a reply to the first alert, saying what happened on the other camera, with its link.
    assert len(mail.outbox) == 2
    alert, reply = mail.outbox
    assert alert.subject.startswith("[HIGH] Gate: ")
    assert reply.subject == f"Re: {alert.subject}"
    assert reply.extra_headers["In-Reply-To"] == alert.message()["Message-ID"]
    assert reply.body.startswith(line) and f"/events/{second_record['id']}/" in reply.body

    # Webhook: a follow-up naming the alert it follows, the event and its incident.
    hooked = [json.loads(r["body"]) for r in hook.requests]
    assert [p["type"] for p in hooked] == ["alert", "follow_up"]
    follow = hooked[1]
    assert follow["kind"] == "incident" and follow["follow_up_of"] == first["webhook"].pk
    assert follow["thread"] == first["webhook"].pk and follow["event"]["id"] == second_record["id"]
    assert follow["incident"] == {"id": incident.pk, "area": site["yard"].pk, "area_name": "Yard"}
    assert follow["event"]["incident"] == incident.pk and follow["text"].startswith(line)

    # In-app: the first notification, then an update of the same one.
    notification, update = pushes()
    assert notification["delivery"] == first["in_app"].pk and "update" not in notification
    assert update["delivery"] == first["in_app"].pk and update["update"] is True and update["kind"] == "incident"
    assert update["event"] == second_record["id"] and update["title"] == line
    assert update["incident"]["id"] == incident.pk


def test_what_a_joined_event_brings_later_follows_in_the_thread(site, everywhere, hook, store, run_queued):
    pushes = listen(site["guard"])
    store(opened(site["gate"], 0))
    run_queued()
    door = opened(site["door"], 30)
    store(door)
    run_queued()
    store({**door, "description": "A man climbs over the fence."})  # the description arrives later
    run_queued()
    store({**door, "description": "A man climbs over the fence."})  # stored again: nothing more
    run_queued()

    joined = by_medium(mode="follow_up", follow_up_kind="incident")
    described = by_medium(mode="follow_up", follow_up_kind="description")
    assert sorted(described) == ["email", "in_app", "webhook"]
    assert Delivery.objects.filter(mode="immediate").count() == 3
    for medium, delivery in described.items():
        assert delivery.follow_up_of_id == joined[medium].pk and delivery.status == "sent"
    head = by_medium(mode="immediate")
    alert, incident_reply, description_reply = mail.outbox
    assert incident_reply.subject == description_reply.subject == f"Re: {alert.subject}"
    assert description_reply.body.startswith("Update: A man climbs over the fence.")
    assert description_reply.extra_headers["In-Reply-To"] == incident_reply.message()["Message-ID"]
    assert alert.message()["Message-ID"] in description_reply.extra_headers["References"]
    assert "Severity now" not in description_reply.body
    *_, update = pushes()
    assert update["delivery"] == head["in_app"].pk and update["kind"] == "description"  # the head's notification
    assert len(hook.requests) == 3


def test_cameras_of_different_areas_get_two_alerts(site, everywhere, store, run_queued):
    store(opened(site["gate"], 0), opened(site["antenna"], 30))
    run_queued()
    assert Incident.objects.count() == 2
    assert Delivery.objects.filter(mode="immediate").count() == 6 and not Delivery.objects.filter(mode="follow_up")
    assert sorted(m.subject.split(":")[0] for m in mail.outbox) == ["[HIGH] Antenna", "[HIGH] Gate"]


def test_events_outside_the_window_get_two_alerts(site, everywhere, store, run_queued):
    site["yard"].incident_window_seconds = 60
    site["yard"].save()
    store(opened(site["gate"], 0))
    store(opened(site["door"], 61))
    run_queued()
    assert Incident.objects.count() == 2
    assert Delivery.objects.filter(mode="immediate").count() == 6 and not Delivery.objects.filter(mode="follow_up")


def test_a_camera_without_an_area_is_alerted_on_its_own(site, everywhere, store, run_queued):
    lobby = CameraFactory(name="Lobby")
    assign_perm("view_camera", site["guard"], lobby)
    store(opened(site["gate"], 0), opened(lobby, 10))
    run_queued()
    assert AnomalyEvent.objects.get(camera=lobby).incident is None
    assert Delivery.objects.filter(mode="immediate").count() == 6


def test_an_event_raising_the_incident_to_critical_is_a_full_alert(site, everywhere, store, run_queued):
    store(opened(site["gate"], 0, "high"))
    run_queued()
    critical = opened(site["door"], 30, "critical", description="Someone forces the door.")
    store(critical)
    run_queued()
    assert not Delivery.objects.filter(mode="follow_up")
    raised = Delivery.objects.filter(mode="immediate", items__event_id=critical["id"])
    assert raised.count() == 3 and {d.items.get().severity for d in raised} == {"critical"}
    assert mail.outbox[-1].subject.startswith("[CRITICAL] Door: ")
    # Once told critical, another critical event of the incident joins the thread.
    again = opened(site["gate"], 60, "critical", description="A second man at the gate.",
                   details={"kind": "second"})
    store(again)
    run_queued()
    assert Delivery.objects.filter(mode="follow_up", follow_up_kind="incident",
                                   items__event_id=again["id"]).count() == 3


def test_a_joined_event_raised_to_critical_later_is_a_full_alert(site, everywhere, store, run_queued):
    store(opened(site["gate"], 0, "high"))
    run_queued()
    door = opened(site["door"], 30, "high")
    store(door)
    run_queued()
    assert Delivery.objects.filter(mode="follow_up", follow_up_kind="incident").count() == 3
    store({**door, "severity": "critical", "description": "He has a crowbar."})
    run_queued()
    raised = Delivery.objects.filter(mode="immediate", items__event_id=door["id"], items__severity="critical")
    assert raised.count() == 3


def test_routing_the_same_event_twice_joins_the_thread_once(site, everywhere, store, run_queued,
                                                            django_capture_on_commit_callbacks):
    from alerts.services import alerts_route_events

    store(opened(site["gate"], 0))
    run_queued()
    door = opened(site["door"], 30)
    store(door)
    with django_capture_on_commit_callbacks(execute=True):
        alerts_route_events(event_ids=[door["id"]])  # a task delivered twice
    store(door)  # a record re-emitted
    run_queued()
    assert Delivery.objects.filter(mode="follow_up", follow_up_kind="incident").count() == 3
    assert len(mail.outbox) == 2


def test_the_outsider_gets_nothing(site, everywhere, store, run_queued):
    outsider = UserFactory(username="outsider")
    make_rule(outsider, channels=[make_channel(outsider, kind="email", email="out@example.com")],
              notify_in_app=True)
    pushes = listen(outsider)
    store(opened(site["gate"], 0))
    store(opened(site["door"], 30))
    run_queued()
    assert not Delivery.objects.filter(recipient=outsider) and not AlertItem.objects.filter(recipient=outsider)
    assert all(m.to != ["out@example.com"] for m in mail.outbox)
    assert pushes() == []


def test_a_user_who_may_view_only_the_second_camera_gets_a_full_alert_and_never_sees_the_first(
        site, everywhere, store, run_queued, api_as, client):
    door_guard = UserFactory(username="doorguard")
    assign_perm("view_camera", door_guard, site["door"])
    make_rule(door_guard, channels=[make_channel(door_guard, kind="email", email="door@example.com")],
              notify_in_app=True)
    pushes = listen(door_guard)
    gate = opened(site["gate"], 0, description="A man at the gate.")
    door = opened(site["door"], 30, description="A man climbs over the fence.")
    store(gate)
    run_queued()
    store(door)
    run_queued()

    # Their thread starts with the door's event: a full alert, by email and in-app.
    mine = Delivery.objects.filter(recipient=door_guard)
    assert sorted((d.mode, d.medium) for d in mine) == [("immediate", "email"), ("immediate", "in_app")]
    assert {d.items.get().event_id for d in mine} == {uuid.UUID(door["id"])}
    [letter] = [m for m in mail.outbox if m.to == ["door@example.com"]]
    assert letter.subject.startswith("[HIGH] Door: ") and "Gate" not in letter.body + letter.subject
    assert "A man at the gate." not in letter.body
    [notification] = pushes()
    assert notification["event"] == door["id"] and "Gate" not in json.dumps(notification)
    # The guard (both cameras) had one thread: the door's event joined it.
    assert Delivery.objects.filter(recipient=site["guard"], mode="follow_up", follow_up_kind="incident").count() == 3

    # The incident as the API and the page show it to them: the door's event only.
    incident = Incident.objects.get()
    body = api_as(door_guard).get(f"/api/v1/incidents/{incident.pk}/").json()
    assert [e["id"] for e in body["events"]] == [door["id"]] and "Gate" not in json.dumps(body)
    client.force_login(door_guard)
    page = client.get(f"/events/{door['id']}/").content.decode()
    assert "1 event on camera Door" in page and gate["id"] not in page and "Gate" not in page
    assert api_as(door_guard).get(f"/api/v1/events/{gate['id']}/").status_code == 404


def test_an_incident_follow_up_is_withheld_when_access_to_its_camera_is_revoked(site, everywhere, store,
                                                                                 run_queued, hook):
    store(opened(site["gate"], 0))
    run_queued()
    store(opened(site["door"], 30))  # routed and queued...
    remove_perm("view_camera", site["guard"], site["door"])  # ...then access to the door's camera goes
    run_queued()
    joined = Delivery.objects.filter(mode="follow_up", follow_up_kind="incident")
    assert joined.count() == 3
    assert {d.status for d in joined} == {"cancelled"} and all("may no longer view" in d.error for d in joined)
    assert len(mail.outbox) == 1 and len(hook.requests) == 1


def test_without_access_to_the_first_camera_a_follow_up_is_no_reply_to_its_alert(site, store, run_queued):
    channel = make_channel(site["guard"], kind="email", email="guard@example.com")
    make_rule(site["guard"], channels=[channel])
    store(opened(site["gate"], 0))
    run_queued()
    store(opened(site["door"], 30))  # joins the thread headed by the gate's alert...
    remove_perm("view_camera", site["guard"], site["gate"])  # ...whose camera the guard may no longer view
    run_queued()
    alert, follow = mail.outbox
    assert follow.subject.startswith("[HIGH] Door: ") and "Gate" not in follow.subject
    assert follow.body.startswith("Also on camera Door (area Yard): high")


def test_a_follow_up_waits_for_the_first_alert_of_the_thread(site, hook, store, run_queued, alert_queue,
                                                             settings):
    settings.ALERT_RETRY_BASE_SECONDS = 0.05
    hook.statuses = [500]  # the thread's first alert fails once
    make_rule(site["guard"], channels=[make_channel(site["guard"], kind="webhook", url=hook.url())])
    store(opened(site["gate"], 0))
    run_queued(limit=1)
    store(opened(site["door"], 30))
    run_queued()
    assert [json.loads(r["body"])["type"] for r in hook.requests] == ["alert", "alert", "follow_up"]
    assert [r["status"] for r in hook.requests] == [500, 200, 200]


def test_a_digest_lists_an_incidents_events_together(site, store, digest, run_queued):
    channel = make_channel(site["guard"], kind="email", email="guard@example.com")
    make_rule(site["guard"], channels=[channel])
    lobby = CameraFactory(name="Lobby")
    assign_perm("view_camera", site["guard"], lobby)
    store(opened(site["gate"], 0, "medium"), opened(lobby, 10, "medium"), opened(site["door"], 20, "medium"))
    assert not Delivery.objects.exclude(mode="digest")  # medium: the digest, incident or not
    digest()
    run_queued()
    [letter] = mail.outbox
    incident = Incident.objects.get()
    lines = letter.body.splitlines()
    header = lines.index(f"- Incident #{incident.pk} in area Yard: 2 events")
    assert lines[header + 1].startswith("  - [MEDIUM] Gate at ")
    assert lines[header + 3].startswith("  - [MEDIUM] Door at ")
    assert any(line.startswith("- [MEDIUM] Lobby at ") for line in lines)
