"""Issue 18, "evidence that can be scanned": reopening and reclassifying closed events, operators' notes, and
bulk resolve / false alarm (services and API). The pages are tests/pages/test_evidence.py."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import AuditEntry
from events import services, signals
from events.models import AnomalyEvent, EventNote
from events.services import event_note_add, event_reopen, event_resolve, events_resolve_many
from tests.factories import CameraFactory, EventFactory
from tests.pages.conftest import grant

pytestmark = pytest.mark.django_db


@pytest.fixture
def announced():
    """The false alarms announced (events.signals.event_false_alarm), in order."""
    seen = []

    def receiver(sender, event_id, user_id=None, **kwargs):
        seen.append(event_id)

    signals.event_false_alarm.connect(receiver, weak=False)
    yield seen
    signals.event_false_alarm.disconnect(receiver)


@pytest.fixture
def pushed(monkeypatch):
    """The event ids pushed live after commit (events_broadcast), one list per push."""
    calls = []
    monkeypatch.setattr(services, "events_broadcast", lambda *, event_ids: calls.append(list(event_ids)))
    return calls


def closed(camera, status="resolved", by=None):
    now = timezone.now()
    return EventFactory(camera=camera, status=status, acknowledged_by=by, acknowledged_at=now,
                        resolved_by=by, resolved_at=now)


def audit(event, action):
    return list(AuditEntry.objects.filter(target_type="anomalyevent", target_id=str(event.pk), action=action))


# -- the single-row rule ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("status,acknowledge,resolve,false_alarm,reopen", [
    ("new", True, True, True, False),
    ("acknowledged", False, True, True, False),
    ("resolved", False, False, True, True),      # reclassified as a false alarm, or reopened
    ("false_alarm", False, True, False, True),   # reclassified as resolved, or reopened
])
def test_the_single_row_rule(status, acknowledge, resolve, false_alarm, reopen):
    event = AnomalyEvent(status=status)
    assert event.can_transition_to("acknowledged") is acknowledge
    assert event.can_transition_to("resolved") is resolve
    assert event.can_transition_to("false_alarm") is false_alarm
    assert event.can_transition_to("acknowledged", reopen=True) is reopen
    assert event.can_transition_to("new") is False and event.can_transition_to("new", reopen=True) is False


# -- reopen ------------------------------------------------------------------------------------------------
def test_reopen_goes_back_to_acknowledged_audited_pushed_with_its_note(camera, owner, pushed,
                                                                       django_capture_on_commit_callbacks):
    event = closed(camera, "false_alarm", by=owner)
    with django_capture_on_commit_callbacks(execute=True):
        reopened = event_reopen(event=event, by=owner, note="  The gate was forced after all.  ")
    event.refresh_from_db()
    assert reopened.status == event.status == "acknowledged"
    assert event.resolved_by is None and event.resolved_at is None
    assert event.acknowledged_by == owner  # who looked at it first is kept
    (entry,) = audit(event, "event.reopen")
    assert entry.actor == owner and entry.details == {"reopened_from": "false_alarm"} and entry.camera_id == camera.pk
    assert set(entry.changes) == {"status", "resolved_by", "resolved_at"}
    (note,) = EventNote.objects.filter(event=event)
    assert note.text == "The gate was forced after all." and note.author == owner and note.author_name == "owner"
    assert len(audit(event, "event.note")) == 1
    assert pushed == [[event.pk]]


def test_reopen_of_an_open_event_is_refused_naming_the_status(camera, owner):
    for status in ("new", "acknowledged"):
        event = EventFactory(camera=camera, status=status)
        with pytest.raises(ValidationError) as caught:
            event_reopen(event=event, by=owner, note="why")
        assert "status" in caught.value.message_dict
        assert not EventNote.objects.filter(event=event).exists()  # nothing of a refused action is kept
        assert not audit(event, "event.reopen")


def test_reopen_saves_only_the_changed_fields(camera, owner):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    event = closed(camera, by=owner)
    with CaptureQueriesContext(connection) as queries:
        event_reopen(event=event, by=owner)
    update = next(q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "events_anomalyevent"'))
    assert '"acknowledged_by_id"' not in update and '"description"' not in update and '"details"' not in update


# -- reclassify --------------------------------------------------------------------------------------------
def test_resolved_to_false_alarm_and_back_announces_the_false_alarm_once(camera, owner, announced, pushed,
                                                                        django_capture_on_commit_callbacks):
    event = EventFactory(camera=camera)
    with django_capture_on_commit_callbacks(execute=True):
        event_resolve(event=event, by=owner)                       # resolved: nothing to learn
        event_resolve(event=event, by=owner, false_alarm=True)     # reclassified: learned once
        event_resolve(event=event, by=owner, false_alarm=True)     # again: no change, no announcement
        event_resolve(event=event, by=owner, false_alarm=False)    # back to resolved: nothing announced
    event.refresh_from_db()
    assert event.status == "resolved" and event.resolved_by == owner
    assert announced == [event.pk]
    assert [e.details for e in audit(event, "event.false_alarm")] == [{"reclassified_from": "resolved"}]
    assert sorted(e.details.get("reclassified_from", "") for e in audit(event, "event.resolve")) == ["", "false_alarm"]
    assert len(pushed) == 3  # one per change


def test_a_false_alarm_marked_twice_over_time_keeps_one_feedback_job(camera, owner, django_capture_on_commit_callbacks):
    """False alarm -> resolved -> false alarm: announced twice, but the learning is idempotent per event."""
    from cameras.models import LearningJob

    event = EventFactory(camera=camera)
    with django_capture_on_commit_callbacks(execute=True):
        event_resolve(event=event, by=owner, false_alarm=True)
        event_resolve(event=event, by=owner, false_alarm=False)
        event_resolve(event=event, by=owner, false_alarm=True)
    assert LearningJob.objects.filter(event=event, kind="feedback").count() == 1


def test_resolve_as_it_already_is_keeps_a_given_note(camera, owner):
    event = closed(camera, by=owner)
    event_resolve(event=event, by=owner, note="Confirmed with the guard.")
    assert [n.text for n in EventNote.objects.filter(event=event)] == ["Confirmed with the guard."]
    assert not audit(event, "event.resolve")


# -- notes -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,problem", [
    ("", "empty"), ("   \n ", "empty"), ("x" * 2001, "at most 2000"), ("a\x00b", "NUL"), (None, "text"),
])
def test_a_bad_note_is_refused_naming_the_text(camera, owner, text, problem):
    event = EventFactory(camera=camera)
    with pytest.raises(ValidationError) as caught:
        event_note_add(event=event, by=owner, text=text)
    assert problem in " ".join(caught.value.message_dict["text"])
    assert not EventNote.objects.exists()


def test_a_note_keeps_its_author_name_when_the_account_goes(camera, owner, pushed,
                                                           django_capture_on_commit_callbacks):
    event = EventFactory(camera=camera)
    with django_capture_on_commit_callbacks(execute=True):
        note = event_note_add(event=event, by=owner, text="x" * 2000)
    assert pushed == [[event.pk]]
    owner.delete()
    note.refresh_from_db()
    assert note.author is None and note.author_name == "owner"


# -- bulk ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("false_alarm", [False, True])
def test_bulk_resolve_touches_only_open_events_of_operable_cameras(camera, viewer, announced, false_alarm,
                                                                 django_capture_on_commit_callbacks):
    gate = CameraFactory(name="Gate")
    grant(viewer, gate, "view_camera", "operate_camera")
    mine = [EventFactory(camera=gate), EventFactory(camera=gate, status="acknowledged")]
    done_before = closed(gate)
    view_only = EventFactory(camera=camera)
    elsewhere = EventFactory(camera=CameraFactory())
    ids = [e.pk for e in (*mine, done_before, view_only, elsewhere)]
    with django_capture_on_commit_callbacks(execute=True):
        assert events_resolve_many(event_ids=ids, by=viewer, false_alarm=false_alarm) == (2, 3)
    status = dict(AnomalyEvent.objects.values_list("id", "status"))
    target = "false_alarm" if false_alarm else "resolved"
    assert [status[e.pk] for e in mine] == [target, target]
    assert (status[done_before.pk], status[view_only.pk], status[elsewhere.pk]) == ("resolved", "new", "new")
    assert sorted(announced) == (sorted(e.pk for e in mine) if false_alarm else [])
    entries = AuditEntry.objects.filter(action="event.false_alarm" if false_alarm else "event.resolve")
    assert entries.count() == 2 and all(e.details == {"bulk": True} for e in entries)


# -- API -----------------------------------------------------------------------------------------------------
def test_api_reopen_with_a_note(api_as, camera, owner, viewer, outsider):
    event = closed(camera, by=owner)
    path = f"/api/v1/events/{event.pk}/reopen/"
    assert api_as(outsider).post(path, {}, format="json").status_code == 404
    response = api_as(viewer).post(path, {}, format="json")
    assert response.status_code == 403 and "operate_camera" in response.json()["detail"]
    response = api_as(owner).post(path, {"note": "Not over yet"}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "acknowledged" and body["resolved_by"] is None and body["resolved_at"] is None
    notes = api_as(viewer).get(f"/api/v1/events/{event.pk}/notes/").json()["results"]
    assert [(n["author"], n["text"]) for n in notes] == [("owner", "Not over yet")]
    # now open: reopening again says why not
    response = api_as(owner).post(path, {}, format="json")
    assert response.status_code == 400 and "status" in response.json()
    assert "Only a resolved event or a false alarm" in str(response.json()["status"])


@pytest.mark.parametrize("body,field", [
    ({"note": "x" * 2001}, "note"), ({"note": None}, "note"), ({"note": 12}, None), ({"note": ["a"]}, "note"),
])
def test_api_reopen_bad_note_is_a_400_naming_it(api_as, camera, owner, body, field):
    event = closed(camera, by=owner)
    response = api_as(owner).post(f"/api/v1/events/{event.pk}/reopen/", body, format="json")
    if field is None:  # a number is read as its text (DRF's CharField)
        assert response.status_code == 200
        return
    assert response.status_code == 400 and field in response.json()
    assert AnomalyEvent.objects.get(pk=event.pk).status == "resolved"


def test_api_reclassify_through_resolve(api_as, camera, owner, viewer, outsider, announced,
                                        django_capture_on_commit_callbacks):
    event = closed(camera, by=owner)
    path = f"/api/v1/events/{event.pk}/resolve/"
    assert api_as(outsider).post(path, {"false_alarm": True}, format="json").status_code == 404
    assert api_as(viewer).post(path, {"false_alarm": True}, format="json").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        body = api_as(owner).post(path, {"false_alarm": True, "note": "A cat."}, format="json").json()
    assert body["status"] == "false_alarm" and announced == [event.pk]
    with django_capture_on_commit_callbacks(execute=True):
        body = api_as(owner).post(path, {"false_alarm": False}, format="json").json()
    assert body["status"] == "resolved" and announced == [event.pk]
    assert [n.text for n in EventNote.objects.filter(event=event)] == ["A cat."]
    response = api_as(owner).post(path, {"false_alarm": False, "note": "y" * 2001}, format="json")
    assert response.status_code == 400 and "note" in response.json()


def test_api_notes(api_as, camera, owner, viewer, outsider):
    event = EventFactory(camera=camera)
    path = f"/api/v1/events/{event.pk}/notes/"
    assert api_as(outsider).get(path).status_code == 404
    assert api_as(outsider).post(path, {"text": "hi"}, format="json").status_code == 404
    assert api_as(viewer).get(path).json()["results"] == []
    response = api_as(viewer).post(path, {"text": "hi"}, format="json")
    assert response.status_code == 403 and "operate_camera" in response.json()["detail"]
    first = api_as(owner).post(path, {"text": "  Guard sent.  "}, format="json")
    assert first.status_code == 201, first.json()
    assert first.json()["author"] == "owner" and first.json()["text"] == "Guard sent."
    assert first.json()["event"] == str(event.pk) and first.json()["created_at"]
    api_as(owner).post(path, {"text": "Guard back: nothing found."}, format="json")
    body = api_as(viewer).get(path).json()
    assert body["count"] == 2 and [n["text"] for n in body["results"]] == ["Guard sent.", "Guard back: nothing found."]
    assert len(audit(event, "event.note")) == 2
    other = EventFactory(camera=camera)
    assert api_as(viewer).get(f"/api/v1/events/{other.pk}/notes/").json()["results"] == []


@pytest.mark.parametrize("body", [{}, {"text": ""}, {"text": "   "}, {"text": None}, {"text": "x" * 2001},
                                  {"text": "a\x00b"}, {"text": {"a": 1}}])
def test_api_bad_note_is_a_400_naming_the_text(api_as, camera, owner, body):
    event = EventFactory(camera=camera)
    response = api_as(owner).post(f"/api/v1/events/{event.pk}/notes/", body, format="json")
    assert response.status_code == 400 and "text" in response.json(), response.content
    assert not EventNote.objects.exists()


def test_api_notes_of_a_missing_event_is_404(api_as, owner):
    path = "/api/v1/events/00000000-0000-0000-0000-000000000000/notes/"
    assert api_as(owner).get(path).status_code == 404
    assert api_as(owner).post(path, {"text": "x"}, format="json").status_code == 404


def test_the_list_picture_is_the_best_crop_else_the_snapshot_and_survives_odd_details(camera):
    from events.selectors import event_list_picture

    objects = [{"track": [1], "label": "odd", "thumbnail": "events/objects/a.jpg"},
               {"track": 3, "label": "bicycle", "score": "high", "thumbnail": "events/objects/b.jpg"},
               {"track": 5, "label": "person", "score": 0.7, "thumbnail": "events/objects/c.jpg"},
               {"track": 6, "label": "car", "score": float("nan"), "thumbnail": "events/objects/d.jpg"},
               {"track": 8, "label": "dog", "score": 0.99, "thumbnail": "/etc/passwd"}]
    event = EventFactory.build(camera=camera, details={"objects": objects}, snapshot="events/snapshots/s.jpg")
    assert event_list_picture(event) == {"kind": "object", "track": 5, "label": "person"}
    assert event_list_picture(EventFactory(camera=camera, snapshot="events/snapshots/s.jpg",
                                           details={"objects": "nope"})) == {"kind": "snapshot"}
    assert event_list_picture(EventFactory(camera=camera, details=[])) is None
