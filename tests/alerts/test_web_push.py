"""Web Push (docs/alerts.md "Web Push"): VAPID keys in the site settings, browsers' subscriptions through the API,
and the push that follows a real in-app delivery, received by a local HTTP server standing in for the push service.

The test is the browser: it makes its own P-256 key pair and auth secret, subscribes through the API, and
decrypts what the push service receives (RFC 8291, aes128gcm, with http_ece) after checking the VAPID signature
(RFC 8292) against the site's public key.
"""

from __future__ import annotations

import base64
import json
import os
import time

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from alerts.models import Delivery, PushSubscription
from tests.alerts.conftest import make_rule
from tests.factories import EventFactory, UserFactory

pytestmark = pytest.mark.django_db

SUBJECT = "mailto:admin@example.com"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Browser:
    """What a browser keeps for one push subscription: its ECDH key pair and its 16-byte auth secret."""

    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.p256dh = b64url(self.key.public_key().public_bytes(serialization.Encoding.X962,
                                                                 serialization.PublicFormat.UncompressedPoint))

    def subscription(self, endpoint: str) -> dict:
        """PushSubscription.toJSON(), as the page posts it."""
        return {"endpoint": endpoint, "expirationTime": None, "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth)}}

    def decrypt(self, body: bytes) -> dict:
        return json.loads(http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"))


@pytest.fixture
def vapid(site):
    """The site with VAPID keys (generated as the admin's button does) and loopback allowed for push services."""
    from siteconfig.services import site_vapid_keys_generate

    site(webhook_networks="127.0.0.0/8")
    return site_vapid_keys_generate(subject=SUBJECT)


@pytest.fixture
def push_here(monkeypatch):
    """The Web Push task runs at once in this process (as the default-queue worker would), its arguments through
    JSON as the broker carries them."""
    from alerts import tasks

    ran = []

    def delay(user_id, notification):
        ran.append(tasks.alert_push.run(*json.loads(json.dumps([user_id, notification]))))

    monkeypatch.setattr(tasks.alert_push, "delay", delay)
    return ran


def subscribe(api_as, user, browser: Browser, endpoint: str, **extra):
    return api_as(user).post("/api/v1/push-subscriptions/", {**browser.subscription(endpoint), **extra}, format="json")


def alert(camera, owner, route, run_queued, severity="critical", **fields):
    make_rule(owner, notify_in_app=True)
    event = EventFactory(camera=camera, severity=severity, description="Smoke near the door.", **fields)
    route(event)
    run_queued()
    return event


# -- the push itself ------------------------------------------------------------------------------------------
def test_an_in_app_alert_is_pushed_encrypted_and_signed_to_the_users_browser(
        camera, owner, hook, route, run_queued, push_here, vapid, api_as):
    browser = Browser()
    response = subscribe(api_as, owner, browser, hook.url("/push/owner-1"))
    assert response.status_code == 201, response.content
    subscription = PushSubscription.objects.get(pk=response.json()["id"])
    assert subscription.user == owner and subscription.application_server_key == vapid.vapid_public_key

    event = alert(camera, owner, route, run_queued)
    delivery = Delivery.objects.get(recipient=owner, medium="in_app")
    assert delivery.status == "sent"
    assert push_here == [{"sent": 1, "failed": 0, "removed": 0}]
    assert len(hook.requests) == 1
    request = hook.requests[0]
    assert request["path"] == "/push/owner-1"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    # VAPID (RFC 8292): "vapid t=<JWT>,k=<the site's public key>", the JWT signed by its private key
    assert headers["authorization"].startswith("vapid t=")
    assert Vapid02.verify(headers["authorization"])
    parts = dict(part.split("=", 1) for part in headers["authorization"][len("vapid "):].split(","))
    assert parts["k"] == vapid.vapid_public_key
    claims = json.loads(unb64url(parts["t"].split(".")[1]))
    assert claims["aud"] == f"http://127.0.0.1:{hook.port}" and claims["sub"] == SUBJECT
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    assert headers["content-encoding"] == "aes128gcm"
    assert headers["ttl"] == "86400" and headers["urgency"] == "high"  # critical: kept a day, delivered at once
    # RFC 8291: only the browser's keys open it
    payload = browser.decrypt(request["body"])
    assert payload == {
        "type": "alert", "title": f"Critical · {camera.name}", "body": payload["body"],
        "url": f"http://127.0.0.1:8000/events/{event.pk}/", "event": str(event.pk), "camera": camera.pk,
        "severity": "critical", "delivery": delivery.pk, "tag": f"alert-{delivery.pk}", "update": False,
        "lang": payload["lang"]}
    assert "CRITICAL on" in payload["body"] and camera.name in payload["body"]
    assert "Smoke near the door." not in request["body"].decode("latin-1")  # encrypted
    with pytest.raises(Exception):
        Browser().decrypt(request["body"])  # another browser's keys do not open it
    subscription.refresh_from_db()
    assert subscription.last_success_at is not None and subscription.failures == 0


def test_urgency_and_ttl_follow_the_severity(camera, owner, hook, route, run_queued, push_here, vapid, api_as,
                                             settings):
    settings.PUSH_TTL_MINOR_SECONDS = 600
    browser = Browser()
    assert subscribe(api_as, owner, browser, hook.url("/push/low")).status_code == 201
    alert(camera, owner, route, run_queued, severity="low")
    headers = {k.lower(): v for k, v in hook.requests[0]["headers"].items()}
    assert headers["urgency"] == "low" and headers["ttl"] == "600"
    assert browser.decrypt(hook.requests[0]["body"])["severity"] == "low"


def test_a_410_answer_forgets_the_subscription_and_the_delivery_stays_sent(
        camera, owner, hook, route, run_queued, push_here, vapid, api_as):
    assert subscribe(api_as, owner, Browser(), hook.url("/push/gone")).status_code == 201
    hook.statuses = [410]
    alert(camera, owner, route, run_queued)
    assert len(hook.requests) == 1
    assert push_here == [{"sent": 0, "failed": 0, "removed": 1}]
    assert not PushSubscription.objects.exists()
    assert Delivery.objects.get(recipient=owner, medium="in_app").status == "sent"


def test_a_failing_push_service_is_recorded_never_blocking_the_in_app_delivery(
        camera, owner, hook, route, run_queued, push_here, vapid, api_as, settings):
    settings.PUSH_MAX_FAILURES = 2
    browser = Browser()
    assert subscribe(api_as, owner, browser, hook.url("/push/flaky")).status_code == 201
    hook.statuses = [500, 503]
    alert(camera, owner, route, run_queued)
    subscription = PushSubscription.objects.get()
    assert subscription.failures == 1 and "500" in subscription.last_error and subscription.last_failure_at
    assert Delivery.objects.get(recipient=owner, medium="in_app").status == "sent"
    # the second failure in a row (PUSH_MAX_FAILURES): dropped
    alert(camera, owner, route, run_queued, severity="high")
    assert push_here[-1] == {"sent": 0, "failed": 1, "removed": 0}
    assert not PushSubscription.objects.exists()


def test_an_unreachable_push_service_is_a_recorded_failure(camera, owner, route, run_queued, push_here, vapid, api_as,
                                                            settings):
    settings.PUSH_HTTP_TIMEOUT = 2
    assert subscribe(api_as, owner, Browser(), "http://127.0.0.1:9/push/closed").status_code == 201
    alert(camera, owner, route, run_queued)
    assert push_here == [{"sent": 0, "failed": 1, "removed": 0}]
    assert "Connection" in PushSubscription.objects.get().last_error
    assert Delivery.objects.get(recipient=owner, medium="in_app").status == "sent"


def test_a_push_goes_only_to_the_recipient_and_only_for_cameras_they_may_view(
        camera, owner, viewer, outsider, hook, route, run_queued, push_here, vapid, api_as):
    owners, viewers, outsiders = Browser(), Browser(), Browser()
    for user, browser, path in ((owner, owners, "/push/o"), (viewer, viewers, "/push/v"),
                                (outsider, outsiders, "/push/x")):
        assert subscribe(api_as, user, browser, hook.url(path)).status_code == 201
        make_rule(user, notify_in_app=True)  # the outsider's rule too: they may not view the camera
    make_rule(viewer, notify_in_app=False, name="no in-app")  # the viewer's other rule sends nothing in-app
    event = EventFactory(camera=camera, severity="high")
    route(event)
    run_queued()
    paths = sorted(r["path"] for r in hook.requests)
    assert paths == ["/push/o", "/push/v"]  # never the outsider, who may not view the camera
    by_path = {r["path"]: r for r in hook.requests}
    for user, browser, path in ((owner, owners, "/push/o"), (viewer, viewers, "/push/v")):
        payload = browser.decrypt(by_path[path]["body"])
        assert payload["delivery"] == Delivery.objects.get(recipient=user, medium="in_app").pk
        assert payload["event"] == str(event.pk)
    assert not Delivery.objects.filter(recipient=outsider).exists()


def test_no_keys_no_push_and_no_subscription(camera, owner, hook, route, run_queued, push_here, api_as, site):
    site(webhook_networks="127.0.0.0/8")
    response = subscribe(api_as, owner, Browser(), hook.url("/push/none"))
    assert response.status_code == 400 and "endpoint" in response.json()
    assert "VAPID" in str(response.json()["endpoint"])
    PushSubscription.objects.create(user=owner, endpoint=hook.url("/push/old"), p256dh=Browser().p256dh,
                                    auth=b64url(os.urandom(16)))
    alert(camera, owner, route, run_queued)
    assert push_here == [] and hook.requests == []  # nothing queued: the site has no keys
    assert Delivery.objects.get(recipient=owner, medium="in_app").status == "sent"
    assert api_as(owner).get("/api/v1/push/vapid-public-key/").json()["enabled"] is False


def test_subscriptions_made_with_old_keys_are_dropped_at_the_next_push(
        camera, owner, hook, route, run_queued, push_here, vapid, api_as):
    from siteconfig.services import site_vapid_keys_generate

    assert subscribe(api_as, owner, Browser(), hook.url("/push/old-keys")).status_code == 201
    new = site_vapid_keys_generate()
    assert new.vapid_public_key != vapid.vapid_public_key and new.vapid_subject == SUBJECT
    alert(camera, owner, route, run_queued)
    assert hook.requests == [] and push_here == [{"sent": 0, "failed": 0, "removed": 1}]
    assert not PushSubscription.objects.exists()


def test_a_follow_up_is_pushed_with_the_same_tag_as_an_update(camera, owner, hook, route, run_queued, push_here,
                                                              vapid, api_as):
    browser = Browser()
    assert subscribe(api_as, owner, browser, hook.url("/push/thread")).status_code == 201
    make_rule(owner, notify_in_app=True)
    event = EventFactory(camera=camera, severity="critical", description="")
    route(event)
    run_queued()
    event.description = "A man climbs over the gate."
    event.save(update_fields=["description"])
    route(event)
    run_queued()
    first, update = (browser.decrypt(r["body"]) for r in hook.requests)
    assert first["update"] is False and update["update"] is True
    assert update["tag"] == first["tag"] and update["delivery"] == first["delivery"]
    assert "A man climbs over the gate." in update["body"]


# -- the API --------------------------------------------------------------------------------------------------
def test_users_see_and_delete_only_their_own_subscriptions(owner, viewer, vapid, api_as, hook):
    mine = subscribe(api_as, owner, Browser(), hook.url("/push/mine")).json()
    theirs = subscribe(api_as, viewer, Browser(), hook.url("/push/theirs")).json()
    assert "auth" not in mine and "p256dh" not in mine and mine["endpoint"] == hook.url("/push/mine")
    listed = api_as(owner).get("/api/v1/push-subscriptions/").json()["results"]
    assert [s["id"] for s in listed] == [mine["id"]]
    for method in ("get", "delete"):
        response = getattr(api_as(owner), method)(f"/api/v1/push-subscriptions/{theirs['id']}/")
        assert response.status_code == 404 and response.json()["detail"]
    assert PushSubscription.objects.filter(pk=theirs["id"]).exists()
    assert api_as(owner).get(f"/api/v1/push-subscriptions/{mine['id']}/").status_code == 200
    assert api_as(owner).delete(f"/api/v1/push-subscriptions/{mine['id']}/").status_code == 204
    assert not PushSubscription.objects.filter(pk=mine["id"]).exists()


def test_the_same_endpoint_again_is_updated_and_moves_to_whoever_posts_it(owner, viewer, vapid, api_as, hook):
    endpoint = hook.url("/push/shared-browser")
    first = subscribe(api_as, owner, Browser(), endpoint).json()
    again = subscribe(api_as, owner, Browser(), endpoint).json()
    assert again["id"] == first["id"] and PushSubscription.objects.count() == 1
    moved = subscribe(api_as, viewer, Browser(), endpoint)  # another user signed in on that browser
    assert moved.status_code == 201 and moved.json()["id"] == first["id"]
    assert PushSubscription.objects.get().user == viewer
    assert api_as(owner).get("/api/v1/push-subscriptions/").json()["results"] == []


def test_a_user_keeps_at_most_push_max_subscriptions(owner, vapid, api_as, hook, settings):
    settings.PUSH_MAX_SUBSCRIPTIONS = 2
    ids = [subscribe(api_as, owner, Browser(), hook.url(f"/push/{i}")).json()["id"] for i in range(3)]
    assert set(PushSubscription.objects.values_list("id", flat=True)) == set(ids[1:])


@pytest.mark.parametrize("endpoint", [
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata: refused whatever the networks say
    "http://10.1.2.3/push",                      # an internal address the webhook networks do not list
    "ftp://push.example.com/x",
    "not a url",
    "",
])
def test_a_bad_endpoint_is_a_400_naming_the_field(owner, vapid, api_as, endpoint):
    response = subscribe(api_as, owner, Browser(), endpoint)
    assert response.status_code == 400, response.content
    assert "endpoint" in response.json(), response.json()
    assert not PushSubscription.objects.exists()


@pytest.mark.parametrize("keys,field", [
    ({"p256dh": "short", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}, "p256dh"),
    ({"p256dh": b64url(b"\x04" + b"\x01" * 64), "auth": "AAAAAAAAAAAAAAAAAAAAAA"}, "p256dh"),  # not on the curve
    ({"p256dh": Browser().p256dh, "auth": b64url(b"x" * 8)}, "auth"),
    ({"p256dh": Browser().p256dh, "auth": "not base64!"}, "auth"),
    ({"p256dh": Browser().p256dh}, "auth"),
])
def test_bad_keys_are_a_400_naming_them(owner, vapid, api_as, hook, keys, field):
    response = api_as(owner).post("/api/v1/push-subscriptions/", {"endpoint": hook.url(), "keys": keys}, format="json")
    assert response.status_code == 400 and field in response.json().get("keys", {}), response.json()


def test_the_public_key_and_the_service_worker(client, owner, vapid, api_as):
    config = api_as(owner).get("/api/v1/push/vapid-public-key/").json()
    assert config == {"enabled": True, "public_key": vapid.vapid_public_key,
                      "subscriptions": "/api/v1/push-subscriptions/", "service_worker": "/sw.js"}
    assert vapid.vapid_private_key not in json.dumps(config)
    response = client.get("/sw.js")
    assert response.status_code == 200 and response["Service-Worker-Allowed"] == "/"
    assert response["Content-Type"].startswith("text/javascript") and "no-cache" in response["Cache-Control"]
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b'addEventListener("push"' in body and b'addEventListener("notificationclick"' in body


def test_signed_in_pages_say_where_to_subscribe_without_reading_the_keys(client, owner, vapid):
    from siteconfig.selectors import site_settings_clear_cache

    client.force_login(owner)
    html = client.get("/accounts/preferences/").content.decode()
    assert 'id="push-enabled"' in html and "js/push.js" in html and "js/notify.js" in html
    assert '"config": "/api/v1/push/vapid-public-key/"' in html and '"worker": "/sw.js"' in html
    assert vapid.vapid_private_key not in html
    # the page asks for the key itself, once notifications are allowed: rendering it reads no site settings
    site_settings_clear_cache()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        client.get("/accounts/preferences/")
    assert not [q for q in queries.captured_queries if "siteconfig_sitesettings" in q["sql"]]


# -- the keys in the site settings ----------------------------------------------------------------------------
def test_the_private_key_is_never_shown_in_the_api(staff, vapid, api_as):
    client = api_as(staff)
    data = client.get("/api/v1/site/settings/").json()
    assert data["vapid_public_key"] == vapid.vapid_public_key and data["has_vapid_private_key"] is True
    assert data["vapid_subject"] == SUBJECT
    assert "vapid_private_key" not in data and vapid.vapid_private_key not in json.dumps(data)
    # generating again: a new pair, still not shown
    response = client.patch("/api/v1/site/settings/", {"generate_vapid_keys": True}, format="json")
    assert response.status_code == 200
    data = response.json()
    assert data["vapid_public_key"] != vapid.vapid_public_key and "vapid_private_key" not in data
    from siteconfig.selectors import site_settings

    stored = site_settings().vapid_private_key
    assert stored and stored != vapid.vapid_private_key and stored not in response.content.decode()
    # "" keeps it, null clears the pair
    assert client.patch("/api/v1/site/settings/", {"vapid_private_key": ""}, format="json").json()[
        "has_vapid_private_key"] is True
    cleared = client.patch("/api/v1/site/settings/", {"vapid_private_key": None}, format="json").json()
    assert cleared["has_vapid_private_key"] is False and cleared["vapid_public_key"] == ""


def test_a_private_key_alone_gives_its_public_key(staff, site, api_as):
    from siteconfig import vapid as keys

    public, private = keys.generate()
    response = api_as(staff).patch("/api/v1/site/settings/", {"vapid_private_key": private,
                                                              "vapid_subject": "https://cameras.example.com"},
                                   format="json")
    assert response.status_code == 200, response.content
    assert response.json()["vapid_public_key"] == public and private not in response.content.decode()


@pytest.mark.parametrize("changes,field", [
    ({"vapid_private_key": "not-a-key", "vapid_subject": SUBJECT}, "vapid_private_key"),
    ({"vapid_subject": "admin@example.com"}, "vapid_subject"),  # not mailto:
    ({"vapid_subject": "http://cameras.example.com"}, "vapid_subject"),  # not https
    ({"vapid_subject": ""}, "vapid_subject"),  # keys without a contact
    ({"vapid_public_key": "BBBB"}, "vapid_public_key"),  # not the private key's
    ({"generate_vapid_keys": "maybe"}, "generate_vapid_keys"),
])
def test_bad_vapid_settings_are_a_400_naming_the_field(staff, vapid, api_as, changes, field):
    response = api_as(staff).patch("/api/v1/site/settings/", changes, format="json")
    assert response.status_code == 400 and field in response.json(), response.content


def test_the_admin_generates_keys_and_never_shows_the_private_one(client, site):
    from siteconfig.selectors import site_settings

    admin = UserFactory(username="root", is_staff=True, is_superuser=True, email="root@example.com")
    client.force_login(admin)
    url = f"/admin/siteconfig/sitesettings/{site_settings().pk}/change/"
    page = client.get(url)
    assert page.status_code == 200 and b'name="_generate_vapid"' in page.content
    form = page.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None or value is False:
            continue
        data[name] = json.dumps(value) if isinstance(value, dict | list) else value
    response = client.post(url, {**data, "_generate_vapid": "Generate VAPID keys"})
    assert response.status_code == 302, getattr(response, "context", None) and response.context["adminform"].form.errors
    row = site_settings()
    assert row.vapid_private_key and row.vapid_public_key and row.vapid_subject == "mailto:root@example.com"
    html = client.get(url).content.decode()
    assert row.vapid_public_key in html and row.vapid_private_key not in html
    assert "A private key is stored (not shown)." in html
    # saving the form again (the private key's box left empty) keeps the pair
    page = client.get(url)
    form = page.context["adminform"].form
    data = {name: (json.dumps(v) if isinstance(v, dict | list) else v)
            for name in form.fields  # a 0 (a recording cap's "none") is a value to send, False and None are not
            if (v := form.initial.get(name, form.fields[name].initial)) is not None and v is not False}
    assert client.post(url, data).status_code == 302
    again = site_settings()
    assert (again.vapid_public_key, again.vapid_private_key) == (row.vapid_public_key, row.vapid_private_key)


def test_the_keys_generated_sign_what_py_vapid_verifies():
    from siteconfig import vapid as keys

    public, private = keys.generate()
    assert len(unb64url(public)) == 65 and len(unb64url(private)) == 32 and keys.public_key_of(private) == public
    signer = Vapid02.from_string(private)
    header = signer.sign({"sub": SUBJECT, "aud": "https://push.example.com"})["Authorization"]
    assert Vapid02.verify(header) and f"k={public}" in header
