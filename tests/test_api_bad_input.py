"""Bad input the API fuzzing found on a fresh ``make run`` (SQLite), pinned for every endpoint it can reach.

- Pagination: ``limit`` and ``offset`` out of any database's range (SQLite integers are 64-bit: a
  giant ``limit`` was "datatype mismatch", a 500). Every list endpoint follows DRF's own rules, with
  a ceiling (``surveillance.api.LimitOffsetPagination``): a limit over ``MAX_LIMIT`` answers
  ``MAX_LIMIT`` rows, a missing, zero, negative or non-numeric limit the default page, a negative or
  non-numeric offset starts at 0, an offset past the end an empty page.
- JSON fields that may not be null (a camera's ``zones``, ``detector_params``, ``agent_params``):
  ``null`` is a 400 naming the field, in JSON and in a form (multipart ``zones=null`` reached the
  database: IntegrityError, a 500). In a form a JSON field is the field's JSON text.
- And, for every write operation of the schema and every field of its body: null (JSON) and
  ``"null"`` (form) are never a server error, and a 400 names the field.
"""

from __future__ import annotations

import json

import pytest
from django.db import transaction
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from tests.factories import EventFactory

pytestmark = pytest.mark.django_db

GIANT = "888444654919793522126094336"  # the fuzzer's: over every database's 64-bit integers


class Rollback(Exception):
    pass


def rolled_back(call):
    """``call()``'s response, with what it wrote rolled back (each request starts from the same data)."""
    from siteconfig.selectors import site_settings_clear_cache

    box = []
    try:
        with transaction.atomic():
            box.append(call())
            raise Rollback
    except Rollback:
        pass
    finally:
        site_settings_clear_cache()  # the process keeps the row it read, which the rollback may have undone
    return box[0]


@pytest.fixture
def schema(api_as, staff):
    return api_as(staff).get("/api/v1/schema/", {"format": "json"}).json()


@pytest.fixture
def ids(camera, staff):
    from alerts.models import AlertRule, Delivery, NotificationChannel
    from cameras.models import DetectorVersion, LearningJob

    event = EventFactory(camera=camera)
    job = LearningJob.objects.create(camera=camera, kind=LearningJob.Kind.LIVE, minutes=1, message="x")
    DetectorVersion.objects.create(camera=camera, number=1, detector=camera.detector,
                                   state_path="detectors/1/v1.json", source=DetectorVersion.Source.LEARN_LIVE)
    channel = NotificationChannel.objects.create(owner=staff, name="mail", kind="email", email="s@example.com")
    rule = AlertRule.objects.create(owner=staff, name="rule", all_cameras=True)
    delivery = Delivery.objects.create(channel=channel, recipient=staff, mode=Delivery.Mode.TEST,
                                       medium=Delivery.Medium.EMAIL)
    from events.models import Incident
    from tests.factories import AreaFactory

    area = AreaFactory(name="Bad input area")
    incident = Incident.objects.create(area=area, opened_at=event.started_at, last_event_at=event.started_at,
                                       event_count=1)
    event.incident = incident
    event.save(update_fields=["incident"])
    return {"camera_id": camera.id, "event_id": str(event.id), "job_id": job.id, "number": 1,
            "channel_id": channel.id, "rule_id": rule.id, "delivery_id": delivery.id, "area_id": area.id,
            "incident_id": incident.id}


class _Ids(dict):
    def __missing__(self, name):  # a path parameter without a real object here: some id
        return "1"


def _paths(schema, ids, method):
    for template, operations in sorted(schema["paths"].items()):
        if method in operations:
            yield template, template.format_map(_Ids(ids)), operations[method]


# -- pagination -------------------------------------------------------------------------------------------
def test_the_fuzzers_giant_limit_and_negative_offset_on_every_list_endpoint(api_as, staff, schema, ids):
    from surveillance.api import LimitOffsetPagination

    listed = []
    for template, path, operation in _paths(schema, ids, "get"):
        names = {p["name"] for p in operation.get("parameters", [])}
        if not {"limit", "offset"} <= names:
            continue
        listed.append(template)
        for query in ({"limit": GIANT, "offset": "-1008"}, {"limit": GIANT}, {"offset": GIANT},
                      {"limit": f"-{GIANT}", "offset": f"-{GIANT}"}, {"limit": "0"}, {"limit": "x", "offset": "y"},
                      {"limit": "9" * 5000}):
            response = api_as(staff).get(path, query)
            assert response.status_code == 200, (path, query, response.content[:300])
            body = response.json()
            assert len(body["results"]) <= LimitOffsetPagination.max_limit
            if query.get("offset") == GIANT:
                assert body["results"] == [] and body["count"] >= 0
    assert "/api/v1/cameras/" in listed and len(listed) >= 5, listed


@pytest.mark.parametrize("query,limit,offset", [
    ({}, 50, 0),
    ({"limit": "10", "offset": "20"}, 10, 20),
    ({"limit": GIANT, "offset": "-1008"}, 1000, 0),
    ({"limit": "1001"}, 1000, 0),
    ({"limit": "-3", "offset": "-1"}, 50, 0),
    ({"limit": "0"}, 50, 0),
    ({"limit": "ten", "offset": "1.5"}, 50, 0),
    ({"offset": GIANT}, 50, 2**62),
])
def test_limit_and_offset_follow_drf_within_a_ceiling(query, limit, offset):
    from surveillance.api import LimitOffsetPagination

    paginator = LimitOffsetPagination()
    request = Request(APIRequestFactory().get("/", query))
    assert (paginator.get_limit(request), paginator.get_offset(request)) == (limit, offset)


def test_the_schema_documents_the_ceiling(schema):
    limit = next(p for p in schema["paths"]["/api/v1/cameras/"]["get"]["parameters"] if p["name"] == "limit")
    assert "at most 1000" in limit["description"]


def test_the_default_pagination_is_ours(settings):
    assert settings.REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"] == "surveillance.api.LimitOffsetPagination"


# -- JSON fields that may not be null -----------------------------------------------------------------------
JSON_FIELDS = ("zones", "detector_params", "agent_params")


def _camera_form(camera, **changes) -> dict:
    """The camera's settings as a browser or curl -F would send them."""
    from cameras.serializers import CONFIG_FIELDS

    form = {}
    for name in CONFIG_FIELDS:
        value = getattr(camera, name)
        form[name] = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    form.update(changes)
    return form


@pytest.mark.parametrize("field", JSON_FIELDS)
@pytest.mark.parametrize("method", ["put", "patch"])
def test_multipart_null_for_a_json_field_is_a_400_naming_it(api_as, staff, camera, field, method):
    """The fuzzer's find: ``PUT /api/v1/cameras/{id}/`` multipart with ``zones=null`` was an IntegrityError."""
    form = _camera_form(camera, **{field: "null"}) if method == "put" else {field: "null"}
    response = getattr(api_as(staff), method)(f"/api/v1/cameras/{camera.id}/", form, format="multipart")
    assert response.status_code == 400, response.content[:300]
    assert field in response.json() and "null" in str(response.json()[field])
    camera.refresh_from_db()
    assert getattr(camera, field) is not None


@pytest.mark.parametrize("field", JSON_FIELDS)
def test_json_null_for_a_json_field_is_a_400_naming_it(api_as, staff, camera, field):
    body = {**{k: v for k, v in _camera_form(camera).items() if k not in JSON_FIELDS}, field: None}
    for method in ("put", "patch"):
        response = getattr(api_as(staff), method)(f"/api/v1/cameras/{camera.id}/", body, format="json")
        assert response.status_code == 400 and field in response.json(), (method, response.content[:300])
    response = api_as(staff).post("/api/v1/cameras/", {"name": "n", "source_url": "demo://", field: None},
                                  format="json")
    assert response.status_code == 400 and field in response.json()


def test_a_form_gives_json_fields_as_their_json_text(api_as, staff, camera):
    zones = [{"name": "gate", "kind": "ignore", "points": [[0, 0], [0.5, 0], [0.5, 0.5]]}]
    form = _camera_form(camera, zones=json.dumps(zones), agent_params='{"long_duration": 12}')
    response = api_as(staff).put(f"/api/v1/cameras/{camera.id}/", form, format="multipart")
    assert response.status_code == 200, response.content[:500]
    camera.refresh_from_db()
    assert camera.zones[0]["name"] == "gate" and camera.agent_params == {"long_duration": 12}
    # Not JSON, blank, JSON of the wrong kind, or a file: a 400 naming the field, nothing stored.
    for value in ("[{", "", '"gate"', "{}"):
        response = api_as(staff).patch(f"/api/v1/cameras/{camera.id}/", {"zones": value}, format="multipart")
        assert response.status_code == 400 and "zones" in response.json(), (value, response.content[:300])
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = api_as(staff).patch(f"/api/v1/cameras/{camera.id}/",
                                   {"zones": SimpleUploadedFile("null", b"null")}, format="multipart")
    assert response.status_code == 400 and "zones" in response.json(), response.content[:300]
    camera.refresh_from_db()
    assert camera.zones[0]["name"] == "gate"


# -- every write operation, every field: null is never a 500 --------------------------------------------------
def _request_properties(schema, operation, media) -> tuple[dict, set]:
    content = operation.get("requestBody", {}).get("content", {})
    if media not in content:
        return {}, set()
    ref = content[media]["schema"].get("$ref", "")
    component = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else content[media]["schema"]
    return component.get("properties", {}), set(component.get("required", []))


def test_null_in_any_field_of_any_write_is_never_a_server_error(api_as, staff, schema, ids, camera):
    """For each POST/PUT/PATCH of the schema and each field of its body, as staff (who may do everything):
    the field null in JSON, and ``"null"`` in a form, next to valid values for a camera's settings."""
    client = api_as(staff)
    valid = {"/api/v1/cameras/": _camera_form(camera), "/api/v1/cameras/{camera_id}/": _camera_form(camera)}
    tried = 0
    for method in ("post", "put", "patch"):
        for template, path, operation in _paths(schema, ids, method):
            for media, fmt in (("application/json", "json"), ("multipart/form-data", "multipart")):
                properties, _ = _request_properties(schema, operation, media)
                for name, spec in properties.items():
                    if spec.get("readOnly"):
                        continue
                    base = dict(valid.get(template, {}))
                    if fmt == "json":
                        base = {k: json.loads(v) if k in JSON_FIELDS else v for k, v in base.items()}
                    body = {**base, name: None if fmt == "json" else "null"}
                    response = rolled_back(lambda: getattr(client, method)(path, body, format=fmt))
                    tried += 1
                    label = f"{method.upper()} {template} {fmt} {name}=null"
                    assert response.status_code < 500, (label, response.content[:300])
                    # In a form "null" is the text null: only a JSON field reads it as null.
                    if response.status_code == 400 and fmt == "json" and spec.get("nullable") is not True:
                        problem = response.json()
                        assert name in problem or "detail" in problem or "non_field_errors" in problem, \
                            (label, problem)
    assert tried > 50
