"""Incidents: events of the cameras of one area within the area's window become one incident
(events.services.incidents_attach, called by event_records_store), shown on the event page and by
GET /api/v1/incidents/{id}/ as far as the user may view its events (docs/alerts.md, "Incidents").
"""

import threading
import uuid
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.db import connection, transaction
from guardian.shortcuts import assign_perm

from events.models import AnomalyEvent, Incident
from events.services import event_records_store, incidents_attach
from tests.factories import AreaFactory, CameraFactory, UserFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 22, 0, 0, tzinfo=dt_timezone.utc)


def record(camera, at=0, severity="high", **extra) -> dict:
    """A worker record of an event of ``camera`` that started ``at`` seconds after T0."""
    return {"id": str(uuid.uuid4()), "camera_id": camera.pk, "started_at": (T0 + timedelta(seconds=at)).isoformat(),
            "severity": severity, "peak_score": 0.9, "description": "", **extra}


def incident_of(rec) -> Incident | None:
    return AnomalyEvent.objects.select_related("incident").get(pk=rec["id"]).incident


@pytest.fixture
def yard():
    """An area of two cameras (window 300 s: the setting's default) and a camera of no area."""
    area = AreaFactory(name="Yard")
    return {"area": area, "gate": CameraFactory(name="Gate", area=area), "door": CameraFactory(name="Door", area=area),
            "lobby": CameraFactory(name="Lobby")}


# -- grouping -----------------------------------------------------------------------------------------------
def test_events_of_an_area_within_the_window_make_one_incident(yard):
    first, second = record(yard["gate"], 0, "medium"), record(yard["door"], 120, "high")
    event_records_store([first])
    event_records_store([second])
    incident = incident_of(first)
    assert incident is not None and incident_of(second) == incident
    incident.refresh_from_db()
    assert (incident.area, incident.event_count, incident.severity) == (yard["area"], 2, "high")
    assert (incident.opened_at, incident.last_event_at) == (T0, T0 + timedelta(seconds=120))
    assert incident.closes_at == T0 + timedelta(seconds=420)
    assert incident.state_at(T0 + timedelta(seconds=419)) == "open"
    assert incident.state_at(T0 + timedelta(seconds=420)) == "closed"


def test_the_window_runs_from_the_latest_event_and_a_later_one_opens_a_new_incident(yard):
    a, b, c = record(yard["gate"], 0), record(yard["door"], 250), record(yard["gate"], 500)  # each within 300 s
    late = record(yard["door"], 801)  # 301 s after the latest
    for r in (a, b, c, late):
        event_records_store([r])
    assert incident_of(a) == incident_of(b) == incident_of(c) != incident_of(late)
    assert incident_of(a).event_count == 3 and incident_of(late).event_count == 1
    assert Incident.objects.count() == 2


def test_the_window_is_the_areas_own(yard, settings):
    settings.INCIDENT_WINDOW_SECONDS = 30
    short = AreaFactory(name="Short")  # a new area gets the setting's window
    assert short.incident_window_seconds == 30
    gate = CameraFactory(area=short)
    a, b, c = record(gate, 0), record(gate, 30), record(gate, 61)
    for r in (a, b, c):
        event_records_store([r])
    assert incident_of(a) == incident_of(b) != incident_of(c)


def test_incidents_are_per_area_and_cameras_without_an_area_have_none(yard):
    other = AreaFactory(name="Car park")
    lot = CameraFactory(name="Lot", area=other)
    in_yard, in_lot, lobby = record(yard["gate"], 0), record(lot, 10), record(yard["lobby"], 20)
    event_records_store([in_yard, in_lot, lobby])  # one batch
    assert incident_of(in_yard).area == yard["area"] and incident_of(in_lot).area == other
    assert incident_of(lobby) is None
    assert Incident.objects.count() == 2


def test_one_batch_of_an_areas_events_makes_one_incident(yard):
    records = [record(yard["gate" if i % 2 else "door"], i * 40) for i in range(6)]
    event_records_store(list(reversed(records)))  # order in the batch does not matter
    assert {incident_of(r).pk for r in records} == {Incident.objects.get().pk}
    assert Incident.objects.get().event_count == 6


def test_storing_again_never_counts_twice_and_the_severity_follows_the_events(yard):
    first, second = record(yard["gate"], 0, "medium"), record(yard["door"], 60, "high")
    event_records_store([first, second])
    incident = incident_of(first)
    for _ in range(3):  # a replayed log, the description, the close: the same events stored again
        event_records_store([first, second])
    event_records_store([{**second, "severity": "critical", "description": "Someone forces the gate.",
                          "ended_at": (T0 + timedelta(seconds=90)).isoformat()}])
    incident.refresh_from_db()
    assert (incident.event_count, incident.severity) == (2, "critical")
    event_records_store([{**second, "severity": "low"}])  # the final decision lowered it: the highest left counts
    incident.refresh_from_db()
    assert (incident.event_count, incident.severity) == (2, "medium")
    assert Incident.objects.count() == 1


def test_a_replayed_old_event_does_not_join_todays_incident(yard):
    now = record(yard["gate"], 3600)
    event_records_store([now])
    old = record(yard["door"], 0)  # an hour earlier, stored late (a worker's log replayed)
    event_records_store([old])
    assert incident_of(old) != incident_of(now)


def test_camera_offline_events_stay_out_of_incidents(yard):
    offline = record(yard["gate"], 0, details={"kind": "camera_offline"})
    anomaly = record(yard["door"], 30)
    event_records_store([offline, anomaly])
    assert incident_of(offline) is None
    assert incident_of(anomaly).event_count == 1


def test_a_camera_that_left_its_area_keeps_its_events_incident(yard):
    first = record(yard["gate"], 0, "medium")
    event_records_store([first])
    incident = incident_of(first)
    yard["gate"].area = None
    yard["gate"].save()
    event_records_store([{**first, "severity": "critical"}])
    incident.refresh_from_db()
    assert incident_of(first) == incident and incident.severity == "critical"
    later = record(yard["gate"], 10)
    event_records_store([later])
    assert incident_of(later) is None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_two_batches_at_once_make_one_incident():
    """The second batch waits for the area's lock, then sees the incident the first one opened."""
    area = AreaFactory(name="Race")
    gate, door = CameraFactory(area=area), CameraFactory(area=area)
    first, second = record(gate, 0), record(door, 5)
    holding, done = threading.Event(), threading.Event()
    results = {}

    def store_second():
        try:
            holding.wait(5)
            event_records_store([second])
        finally:
            done.set()
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=store_second)
    with transaction.atomic():
        event_records_store([first])  # the incident is made and the area locked until this commits
        thread.start()
        holding.set()
        results["blocked"] = not done.wait(0.5)
    thread.join(10)
    assert results["blocked"], "the second batch did not wait for the area's lock"
    assert Incident.objects.count() == 1
    assert incident_of(first) == incident_of(second) and incident_of(first).event_count == 2


def test_incidents_attach_is_safe_to_call_twice(yard):
    a, b = record(yard["gate"], 0), record(yard["door"], 10)
    event_records_store([a, b])
    incident = incident_of(a)
    rows = [{**r, "id": uuid.UUID(r["id"]), "started_at": T0, "details": {}, "incident_id": None,
             "area_id": yard["area"].pk} for r in (a, b)]
    assert incidents_attach(rows=rows) == [incident.pk]  # read again under the lock: already attached
    incident.refresh_from_db()
    assert incident.event_count == 2 and Incident.objects.count() == 1


# -- what users see -------------------------------------------------------------------------------------------
@pytest.fixture
def seen(yard):
    """An incident of two events (Gate, Door) and the users: both cameras, Door only, neither."""
    gate_event, door_event = record(yard["gate"], 0, "medium"), record(yard["door"], 60, "high")
    event_records_store([gate_event, door_event])
    both, door_only, outsider = UserFactory(username="both"), UserFactory(username="dooronly"), \
        UserFactory(username="nobody")
    for camera in (yard["gate"], yard["door"]):
        assign_perm("view_camera", both, camera)
    assign_perm("view_camera", door_only, yard["door"])
    return {"gate_event": gate_event["id"], "door_event": door_event["id"], "incident": incident_of(gate_event),
            "both": both, "door_only": door_only, "outsider": outsider}


def test_the_event_api_names_the_incident(api_as, seen, yard):
    body = api_as(seen["both"]).get(f"/api/v1/events/{seen['gate_event']}/").json()
    assert body["incident"] == seen["incident"].pk
    lobby = record(yard["lobby"], 0)
    event_records_store([lobby])
    staff = UserFactory(username="boss", is_staff=True)
    assert api_as(staff).get(f"/api/v1/events/{lobby['id']}/").json()["incident"] is None


def test_the_incident_api_lists_only_the_events_the_user_may_view(api_as, seen):
    url = f"/api/v1/incidents/{seen['incident'].pk}/"
    body = api_as(seen["both"]).get(url).json()
    assert [e["id"] for e in body["events"]] == [seen["gate_event"], seen["door_event"]]
    assert (body["event_count"], body["severity"], body["state"]) == (2, "high", "closed")
    assert body["area"] == {"id": seen["incident"].area_id, "name": "Yard"}
    assert body["opened_at"].startswith("2026-03-01T22:00:00") and body["closes_at"].startswith("2026-03-01T22:06:00")

    mine = api_as(seen["door_only"]).get(url).json()
    assert [e["id"] for e in mine["events"]] == [seen["door_event"]]
    assert (mine["event_count"], mine["severity"]) == (1, "high")
    assert "Gate" not in str(mine) and seen["gate_event"] not in str(mine)

    refused = api_as(seen["outsider"]).get(url)
    assert refused.status_code == 404 and refused.json()["detail"]
    assert api_as(seen["both"]).get("/api/v1/incidents/999999/").status_code == 404
    assert api_as(seen["both"]).get(f"/api/v1/incidents/{2**70}/").status_code == 404
    from rest_framework.test import APIClient
    assert APIClient().get(url).status_code == 401


def test_the_event_page_links_the_incidents_other_events_the_user_may_view(client, seen):
    client.force_login(seen["both"])
    page = client.get(f"/events/{seen['door_event']}/").content.decode()
    assert f"Incident #{seen['incident'].pk} in area Yard: 2 events on cameras Gate, Door." in page
    assert f'href="/events/{seen["gate_event"]}/"' in page

    client.force_login(seen["door_only"])
    page = client.get(f"/events/{seen['door_event']}/").content.decode()
    assert f"Incident #{seen['incident'].pk} in area Yard: 1 event on camera Door." in page
    assert seen["gate_event"] not in page and "Gate" not in page
    assert client.get(f"/events/{seen['gate_event']}/").status_code == 403


def test_an_event_without_an_incident_has_no_incident_panel(client, yard):
    lobby = record(yard["lobby"], 0)
    event_records_store([lobby])
    staff = UserFactory(username="boss", is_staff=True)
    client.force_login(staff)
    page = client.get(f"/events/{lobby['id']}/").content.decode()
    assert 'id="incident"' not in page
