"""Who gets what: every API endpoint, every page and every WebSocket action, for anonymous, outsider,
viewer, operator (view + operate) and staff.

The endpoints are enumerated from Django's URL resolver: an endpoint (or an HTTP method of one)
missing from MATRIX fails ``test_every_endpoint_is_in_the_matrix``, so a new one cannot be
forgotten. Each cell is a real request against real data (a camera the roles are granted on,
another camera nobody but staff sees, an event with its snapshot and clip, a learning job, a
detector version, and the viewer's own alert channel, rule and delivery); lists are checked to
hold only the objects of allowed cameras or of the user.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.urls import URLPattern, URLResolver, get_resolver
from guardian.shortcuts import assign_perm
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import AccessToken

from tests.factories import AreaFactory, CameraFactory, EventFactory, UserFactory, role_users

ROLES = ("anonymous", "outsider", "viewer", "operator", "staff")
A, O, V, P, S = range(5)  # indexes into a row of codes


def codes(anonymous, outsider, viewer, operator, staff):
    return (anonymous, outsider, viewer, operator, staff)


API_READ = codes(401, 404, 200, 200, 200)         # an object of the camera
API_OPERATE = codes(401, 404, 403, 202, 202)
API_OPERATE_200 = codes(401, 404, 403, 200, 200)
API_CHANGE = codes(401, 404, 403, 403, 200)
API_ANY_USER = codes(401, 200, 200, 200, 200)
API_VIEWERS_OWN = codes(401, 404, 200, 404, 404)  # the viewer's own channel / rule / delivery
PAGE_READ = codes(302, 403, 200, 200, 200)
PAGE_OPERATE = codes(302, 403, 403, 302, 302)     # POST forms: 302 back to the page when done
PAGE_ANY_USER = codes(302, 200, 200, 200, 200)
PAGE_VIEWERS_OWN = codes(302, 403, 200, 403, 403)       # the viewer's own channel / rule, in the pages
PAGE_VIEWERS_OWN_POST = codes(302, 403, 302, 403, 403)  # its forms: 302 back to My alerts when done

#: A browser's P-256 public key (Web Push subscriptions posted in the matrix).
PUSH_P256DH = "BAn-9NRxtpnyWZS399DtyQ-v5LJFkv6TFBcq49lo5GI28UoUqjSOzAeWl7lgkDQSfB9642kNmBppdeb7pHShNtc"

# (method, route as the resolver spells it) -> (request data, expected status per role)
MATRIX: dict[tuple[str, str], tuple[dict | None, tuple]] = {
    # -- API: accounts
    # Self-registration is closed by default (site settings); tests/accounts/test_registration.py opens it.
    ("POST", "api/v1/auth/register/"): ({"username": "new-{role}", "password": "a-long-pass-word-987"},
                                        codes(403, 403, 403, 403, 403)),
    ("POST", "api/v1/auth/token/"): ({"username": "viewer", "password": "wrong"}, codes(401, 401, 401, 401, 401)),
    ("POST", "api/v1/auth/token/refresh/"): ({"refresh": "not-a-token"}, codes(401, 401, 401, 401, 401)),
    ("POST", "api/v1/auth/logout/"): ({}, API_ANY_USER),
    ("GET", "api/v1/auth/me/"): (None, API_ANY_USER),
    # -- API: cameras
    ("GET", "api/v1/cameras/"): (None, API_ANY_USER),
    ("POST", "api/v1/cameras/"): ({"name": "New", "source_url": "demo://"}, codes(401, 403, 403, 403, 201)),
    ("GET", "api/v1/cameras/<int:camera_id>/"): (None, API_READ),
    ("PUT", "api/v1/cameras/<int:camera_id>/"): ({"name": "Renamed", "source_url": "demo://"}, API_CHANGE),
    ("PATCH", "api/v1/cameras/<int:camera_id>/"): ({"name": "Renamed"}, API_CHANGE),
    ("DELETE", "api/v1/cameras/<int:camera_id>/"): (None, codes(401, 404, 403, 403, 204)),
    ("POST", "api/v1/cameras/<int:camera_id>/start/"): ({}, API_OPERATE),
    ("POST", "api/v1/cameras/<int:camera_id>/stop/"): ({}, API_OPERATE),
    ("GET", "api/v1/cameras/<int:camera_id>/status/"): (None, API_READ),
    ("GET", "api/v1/cameras/<int:camera_id>/picture/"): (None, API_READ),  # the world keeps a current picture
    # The world's camera uses no model server: those who may change it are told so (400).
    ("POST", "api/v1/cameras/<int:camera_id>/model-test/"): ({"which": "vlm"}, codes(401, 404, 403, 403, 400)),
    ("GET", "api/v1/cameras/<int:camera_id>/figures/"): (None, API_READ),
    ("POST", "api/v1/cameras/<int:camera_id>/learn/"): ({"minutes": 2}, API_OPERATE),
    ("GET", "api/v1/cameras/<int:camera_id>/learning-jobs/"): (None, API_READ),
    ("GET", "api/v1/cameras/<int:camera_id>/learning-jobs/<int:job_id>/"): (None, API_READ),
    ("GET", "api/v1/cameras/<int:camera_id>/detector-versions/"): (None, API_READ),
    ("POST", "api/v1/cameras/<int:camera_id>/detector-versions/<int:number>/restore/"): ({}, API_OPERATE_200),
    ("GET", "api/v1/cameras/<int:camera_id>/scores/"): (None, API_READ),
    # -- API: recordings (the world's camera has one recorded segment)
    ("GET", "api/v1/cameras/<int:camera_id>/recordings/"): (None, API_READ),
    ("GET", "api/v1/recordings/<int:segment_id>/video/"): (None, API_READ),
    # Exports: anyone may ask for one of cameras they may view (the outsider is told which cameras it may not:
    # 400); its progress is the asker's only; its file is for whoever may view the camera (the viewer's done export).
    ("POST", "api/v1/exports/"): ({"cameras": ["{camera_id}"], "since": "2026-01-01T00:00:00Z",
                                   "until": "2026-01-01T01:00:00Z"}, codes(401, 400, 202, 202, 202)),
    ("GET", "api/v1/exports/<uuid:export_id>/"): (None, API_VIEWERS_OWN),
    ("GET", "api/v1/exports/<uuid:export_id>/files/<int:camera_id>/"): (None, API_READ),
    # -- API: areas (those holding a camera the user may view; staff: all) and incidents (their viewable events)
    ("GET", "api/v1/areas/"): (None, API_ANY_USER),
    ("POST", "api/v1/areas/"): ({"name": "Area of {role}"}, codes(401, 403, 403, 403, 201)),
    ("GET", "api/v1/areas/<int:area_id>/"): (None, API_READ),
    ("PATCH", "api/v1/areas/<int:area_id>/"): ({"description": "Renamed"}, codes(401, 404, 403, 403, 200)),
    ("GET", "api/v1/incidents/<int:incident_id>/"): (None, API_READ),
    # -- API: arming (docs/alerts.md "Arming"): read with view_camera; switch with operate_camera (an area: on all
    # its cameras; the granted area holds only the granted camera)
    ("GET", "api/v1/cameras/<int:camera_id>/arming/"): (None, API_READ),
    ("POST", "api/v1/cameras/<int:camera_id>/arming/"): ({"mode": "home"}, API_OPERATE_200),
    ("GET", "api/v1/areas/<int:area_id>/arming/"): (None, API_READ),
    ("POST", "api/v1/areas/<int:area_id>/arming/"): ({"mode": "away"}, API_OPERATE_200),
    # -- API: events
    ("GET", "api/v1/events/"): (None, API_ANY_USER),
    ("GET", "api/v1/events/<uuid:event_id>/"): (None, API_READ),
    ("POST", "api/v1/events/<uuid:event_id>/acknowledge/"): ({}, API_OPERATE_200),
    ("POST", "api/v1/events/<uuid:event_id>/keep/"): ({"keep": True}, API_OPERATE_200),
    ("POST", "api/v1/events/<uuid:event_id>/resolve/"): ({"false_alarm": False}, API_OPERATE_200),
    # Reopen: the world's event is new (open), so those allowed get 400 naming "status".
    ("POST", "api/v1/events/<uuid:event_id>/reopen/"): ({}, codes(401, 404, 403, 400, 400)),
    ("GET", "api/v1/events/<uuid:event_id>/notes/"): (None, API_READ),
    ("POST", "api/v1/events/<uuid:event_id>/notes/"): ({"text": "Seen by {role}"}, codes(401, 404, 403, 201, 201)),
    ("GET", "api/v1/events/<uuid:event_id>/snapshot/"): (None, API_READ),
    ("GET", "api/v1/events/<uuid:event_id>/clip/"): (None, API_READ),
    ("GET", "api/v1/events/<uuid:event_id>/objects/<int:track>/thumbnail/"): (None, API_READ),
    # -- API: alerts (a user's own only; staff has no special access to others' channels)
    ("GET", "api/v1/notification-channels/"): (None, API_ANY_USER),
    ("POST", "api/v1/notification-channels/"): ({"name": "Mail", "kind": "email", "email": "a@example.com"},
                                                codes(401, 201, 201, 201, 201)),
    ("GET", "api/v1/notification-channels/<int:channel_id>/"): (None, API_VIEWERS_OWN),
    ("PUT", "api/v1/notification-channels/<int:channel_id>/"): ({"name": "Mail 2", "kind": "email"}, API_VIEWERS_OWN),
    ("PATCH", "api/v1/notification-channels/<int:channel_id>/"): ({"name": "Mail 3"}, API_VIEWERS_OWN),
    ("DELETE", "api/v1/notification-channels/<int:channel_id>/"): (None, codes(401, 404, 204, 404, 404)),
    ("POST", "api/v1/notification-channels/<int:channel_id>/test/"): ({}, API_VIEWERS_OWN),
    ("GET", "api/v1/alert-rules/"): (None, API_ANY_USER),
    ("POST", "api/v1/alert-rules/"): ({"name": "All", "all_cameras": True}, codes(401, 201, 201, 201, 201)),
    ("GET", "api/v1/alert-rules/<int:rule_id>/"): (None, API_VIEWERS_OWN),
    ("PUT", "api/v1/alert-rules/<int:rule_id>/"): ({"name": "All 2", "all_cameras": True}, API_VIEWERS_OWN),
    ("PATCH", "api/v1/alert-rules/<int:rule_id>/"): ({"min_severity": "high"}, API_VIEWERS_OWN),
    ("DELETE", "api/v1/alert-rules/<int:rule_id>/"): (None, codes(401, 404, 204, 404, 404)),
    ("GET", "api/v1/alerts/"): (None, API_ANY_USER),
    ("GET", "api/v1/alerts/<int:delivery_id>/"): (None, API_VIEWERS_OWN),
    # -- API: Web Push (docs/alerts.md "Web Push"): the key to subscribe with; a user's own subscriptions only
    ("GET", "api/v1/push/vapid-public-key/"): (None, API_ANY_USER),
    ("GET", "api/v1/push-subscriptions/"): (None, API_ANY_USER),
    ("POST", "api/v1/push-subscriptions/"): ({"endpoint": "http://127.0.0.1:9/push/{role}",
                                              "keys": {"p256dh": PUSH_P256DH, "auth": "AAECAwQFBgcICQoLDA0ODw"}},
                                             codes(401, 201, 201, 201, 201)),
    ("GET", "api/v1/push-subscriptions/<int:subscription_id>/"): (None, API_VIEWERS_OWN),
    ("DELETE", "api/v1/push-subscriptions/<int:subscription_id>/"): (None, codes(401, 404, 204, 404, 404)),
    # -- API: the site's settings (staff only)
    ("GET", "api/v1/site/settings/"): (None, codes(401, 403, 403, 403, 200)),
    ("PATCH", "api/v1/site/settings/"): ({"login_lockout_seconds": 300}, codes(401, 403, 403, 403, 200)),
    # -- API: the rest
    ("GET", "api/v1/stats/"): (None, codes(401, 403, 403, 403, 200)),
    ("GET", "api/v1/schema/"): (None, codes(200, 200, 200, 200, 200)),
    ("GET", "api/v1/docs/"): (None, codes(200, 200, 200, 200, 200)),
    ("GET", "health/"): (None, codes(200, 200, 200, 200, 200)),
    ("GET", "favicon.ico"): (None, codes(301, 301, 301, 301, 301)),  # to the static icon, for anyone
    ("POST", "favicon.ico"): ({}, codes(301, 301, 301, 301, 301)),
    ("GET", "metrics"): (None, codes(403, 403, 403, 403, 200)),  # with METRICS_TOKEN set: staff or the token
    ("GET", "sw.js"): (None, codes(200, 200, 200, 200, 200)),  # Web Push's service worker: public, nothing secret
    # -- pages (session sign-in; anonymous is sent to the sign-in page)
    # The sign-in page: signed-in users are sent on to the dashboard; a wrong password re-renders the form.
    ("GET", "accounts/login/"): (None, codes(200, 302, 302, 302, 302)),
    ("POST", "accounts/login/"): ({"username": "viewer", "password": "wrong"}, codes(200, 302, 302, 302, 302)),
    ("POST", "accounts/logout/"): ({}, codes(302, 302, 302, 302, 302)),
    ("GET", "accounts/preferences/"): (None, PAGE_ANY_USER),
    ("GET", ""): (None, PAGE_ANY_USER),
    ("GET", "cameras/<int:camera_id>/"): (None, PAGE_READ),
    ("POST", "cameras/<int:camera_id>/start/"): ({}, PAGE_OPERATE),
    ("POST", "cameras/<int:camera_id>/stop/"): ({}, PAGE_OPERATE),
    ("POST", "cameras/<int:camera_id>/learn/"): ({"minutes": "2"}, PAGE_OPERATE),
    ("POST", "cameras/<int:camera_id>/detector-versions/<int:number>/restore/"): ({}, PAGE_OPERATE),
    # The zone editor's Save: for those who may change the camera (as the API's PATCH); 302 back to the page.
    ("POST", "cameras/<int:camera_id>/zones/"): ({"zones": "[]"}, codes(302, 403, 403, 403, 302)),
    ("GET", "events/"): (None, PAGE_ANY_USER),
    ("POST", "events/acknowledge/"): ({"event": "{event_id}"}, codes(302, 302, 302, 302, 302)),
    ("POST", "events/resolve/"): ({"event": "{event_id}", "false_alarm": "1"}, codes(302, 302, 302, 302, 302)),
    ("GET", "events/<uuid:event_id>/"): (None, PAGE_READ),
    ("POST", "events/<uuid:event_id>/acknowledge/"): ({}, PAGE_OPERATE),
    ("POST", "events/<uuid:event_id>/keep/"): ({"keep": "1"}, PAGE_OPERATE),
    ("POST", "events/<uuid:event_id>/resolve/"): ({}, PAGE_OPERATE),
    ("POST", "events/<uuid:event_id>/reopen/"): ({}, PAGE_OPERATE),
    ("POST", "events/<uuid:event_id>/notes/"): ({"text": "Seen by {role}"}, PAGE_OPERATE),
    ("GET", "events/<uuid:event_id>/fragment/<slug:kind>/"): (None, PAGE_READ),
    ("GET", "events/<uuid:event_id>/snapshot.jpg"): (None, codes(302, 404, 200, 200, 200)),
    ("GET", "events/<uuid:event_id>/clip.webm"): (None, codes(302, 404, 200, 200, 200)),
    ("GET", "events/<uuid:event_id>/clip.mp4"): (None, codes(302, 404, 200, 200, 200)),  # either serves the clip
    ("GET", "events/<uuid:event_id>/objects/<int:track>.jpg"): (None, codes(302, 404, 200, 200, 200)),
    ("GET", "alerts/"): (None, PAGE_ANY_USER),
    ("POST", "alerts/channels/<int:channel_id>/test/"): ({}, codes(302, 403, 302, 403, 403)),
    # My alerts, self-service: anyone signed in makes their own channels and rules; only the viewer's own
    # channel and rule (the world's) open for the viewer; anyone else's answers 403, like other pages.
    ("GET", "alerts/channels/new/"): (None, PAGE_ANY_USER),
    ("POST", "alerts/channels/new/"): ({"name": "Mail of {role}", "kind": "email", "email": "a@example.com",
                                        "enabled": "on"}, codes(302, 302, 302, 302, 302)),
    ("GET", "alerts/channels/<int:channel_id>/"): (None, PAGE_VIEWERS_OWN),
    ("POST", "alerts/channels/<int:channel_id>/"): ({"name": "Mail 2", "email": "v2@example.com"},
                                                    PAGE_VIEWERS_OWN_POST),
    ("GET", "alerts/channels/<int:channel_id>/delete/"): (None, PAGE_VIEWERS_OWN),
    ("POST", "alerts/channels/<int:channel_id>/delete/"): ({}, PAGE_VIEWERS_OWN_POST),
    ("GET", "alerts/rules/new/"): (None, PAGE_ANY_USER),
    ("POST", "alerts/rules/new/"): ({"name": "All of {role}", "all_cameras": "1", "min_severity": "medium",
                                     "notify_in_app": "on"}, codes(302, 302, 302, 302, 302)),
    ("GET", "alerts/rules/<int:rule_id>/"): (None, PAGE_VIEWERS_OWN),
    ("POST", "alerts/rules/<int:rule_id>/"): ({"name": "All 2", "all_cameras": "1", "min_severity": "high"},
                                              PAGE_VIEWERS_OWN_POST),
    ("GET", "alerts/rules/<int:rule_id>/delete/"): (None, PAGE_VIEWERS_OWN),
    ("POST", "alerts/rules/<int:rule_id>/delete/"): ({}, PAGE_VIEWERS_OWN_POST),
    ("GET", "admin/login/"): (None, codes(302, 302, 302, 302, 302)),  # to the throttled sign-in page
    ("POST", "admin/login/"): ({"username": "viewer", "password": "wrong"}, codes(302, 302, 302, 302, 302)),
    ("GET", "admin/"): (None, codes(302, 302, 302, 302, 200)),
    ("GET", "admin/audit/auditentry/"): (None, codes(302, 302, 302, 302, 200)),
}

#: Form POSTs whose GET is refused (405) for signed-in users; the matrix covers their POST.
POST_ONLY_PAGES = {route for (method, route) in MATRIX if method == "POST" and not route.startswith("api/")}


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            if str(p.pattern) == "admin/":
                yield prefix + "admin/", None
                continue
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p.callback


def resolver_endpoints() -> set[tuple[str, str]]:
    """(method, route) of every endpoint Django routes: API views' handlers, pages' GET or POST."""
    found = set()
    for route, callback in _walk(get_resolver().url_patterns):
        if callback is None:  # the admin: its root, and the audit log in it
            found |= {("GET", "admin/"), ("GET", "admin/audit/auditentry/")}
            continue
        cls = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        if cls is not None and issubclass(cls, APIView):
            found |= {(m.upper(), route) for m in cls.http_method_names
                      if m not in ("options", "head") and hasattr(cls, m)}
        elif cls is not None:  # Django class-based pages
            found |= {(m.upper(), route) for m in ("get", "post") if hasattr(cls, m) and m in cls.http_method_names}
        elif route in POST_ONLY_PAGES:
            found.add(("POST", route))
        else:
            found.add(("GET", route))
    return found


def test_every_endpoint_is_in_the_matrix():
    routed = resolver_endpoints()
    missing = sorted(routed - set(MATRIX))
    stale = sorted(set(MATRIX) - routed)
    assert not missing, f"endpoints with no row in the access matrix: {missing}"
    assert not stale, f"matrix rows for endpoints that no longer exist: {stale}"


# -- the world ---------------------------------------------------------------------------------------
@pytest.fixture
def world(db, settings, tmp_path):
    from alerts.models import AlertRule, Delivery, NotificationChannel, PushSubscription
    from cameras.models import DetectorVersion, LearningJob
    from siteconfig.services import site_vapid_keys_generate

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.METRICS_TOKEN = "scrape-token-for-the-matrix"
    from events.models import Incident

    area, hidden_area = AreaFactory(name="Granted area"), AreaFactory(name="Hidden area")
    camera = CameraFactory(name="Granted camera", area=area)
    hidden = CameraFactory(name="Hidden camera", area=hidden_area)
    users = role_users(camera)
    media = Path(django_settings.MEDIA_ROOT) / "events"
    media.mkdir(parents=True, exist_ok=True)
    (media / "matrix.jpg").write_bytes(b"\xff\xd8jpeg")
    (media / "matrix.webm").write_bytes(b"\x1aE\xdf\xa3webm")
    (media / "objects").mkdir(exist_ok=True)
    (media / "objects" / "matrix-3.jpg").write_bytes(b"\xff\xd8jpeg")
    event = EventFactory(camera=camera, snapshot="events/matrix.jpg", clip="events/matrix.webm", labels=",person,",
                         details={"objects": [{"track": 3, "label": "person", "thumbnail": "events/objects/matrix-3.jpg"}]})
    hidden_event = EventFactory(camera=hidden)
    incident = Incident.objects.create(area=area, opened_at=event.started_at, last_event_at=event.started_at,
                                       severity=event.severity, event_count=1)
    # The hidden camera's event in the same incident: listed for staff only.
    for member in (event, hidden_event):
        member.incident = incident
        member.save(update_fields=["incident"])
    from cameras import live

    live.picture_store(live.client(), camera.id, b"\xff\xd8jpeg", at=0.0, width=2, height=2, ttl=60)
    job = LearningJob.objects.create(camera=camera, kind=LearningJob.Kind.LIVE, minutes=1, message="done",
                                     status=LearningJob.Status.DONE)
    state = Path(django_settings.DATA_DIR) / "detectors" / str(camera.id) / "v1.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text("{}")
    version = DetectorVersion.objects.create(camera=camera, number=1, detector=camera.detector,
                                             state_path=f"detectors/{camera.id}/v1.json",
                                             source=DetectorVersion.Source.LEARN_LIVE)
    channel = NotificationChannel.objects.create(owner=users["viewer"], name="Viewer mail", kind="email",
                                                 email="viewer@example.com")
    rule = AlertRule.objects.create(owner=users["viewer"], name="Viewer rule", all_cameras=True)
    delivery = Delivery.objects.create(channel=channel, recipient=users["viewer"], mode=Delivery.Mode.TEST,
                                       medium=Delivery.Medium.EMAIL)
    site_vapid_keys_generate(subject="mailto:admin@example.com")  # Web Push set up
    subscription = PushSubscription.objects.create(user=users["viewer"], endpoint="http://127.0.0.1:9/push/viewer",
                                                   p256dh=PUSH_P256DH, auth="AAECAwQFBgcICQoLDA0ODw")
    from recordings.services import segment_index

    recording = Path(django_settings.RECORDING_DIR) / str(camera.id) / "matrix.mp4"
    recording.parent.mkdir(parents=True, exist_ok=True)
    recording.write_bytes(b"\0\0\0\x18ftypmp42")
    segment = segment_index(camera_id=camera.id, start=event.started_at, end=event.started_at, size=16,
                            path=f"{camera.id}/matrix.mp4")
    from recordings.models import Export
    from recordings.storage import export_folder

    export = Export.objects.create(user=users["viewer"], since=event.started_at, until=event.started_at,
                                   status="done", files=[{"camera": camera.id, "name": "matrix.mp4", "size": 16,
                                                          "duration": 1.0, "copied": True}])
    export.cameras.set([camera])
    export_folder(export.pk).mkdir(parents=True, exist_ok=True)
    (export_folder(export.pk) / "matrix.mp4").write_bytes(b"\0\0\0\x18ftypmp42")
    ids = {"camera_id": camera.id, "event_id": str(event.id), "job_id": job.id, "number": version.number,
           "channel_id": channel.id, "rule_id": rule.id, "delivery_id": delivery.id, "kind": "row", "track": 3,
           "area_id": area.id, "incident_id": incident.id, "subscription_id": subscription.id,
           "segment_id": segment.id, "export_id": str(export.pk)}
    return {"users": users, "ids": ids, "camera": camera, "hidden": hidden, "event": event,
            "hidden_event": hidden_event, "area": area, "hidden_area": hidden_area, "incident": incident}


def _url(route: str, ids: dict) -> str:
    import re

    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(ids[m.group(1)]), route)


def _client(role, users, api: bool):
    from django.test import Client
    from rest_framework.test import APIClient

    user = users.get(role)
    if api:
        client = APIClient()
        if user:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
        return client
    client = Client()
    if user:
        client.force_login(user)
    return client


def _request(world, role, method, route):
    data, expected = MATRIX[(method, route)]
    ids = world["ids"]
    data = json.loads(json.dumps(data).replace("{role}", role).replace("{event_id}", ids["event_id"])
                      .replace("{camera_id}", str(ids["camera_id"]))) \
        if data is not None else None
    api = route.startswith("api/")
    client = _client(role, world["users"], api)
    url = _url(route, ids)
    call = getattr(client, method.lower())
    response = call(url, data, format="json") if api and data is not None else call(url, data or {})
    return response, expected[ROLES.index(role)]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method,route", sorted(MATRIX), ids=[f"{m} /{r}" for m, r in sorted(MATRIX)])
def test_access(world, role, method, route):
    response, expected = _request(world, role, method, route)
    body = getattr(response, "content", b"")[:300]
    assert response.status_code == expected, f"{role} {method} /{route}: {response.status_code} {body!r}"
    if expected in (401, 403, 404) and route.startswith("api/") and route not in ("api/v1/auth/token/",):
        assert response.json(), "an API refusal names the problem"
    if response.status_code == 302 and role == "anonymous" and method == "GET":
        login = "/admin/login/" if route.startswith("admin/") and route != "admin/login/" else "/accounts/login/"
        assert response["Location"].startswith(login)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES[1:])
def test_lists_hold_only_allowed_objects(world, role):
    client = _client(role, world["users"], api=True)
    camera, hidden, event = world["camera"], world["hidden"], world["event"]
    cameras = {c["id"] for c in client.get("/api/v1/cameras/").json()["results"]}
    events = {e["id"] for e in client.get("/api/v1/events/").json()["results"]}
    expected_cameras = {"outsider": set(), "viewer": {camera.id}, "operator": {camera.id},
                        "staff": {camera.id, hidden.id}}[role]
    assert cameras == expected_cameras
    expected_events = {"outsider": set(), "viewer": {str(event.id)}, "operator": {str(event.id)},
                       "staff": {str(event.id), str(world["hidden_event"].id)}}[role]
    assert events == expected_events
    areas = {a["id"] for a in client.get("/api/v1/areas/").json()["results"]}
    expected_areas = {"outsider": set(), "viewer": {world["area"].id}, "operator": {world["area"].id},
                      "staff": {world["area"].id, world["hidden_area"].id}}[role]
    assert areas == expected_areas
    # An incident lists only the events the user may view (the outsider: none, so 404).
    incident = client.get(f"/api/v1/incidents/{world['incident'].id}/")
    listed = {e["id"] for e in incident.json().get("events", [])}
    assert listed == (expected_events if role != "outsider" else set())
    assert (incident.status_code == 404) == (role == "outsider")
    # Asking for a hidden camera's events by filter gives nothing either.
    hidden_filtered = client.get("/api/v1/events/", {"camera": hidden.id}).json().get("results", [])
    assert bool(hidden_filtered) == (role == "staff")
    own = {"viewer": 1}.get(role, 0)
    for path in ("/api/v1/notification-channels/", "/api/v1/alert-rules/", "/api/v1/alerts/",
                 "/api/v1/push-subscriptions/"):
        assert len(client.get(path).json()["results"]) == own, path
    # Pages: the hidden camera's name appears for staff only; the granted one for its viewers.
    page = _client(role, world["users"], api=False)
    for path in ("/", "/events/"):
        html = page.get(path).content.decode()
        assert (hidden.name in html) == (role == "staff") or path == "/events/", path
        assert (camera.name in html) == (role != "outsider"), path


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES[1:])
def test_page_bulk_acknowledge_only_acts_for_operators(world, role):
    from events.models import AnomalyEvent

    _request(world, role, "POST", "events/acknowledge/")
    status = AnomalyEvent.objects.get(pk=world["event"].pk).status
    assert (status == AnomalyEvent.Status.ACKNOWLEDGED) == (role in ("operator", "staff"))


# -- WebSocket actions ---------------------------------------------------------------------------------
WS_MATRIX = {
    # action -> expected reply type (or error code) per role; anonymous is refused at the handshake (4401)
    "ping": codes(4401, "pong", "pong", "pong", "pong"),
    "subscribe": codes(4401, "not_found", "subscribed", "subscribed", "subscribed"),
    "subscribe hidden": codes(4401, "not_found", "not_found", "not_found", "subscribed"),
    "unsubscribe": codes(4401, "not_found", "unsubscribed", "unsubscribed", "unsubscribed"),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize("role", ROLES)
async def test_websocket_actions(role):
    camera = await sync_to_async(CameraFactory)(name="Granted camera")
    hidden = await sync_to_async(CameraFactory)(name="Hidden camera")
    user = None
    if role != "anonymous":
        user = await sync_to_async(UserFactory)(username=role, is_staff=role == "staff")
        perms = {"viewer": ["view_camera"], "operator": ["view_camera", "operate_camera"]}.get(role, [])
        for perm in perms:
            await sync_to_async(assign_perm)(perm, user, camera)
    path = "/ws/stream/" + (f"?token={AccessToken.for_user(user)}" if user else "")
    comm = WebsocketCommunicator(__import__("surveillance.asgi").asgi.application, path,
                                 headers=[(b"origin", b"http://localhost")])
    connected, code = await comm.connect(timeout=5)
    if role == "anonymous":
        assert not connected and code == 4401 == WS_MATRIX["ping"][A]
        return
    assert connected

    async def ask(message):
        await comm.send_to(text_data=json.dumps(message))
        reply = json.loads(await comm.receive_from(timeout=5))
        return reply["code"] if reply["type"] == "error" else reply["type"]

    index = ROLES.index(role)
    assert await ask({"action": "ping"}) == WS_MATRIX["ping"][index]
    assert await ask({"action": "subscribe", "camera": camera.id}) == WS_MATRIX["subscribe"][index]
    assert await ask({"action": "subscribe", "camera": hidden.id}) == WS_MATRIX["subscribe hidden"][index]
    assert await ask({"action": "unsubscribe", "camera": camera.id}) == WS_MATRIX["unsubscribe"][index]
    await comm.disconnect()
