"""Events carry their objects: stored labels, the ?label= filter, labels and thumbnails on the pages."""

import uuid
from pathlib import Path

import pytest
from django.utils import timezone

from events.models import AnomalyEvent
from events.services import event_records_store
from tests.factories import EventFactory

pytestmark = pytest.mark.django_db


def record(camera, **fields):
    return {"id": str(uuid.uuid4()), "camera_id": camera.pk, "started_at": timezone.now().isoformat(),
            "ended_at": None, "peak_score": 0.9, "mean_score": 0.8, "severity": "high", "description": "",
            "decision": {"severity": "high", "actions": ["record", "notify", "alert_now"]}, **fields}


def test_a_records_labels_are_stored_and_filterable(api_as, camera, viewer, outsider):
    bike = record(camera, labels=["bicycle", "person", "Person"], details={"objects": [
        {"track": 7, "label": "bicycle", "score": 0.61, "box": [60, 20, 100, 50]}]})
    plain = record(camera)
    event_records_store([bike, plain])
    stored = AnomalyEvent.objects.get(pk=bike["id"])
    assert stored.labels == ",bicycle,person," and stored.label_list == ["bicycle", "person"]
    assert AnomalyEvent.objects.get(pk=plain["id"]).label_list == []

    def ids(user, query):
        response = api_as(user).get("/api/v1/events/", query)
        assert response.status_code == 200, response.content
        return {e["id"] for e in response.json()["results"]}

    assert ids(viewer, {"label": "bicycle"}) == {bike["id"]}
    assert ids(viewer, {"label": "Person"}) == {bike["id"]}
    assert ids(viewer, {"label": "car"}) == set()
    assert ids(outsider, {"label": "bicycle"}) == set()
    body = api_as(viewer).get(f"/api/v1/events/{bike['id']}/").json()
    assert body["labels"] == ["bicycle", "person"] and body["details"]["objects"][0]["label"] == "bicycle"


def test_a_bad_label_filter_is_a_clear_400(api_as, camera, viewer):
    response = api_as(viewer).get("/api/v1/events/", {"label": "bicycle,car%"})
    assert response.status_code == 400 and "label" in response.json()


def test_a_malformed_labels_list_sets_the_record_aside_without_losing_the_others(camera):
    good = record(camera, labels=["car"])
    with pytest.raises((ValueError, TypeError)):
        event_records_store([record(camera, labels="car")])
    event_records_store([good])
    assert AnomalyEvent.objects.get(pk=good["id"]).label_list == ["car"]


def test_labels_are_clipped_whole_to_the_column():
    text = AnomalyEvent.labels_field([f"label{i:03d}" for i in range(100)])
    assert len(text) <= 300 and text.startswith(",label000,") and text.endswith(",")
    assert all(part.startswith("label") and len(part) == 8 for part in text.strip(",").split(","))


def test_the_pages_show_labels_boxes_and_thumbnails_to_those_who_may_view(client, camera, viewer, outsider, settings):
    thumb = "events/objects/2026/12/06/x-7.jpg"
    path = Path(settings.MEDIA_ROOT) / thumb
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8\xff thumbnail")
    event = EventFactory(camera=camera, labels=",bicycle,person,", snapshot="events/snapshots/x.jpg", details={
        "frame_size": [360, 240], "regions": [],
        "peak_objects": [{"track": 7, "label": "bicycle", "box": [60, 20, 40, 30]}],
        "objects": [{"track": 7, "label": "bicycle", "score": 0.61, "thumbnail": thumb},
                    {"track": 9, "label": "person", "score": 0.7, "thumbnail": "../../etc/passwd"}],
        "object_terms": [{"term": "rare_class", "label": "bicycle", "value": 0.9, "numbers": {"seen": 0, "frames": 2550},
                          "explain": "bicycle on a spot where 0 were seen in 2,550 learned frames"}]})
    client.force_login(viewer)
    page = client.get(f"/events/{event.pk}/").content.decode()
    # the term in the reader's words (events/reasons.py term_text), from its numbers
    assert 'data-label="bicycle"' in page and "bicycle where this camera rarely sees one (0 in 2,550 learned frames)" in page
    assert f"/events/{event.pk}/objects/7.jpg" in page
    listing = client.get("/events/", {"label": "bicycle"}).content.decode()
    assert str(event.pk) in listing and 'class="badge label"' in listing
    assert client.get("/events/", {"label": "car"}).content.decode().count(f'data-event="{event.pk}"') == 0
    response = client.get(f"/events/{event.pk}/objects/7.jpg")
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"\xff\xd8\xff thumbnail"
    assert client.get(f"/events/{event.pk}/objects/9.jpg").status_code == 404  # a path outside the folder
    assert client.get(f"/events/{event.pk}/objects/8.jpg").status_code == 404
    client.force_login(outsider)
    assert client.get(f"/events/{event.pk}/objects/7.jpg").status_code == 404


def test_without_a_vlm_the_event_reads_as_a_sentence_in_the_readers_language():
    from django.utils import translation

    details = {"objects": [{"track": 7, "label": "bicycle"}, {"track": 1, "label": "person"},
                           {"track": 2, "label": "person"}],
               "object_terms": [{"term": "speed", "track": 7, "label": "bicycle", "value": 0.9,
                                 "numbers": {"ratio": 2.4}}]}
    event = EventFactory.build(description="", details=details)
    with translation.override("en"):
        assert event.sentence == "A bicycle at 2.4 times the usual speed here. 2 people nearby."
    with translation.override("ko"):
        assert event.sentence == "평소 속도의 2.4배로 움직이는 자전거. 주변에 2명."
    rare = EventFactory.build(details={"object_terms": [{"term": "rare_class", "label": "car", "value": 0.96,
                                                         "numbers": {"seen": 0, "frames": 2550}}]})
    with translation.override("en"):
        assert rare.sentence == "A car where this camera rarely sees one (0 in 2,550 learned frames)."
    chair = EventFactory.build(details={"object_terms": [{"term": "shape", "label": "person", "value": 0.7,
                                                          "numbers": {"ratio": 2.74, "z": 3.4}}]})
    with translation.override("en"):
        assert chair.sentence == ("A person 2.7 times as wide for its height as usual here (sitting, lying, in a "
                                  "wheelchair or beside a bicycle?).")
    with translation.override("ko"):
        assert chair.sentence.startswith("이곳에서 평소보다 키에 비해 2.7배 넓은 사람")
    assert EventFactory.build(details={}).sentence == ""
    assert EventFactory.build(details={"objects": "junk", "object_terms": [3]}).sentence == ""
