"""Property-based fuzzing of the whole API from its own OpenAPI schema (schemathesis), as every role.

For each operation of ``/api/v1/schema/`` and each role (anonymous, outsider, viewer, operator,
staff), Hypothesis generates requests from the schema, valid ones (positive mode) and invalid
ones (negative mode), half of them aimed at real objects (a camera, event, learning job,
detector version, and the role's own channel, rule and delivery) and half at generated ids. Each
request runs through Django's real WSGI stack, inside a savepoint that is rolled back, so every
example starts from the same data. Checks on every response:

- ``not_a_server_error``: never a 5xx;
- ``response_schema_conformance`` and ``content_type_conformance``: a documented status code's
  body and content type match the schema;
- ``documented_success_and_clear_errors`` (ours): a 2xx must be one the schema documents for
  that operation, and any 4xx must be one of the standard API errors with a JSON body that
  names the problem.

``status_code_conformance`` is not used as such: drf-spectacular documents only the success
responses, while every operation can also answer 400/401/403/404/405/409/415/429 through DRF's
exception handler; our own check keeps its strict half (undocumented successes fail) and
replaces the other with "a standard error with a message".

Operations that revoke tokens (``POST /api/v1/auth/logout/``, with ``everywhere`` every token of
its user) run last, as a user of their own (``<role>-revoker``): a logout never leaves the role's
other operations answering 401. The test then asserts that, for every signed-in role, every
operation was exercised past authentication (a 401 only from the sign-in endpoints, which answer it
for wrong credentials).

``FUZZ_EXAMPLES`` (default 3 per operation, role and mode: one to two minutes on 2 cores) sets the
depth; ``make fuzz`` runs it with 60. ``make test`` runs this module on PostgreSQL (CI's database)
and again on SQLite (the embedded database of ``make run``).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.test import Client
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance
from siteconfig.selectors import site_settings_clear_cache

from tests.conftest import clear_cache
from tests.factories import AreaFactory, EventFactory, UserFactory, role_users

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))
ROLES = ("anonymous", "outsider", "viewer", "operator", "staff")
#: In the suite the examples are the same every run and failures are not shrunk (slow). FUZZ_SHRINK=1
#: (make fuzz) draws new examples each run and shrinks a failure to its smallest example.
LONG_RUN = bool(os.environ.get("FUZZ_SHRINK"))
PHASES = list(Phase) if LONG_RUN else [Phase.explicit, Phase.generate]
STANDARD_ERRORS = {400, 401, 403, 404, 405, 409, 413, 415, 429}
#: Operations that revoke the caller's tokens: run last, as a user of their own.
REVOKING = {"POST /api/v1/auth/logout/"}
#: Sign-in endpoints: they take credentials in the body, not the bearer token, and answer 401 for wrong ones.
SIGN_IN = {"POST /api/v1/auth/token/", "POST /api/v1/auth/token/refresh/"}


class Rollback(Exception):
    pass


@schemathesis.check
def documented_success_and_clear_errors(ctx, response, case):
    code = response.status_code
    documented = {int(c) for c in case.operation.definition.raw.get("responses", {}) if c.isdigit()}
    if 200 <= code < 300:
        assert code in documented, f"{code} is not documented for {case.operation.label} (documented: {documented})"
    elif 400 <= code < 500:
        assert code in STANDARD_ERRORS, f"unexpected client error {code}"
        body = response.json()
        assert isinstance(body, dict) and body, f"{code} without a JSON object naming the problem: {response.text!r}"
    return True


CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance,
          documented_success_and_clear_errors]


@pytest.fixture
def wsgi_in_test_transaction():
    """Django's WSGI handler, without closing the test's connection at each request (as Django's test
    client does), so that requests see and roll back within the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def world(camera, settings):
    """One camera (in an area) with an event (in an incident), a learning job and a detector version; one
    user per role, each with a channel, a rule and a delivery of their own."""
    from alerts.models import AlertRule, Delivery, NotificationChannel
    from cameras.models import DetectorVersion, LearningJob

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    users = role_users(camera, prefix="fuzz-")
    revokers = {role: UserFactory(username=f"fuzz-{role}-revoker", is_staff=user.is_staff)
                for role, user in users.items()}
    from events.models import Incident

    area = AreaFactory(name="Fuzzed area")
    camera.area = area
    camera.save()
    event = EventFactory(camera=camera)
    incident = Incident.objects.create(area=area, opened_at=event.started_at, last_event_at=event.started_at,
                                       event_count=1)
    event.incident = incident
    event.save(update_fields=["incident"])
    job = LearningJob.objects.create(camera=camera, kind=LearningJob.Kind.LIVE, minutes=1, message="x")
    version = DetectorVersion.objects.create(camera=camera, number=1, detector=camera.detector,
                                             state_path="detectors/1/v1.json", source=DetectorVersion.Source.LEARN_LIVE)
    ids = {"camera_id": camera.id, "event_id": str(event.id), "job_id": job.id, "number": version.number,
           "area_id": area.id, "incident_id": incident.id}
    per_role = {"anonymous": dict(ids)}
    for role, user in users.items():
        channel = NotificationChannel.objects.create(owner=user, name=f"{role} mail", kind="email",
                                                     email=f"{role}@example.com")
        rule = AlertRule.objects.create(owner=user, name=f"{role} rule", all_cameras=True)
        delivery = Delivery.objects.create(channel=channel, recipient=user, mode=Delivery.Mode.TEST,
                                           medium=Delivery.Medium.EMAIL)
        per_role[role] = {**ids, "channel_id": channel.id, "rule_id": rule.id, "delivery_id": delivery.id}
    return per_role, {**users, "anonymous": None}, {**revokers, "anonymous": None}


def auth_headers(user) -> dict:
    return {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"} if user else {}


def _operations(app):
    """Every operation of the schema, those that revoke tokens last."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", app)
    return sorted((result.ok() for result in schema.get_all_operations()), key=lambda op: op.label in REVOKING)


def fuzz_operation(operation, *, ids: dict, user, mode: GenerationMode, examples: int) -> list[str]:
    """Run ``examples`` generated requests of ``operation``; returns the distinct status codes seen."""
    seen: set[int] = set()
    real_ids = {name: ids[name] for name in ids
                if name in {p.name for p in operation.path_parameters}}

    @given(case=operation.as_strategy(generation_mode=mode), aim=st.booleans())
    @settings(max_examples=examples, deadline=None, database=None, derandomize=not LONG_RUN,
              suppress_health_check=list(HealthCheck), phases=PHASES)
    def run(case, aim):
        if aim and real_ids and (mode == GenerationMode.POSITIVE or case.path_parameters):
            case.path_parameters = {**(case.path_parameters or {}), **real_ids}
        try:
            with transaction.atomic():
                # A fresh token each time: an earlier example may have logged out (revocations
                # live in the cache, which the rollback does not reach; it is cleared below).
                response = case.call(headers=auth_headers(user), base_url="http://localhost")
                seen.add(response.status_code)
                case.validate_response(response, checks=CHECKS)
                raise Rollback
        except Rollback:
            pass
        finally:
            clear_cache()
            site_settings_clear_cache()  # the process's copy of the settings row may be one rolled back

    run()
    return sorted(seen)


@pytest.mark.parametrize("role", ROLES)
def test_fuzz_the_api_as_each_role(wsgi_in_test_transaction, world, role):
    per_role, users, revokers = world
    statuses = {}
    operations = _operations(wsgi_in_test_transaction)
    for operation in operations:
        user = revokers[role] if operation.label in REVOKING else users[role]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            statuses[(operation.label, mode.value)] = fuzz_operation(
                operation, ids=per_role[role], user=user, mode=mode, examples=EXAMPLES)
    # The fuzzing reached the application, not only the authentication layer.
    codes = {code for seen in statuses.values() for code in seen}
    if role == "anonymous":
        assert {400, 401} <= codes  # refused everywhere but register and token, whose validation answers 400
        return
    assert 200 in codes and (400 in codes or role == "outsider")
    by_operation: dict[str, set] = {}
    for (label, _), seen in statuses.items():
        by_operation.setdefault(label, set()).update(seen)
    assert set(by_operation) == {op.label for op in operations} and len(by_operation) > 20
    # Every operation answered past authentication (a 2xx or a 4xx other than 401), and none answered
    # 401 to the role's valid token: nothing the fuzzer did (a logout) signed the role out.
    only_refused = sorted(label for label, seen in by_operation.items() if not seen - {401})
    assert not only_refused, f"exercised only as unauthenticated (401): {only_refused}"
    signed_out = sorted(label for label, seen in by_operation.items() if 401 in seen and label not in SIGN_IN)
    assert not signed_out, f"401 to a valid token: {signed_out}"
    assert all(seen <= set(range(200, 300)) | STANDARD_ERRORS for seen in by_operation.values())
    # The logout ran, as its own user, and the role's token still works after it.
    assert by_operation["POST /api/v1/auth/logout/"] & {200, 400}
    assert Client().get("/api/v1/auth/me/", headers=auth_headers(users[role])).status_code == 200


def test_a_revoking_operation_leaves_the_roles_token_alone(world):
    """Even with nothing cleared after it, a logout everywhere as the revoker leaves the role's own token
    working: the fuzzer's revocations never reach the user whose operations it tests."""
    per_role, users, revokers = world
    client = Client()
    role_token, revoker_token = auth_headers(users["viewer"]), auth_headers(revokers["viewer"])
    response = client.post("/api/v1/auth/logout/", {"everywhere": True}, content_type="application/json",
                           headers=revoker_token)
    assert response.status_code == 200
    assert client.get("/api/v1/auth/me/", headers=revoker_token).status_code == 401
    assert client.get("/api/v1/auth/me/", headers=role_token).status_code == 200


# -- what the fuzzing found, pinned as plain regression tests ------------------------------------------
BIG = "6802050788076885639168"  # over the database's 64-bit integers: SQLite raised OverflowError (a 500)


@pytest.mark.parametrize("path,query,field", [
    ("/api/v1/events/", {"camera": BIG}, "camera"),
    ("/api/v1/alerts/", {"channel": BIG}, "channel"),
])
def test_huge_ids_in_filters_are_a_400_naming_the_field(api_as, staff, path, query, field):
    response = api_as(staff).get(path, query)
    assert response.status_code == 400 and field in response.json()


def test_huge_ids_in_alert_rules_are_a_400(api_as, viewer):
    response = api_as(viewer).post("/api/v1/alert-rules/", {"name": "x", "cameras": [int(BIG)]}, format="json")
    assert response.status_code == 400 and "cameras" in response.json()


def test_unknown_api_urls_answer_json_404(api_as, viewer, client):
    response = api_as(viewer).get("/api/v1/cameras/not-a-number/")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert "No API endpoint" in response.json()["detail"]
    assert client.get("/no-such-page/").status_code == 404  # pages keep the HTML page


def test_the_schema_documents_what_the_api_answers(api_as, staff):
    """Start/stop answer 202, and the nullable fields (who acknowledged, based on, ...) are nullable."""
    schema = api_as(staff).get("/api/v1/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    for action in ("start", "stop"):
        assert list(paths[f"/api/v1/cameras/{{camera_id}}/{action}/"]["post"]["responses"]) == ["202"]
    components = schema["components"]["schemas"]
    for name, field in [("EventOutput", "acknowledged_by"), ("EventOutput", "resolved_by"),
                        ("DetectorVersion", "based_on"), ("DetectorVersion", "created_by"),
                        ("LearningJob", "version"), ("LearningJob", "created_by")]:
        assert components[name]["properties"][field].get("nullable") is True, (name, field)
    assert "format" not in components["ChannelOutput"]["properties"]["email"]  # empty means the owner's address
