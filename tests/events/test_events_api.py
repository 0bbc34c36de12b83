from datetime import timedelta

import pytest
from django.utils import timezone

from events.models import AnomalyEvent
from tests.factories import CameraFactory, EventFactory

pytestmark = pytest.mark.django_db


def test_list_is_filtered_by_permission_and_newest_first(api_as, camera, owner, viewer, outsider):
    now = timezone.now()
    old = EventFactory(camera=camera, started_at=now - timedelta(hours=2))
    new = EventFactory(camera=camera, started_at=now - timedelta(minutes=1))
    EventFactory(camera=CameraFactory())  # another camera's event never shows
    for user in (owner, viewer):
        ids = [e["id"] for e in api_as(user).get("/api/v1/events/").json()["results"]]
        assert ids == [str(new.id), str(old.id)]
    assert api_as(outsider).get("/api/v1/events/").json()["results"] == []


def test_filters(api_as, camera, viewer):
    now = timezone.now()
    other = CameraFactory()
    from guardian.shortcuts import assign_perm

    assign_perm("view_camera", viewer, other)
    a = EventFactory(camera=camera, severity="high", status="new", started_at=now - timedelta(hours=3))
    b = EventFactory(camera=camera, severity="low", status="acknowledged", started_at=now - timedelta(hours=1))
    c = EventFactory(camera=other, severity="high", status="new", started_at=now - timedelta(minutes=5))
    client = api_as(viewer)

    def ids(query):
        response = client.get("/api/v1/events/", query)
        assert response.status_code == 200, response.json()
        return {e["id"] for e in response.json()["results"]}

    assert ids({"camera": camera.id}) == {str(a.id), str(b.id)}
    assert ids({"severity": "high"}) == {str(a.id), str(c.id)}
    assert ids({"status": "acknowledged"}) == {str(b.id)}
    assert ids({"since": (now - timedelta(hours=2)).isoformat()}) == {str(b.id), str(c.id)}
    assert ids({"until": (now - timedelta(hours=2)).isoformat()}) == {str(a.id)}


@pytest.mark.parametrize(
    "query,field",
    [({"severity": "apocalyptic"}, "severity"), ({"status": "x"}, "status"), ({"since": "yesterday"}, "since"),
     ({"camera": "abc"}, "camera"), ({"since": "2026-11-22T10:00:00Z", "until": "2026-11-21T10:00:00Z"}, "until")],
)
def test_bad_filters_get_400_naming_the_parameter(api_as, viewer, query, field):
    response = api_as(viewer).get("/api/v1/events/", query)
    assert response.status_code == 400 and field in response.json()


def test_pagination_is_keyset_and_complete(api_as, camera, viewer):
    now = timezone.now()
    made = {str(EventFactory(camera=camera, started_at=now - timedelta(seconds=i)).id) for i in range(7)}
    client = api_as(viewer)
    seen, url = [], "/api/v1/events/?page_size=3"
    while url:
        body = client.get(url).json()
        seen += [e["id"] for e in body["results"]]
        url = body["next"]
    assert len(seen) == 7 and set(seen) == made


def test_detail(api_as, camera, viewer, outsider):
    event = EventFactory(camera=camera)
    body = api_as(viewer).get(f"/api/v1/events/{event.id}/").json()
    assert body["camera"] == camera.id and body["camera_name"] == camera.name
    assert body["decision"]["severity"] == "medium" and body["status"] == "new"
    assert api_as(outsider).get(f"/api/v1/events/{event.id}/").status_code == 404
    assert api_as(viewer).get("/api/v1/events/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_acknowledge_needs_operate_permission(api_as, camera, owner, viewer, outsider):
    event = EventFactory(camera=camera)
    path = f"/api/v1/events/{event.id}/acknowledge/"
    assert api_as(outsider).post(path).status_code == 404
    assert api_as(viewer).post(path).status_code == 403
    response = api_as(owner).post(path)
    assert response.status_code == 200
    assert response.json()["status"] == "acknowledged" and response.json()["acknowledged_by"] == "owner"
    assert api_as(owner).post(path).status_code == 200  # twice is harmless


def test_resolve_and_false_alarm(api_as, camera, owner, viewer):
    a, b = EventFactory(camera=camera), EventFactory(camera=camera)
    assert api_as(viewer).post(f"/api/v1/events/{a.id}/resolve/").status_code == 403
    body = api_as(owner).post(f"/api/v1/events/{a.id}/resolve/", {"false_alarm": False}, format="json").json()
    assert body["status"] == "resolved" and body["resolved_by"] == "owner" and body["acknowledged_at"]
    body = api_as(owner).post(f"/api/v1/events/{b.id}/resolve/", {"false_alarm": True}, format="json").json()
    assert body["status"] == "false_alarm"
    # A closed case cannot be acknowledged again, and says why.
    response = api_as(owner).post(f"/api/v1/events/{a.id}/acknowledge/")
    assert response.status_code == 400 and "already resolved" in str(response.json())
    assert AnomalyEvent.objects.get(pk=a.id).status == "resolved"


def test_resolve_rejects_a_non_boolean(api_as, camera, owner):
    event = EventFactory(camera=camera)
    response = api_as(owner).post(f"/api/v1/events/{event.id}/resolve/", {"false_alarm": "perhaps"}, format="json")
    assert response.status_code == 400 and "false_alarm" in response.json()


def test_snapshot_is_served_only_to_viewers(client, camera, viewer, outsider, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "events/snapshots").mkdir(parents=True)
    (tmp_path / "events/snapshots/x.jpg").write_bytes(b"\xff\xd8jpeg")
    event = EventFactory(camera=camera, snapshot="events/snapshots/x.jpg")
    client.force_login(viewer)
    response = client.get(f"/events/{event.id}/snapshot.jpg")
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"\xff\xd8jpeg"
    client.force_login(outsider)
    assert client.get(f"/events/{event.id}/snapshot.jpg").status_code == 404


def test_a_page_reads_only_what_it_shows_of_cameras_and_users(api_as, camera, owner, viewer):
    """One events query whatever the page holds, and of the related rows only the camera's name and the
    usernames: not the camera's settings (JSON decoded per event) nor the users' password hashes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    EventFactory.create_batch(30, camera=camera)
    AnomalyEvent.objects.filter(pk__in=list(AnomalyEvent.objects.values_list("pk", flat=True)[:10])).update(
        status="resolved", acknowledged_by=owner, resolved_by=owner, resolved_at=timezone.now())
    client = api_as(viewer)
    client.get("/api/v1/events/")  # warm the content-type cache
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/events/")
    results = response.json()["results"]
    assert len(results) == 30 and {r["camera_name"] for r in results} == {camera.name}
    assert sum(r["resolved_by"] == owner.username for r in results) == 10
    events_sql = [q["sql"] for q in queries.captured_queries if 'FROM "events_anomalyevent"' in q["sql"]]
    assert len(events_sql) == 1
    assert '"cameras_camera"."detector_params"' not in events_sql[0] and '"password"' not in events_sql[0]
    assert '"cameras_camera"."name"' in events_sql[0]


@pytest.mark.parametrize("zone", ["UTC", "Asia/Seoul"])
def test_the_written_out_representation_is_what_drfs_generic_one_gives(camera, owner, zone):
    """EventOutputSerializer writes its fields out by hand for speed: field for field, in order, and in the
    reader's time zone, it must give what DRF's generic walk over the declared fields gives."""
    from rest_framework import serializers

    from events.selectors import events_by_ids
    from events.serializers import EventOutputSerializer

    now = timezone.now()
    open_one = EventFactory(camera=camera, ended_at=None, peak_score=1, details={})
    closed = EventFactory(camera=camera, snapshot="snapshots/a.jpg", clip="clips/a.webm",
                          details={"regions": [[1, 2, 3, 4]], "score_curve": [[0, 0.5]]})
    AnomalyEvent.objects.filter(pk=closed.pk).update(
        status="resolved", acknowledged_by=owner, acknowledged_at=now, resolved_by=owner, resolved_at=now)
    with timezone.override(zone):
        events = list(events_by_ids([open_one.pk, closed.pk]))
        assert len(events) == 2
        for event in events:
            serializer = EventOutputSerializer(event)
            generic = serializers.ModelSerializer.to_representation(serializer, event)
            assert serializer.data == generic
            assert list(serializer.data) == list(EventOutputSerializer.Meta.fields)
        assert EventOutputSerializer(events[1]).data["resolved_by"] == owner.username
        assert EventOutputSerializer(events[1]).data["snapshot"].endswith("/snapshot.jpg")


def test_events_about_the_camera_itself_are_listed_apart(api_as, client, camera, viewer):
    other_camera = CameraFactory(name="Vault")
    scene = EventFactory(camera=camera, details={"detector": "objects"})
    plain = EventFactory(camera=camera, details={})
    zone = EventFactory(camera=camera, details={"kind": "zone:forbidden"})  # a scene anomaly of its own kind
    covered = EventFactory(camera=camera, details={"kind": "camera_health", "condition": "covered"})
    offline = EventFactory(camera=camera, details={"kind": "camera_offline"})
    EventFactory(camera=other_camera, details={"kind": "camera_health", "condition": "moved"})  # not viewable
    expected = {"scene": {scene, plain, zone}, "camera_health": {covered}, "camera_offline": {offline}}
    api = api_as(viewer)
    for kind, events in expected.items():
        got = {e["id"] for e in api.get("/api/v1/events/", {"kind": kind}).json()["results"]}
        assert got == {str(e.pk) for e in events}, kind
    response = api.get("/api/v1/events/", {"kind": "weather"})
    assert response.status_code == 400 and "kind" in response.json()
    client.force_login(viewer)  # the events page has the same filter
    html = client.get("/events/", {"kind": "camera_health"}).content.decode()
    assert f'data-event="{covered.pk}"' in html and f'data-event="{scene.pk}"' not in html
    assert 'name="kind"' in html
