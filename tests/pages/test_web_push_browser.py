"""Web Push in Debian's Chromium (Playwright) against a real daphne (docs/alerts.md, "Web Push"; static/js/push.js,
static/js/sw.js).

Headless Chromium has no push service: ``pushManager.subscribe`` is refused there ("Registration failed -
permission denied"), and nothing can reach a real push service from the test machine. So the browser's push
service is the one thing stood in for, on both sides:

- in the page, ``PushManager.subscribe`` hands back a subscription whose endpoint is a local HTTP server of the
  test and whose keys the test holds (what a browser's push service would have made);
- the push the site sends there is decrypted by the test (RFC 8291) and handed to the service worker as the
  browser would, through the DevTools protocol (``ServiceWorker.deliverPushMessage``).

Everything else is real: the service worker registered at /sw.js with scope "/", the page posting the
subscription to the API with the site's key, a real in-app delivery pushing it, the service worker's
notification (none while a page of the site is in view: the page shows its toast), and signing out removing the
subscription. What cannot be tested here: a click on a system notification (``notificationclick``), which
headless Chromium never shows.
"""

import json

import pytest
from guardian.shortcuts import assign_perm

from alerts.models import AlertRule, Delivery, PushSubscription
from events.services import event_records_store
from tests.alerts.conftest import HookServer
from tests.alerts.test_web_push import Browser
from tests.factories import CameraFactory, UserFactory
from tests.pages.test_alert_toasts import connected, in_thread, record, worker_here  # noqa: F401 (fixture)
from tests.pages.test_browser import JS_ERRORS, sign_in
from tests.system.processes import process_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

#: The browser's push service, stood in for: subscribe() gives the test's endpoint and keys.
FAKE_PUSH_SERVICE = """
(() => {
  const fake = %s;
  let current = null;
  window.__subscribeKeys = [];
  const make = (key) => ({
    endpoint: fake.endpoint, expirationTime: null, options: { applicationServerKey: key, userVisibleOnly: true },
    toJSON() { return { endpoint: fake.endpoint, expirationTime: null, keys: fake.keys }; },
    unsubscribe() { current = null; window.__unsubscribed = (window.__unsubscribed || 0) + 1; return Promise.resolve(true); },
  });
  if (!window.PushManager) return;
  PushManager.prototype.getSubscription = function () { return Promise.resolve(current); };
  PushManager.prototype.subscribe = function (options) {
    const key = new Uint8Array(options.applicationServerKey).buffer;
    window.__subscribeKeys.push(btoa(String.fromCharCode(...new Uint8Array(key))));
    current = make(key);
    return Promise.resolve(current);
  };
})();
"""


@pytest.fixture
def browser(monkeypatch):
    from tests.pages.conftest import chromium

    with chromium(monkeypatch) as launched:
        yield launched


@pytest.fixture
def push_service():
    server = HookServer()
    yield server
    server.close()


@pytest.fixture
def push_here(monkeypatch):
    from alerts import tasks

    monkeypatch.setattr(tasks.alert_push, "delay",
                        lambda user_id, notification: tasks.alert_push.run(*json.loads(json.dumps([user_id, notification]))))


def service_worker_registration(page) -> str:
    """The id DevTools knows the site's service worker registration by."""
    cdp = page.context.new_cdp_session(page)
    found = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: found.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    for _ in range(50):
        if found:
            break
        page.wait_for_timeout(100)
    return cdp, next(r["registrationId"] for r in found if not r["isDeleted"])


def notifications(page) -> list:
    return page.evaluate("""navigator.serviceWorker.ready.then(r => r.getNotifications()).then(ns => ns.map(
        n => ({title: n.title, body: n.body, tag: n.tag, data: n.data, requireInteraction: n.requireInteraction})))""")


def test_the_page_subscribes_and_the_service_worker_shows_the_pushed_alert(
        processes, browser, worker_here, push_here, push_service, tmp_path, settings):  # noqa: F811
    from siteconfig.services import site_settings_update, site_vapid_keys_generate

    JS_ERRORS.clear()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    site_settings_update(webhook_networks="127.0.0.0/8")
    keys = site_vapid_keys_generate(subject="mailto:admin@example.com")
    alice = UserFactory(username="alice")
    gate = CameraFactory(name="North gate", source_url="demo://")
    assign_perm("view_camera", alice, gate)
    AlertRule.objects.create(owner=alice, name="Everything in-app", min_severity="low", notify_in_app=True)

    env = process_env(tmp_path)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    base = f"http://127.0.0.1:{processes.daphne(env)}"
    settings.SITE_URL = base

    device = Browser()
    fake = device.subscription(push_service.url("/push/alice-phone"))
    page = sign_in(browser, base, "alice", permissions=["notifications"])
    page.context.add_init_script(FAKE_PUSH_SERVICE % json.dumps(fake))
    page.goto(f"{base}/")
    connected(page)

    # the service worker at the root, and the subscription posted with the site's key
    page.wait_for_function("document.documentElement.dataset.push", timeout=15_000)
    assert page.evaluate("document.documentElement.dataset.push") == "subscribed", \
        page.evaluate("window.SurveillancePush.error")
    assert page.evaluate("navigator.serviceWorker.getRegistration('/').then(r => r && r.scope)") == f"{base}/"
    sent_key = page.evaluate("window.__subscribeKeys[0]")
    assert sent_key.rstrip("=").replace("+", "-").replace("/", "_") == keys.vapid_public_key
    subscription = PushSubscription.objects.get()
    assert subscription.user == alice and subscription.endpoint == fake["endpoint"]
    assert subscription.p256dh == device.p256dh and "Chrome" in subscription.user_agent
    # posted once per browser session: another page does not post it again
    page.goto(f"{base}/events/")
    page.wait_for_function("document.documentElement.dataset.push === 'subscribed'")
    assert PushSubscription.objects.count() == 1

    # a real alert: the toast on the open page, and the push to the browser's push service
    first = record(gate)
    in_thread(event_records_store, [first])
    delivery = Delivery.objects.get(recipient=alice, medium="in_app")
    page.wait_for_selector(f'#toasts .toast[data-event="{first["id"]}"]', timeout=5_000)
    assert len(push_service.requests) == 1
    pushed = push_service.requests[0]
    assert pushed["path"] == "/push/alice-phone"
    payload = device.decrypt(pushed["body"])
    assert payload["title"] == "Critical · North gate" and payload["tag"] == f"alert-{delivery.pk}"
    assert payload["url"] == f"{base}/events/{first['id']}/"

    # the browser hands it to the service worker: while the page is in view, no system notification
    cdp, registration = service_worker_registration(page)
    data = json.dumps(payload)
    cdp.send("ServiceWorker.deliverPushMessage", {"origin": base, "registrationId": registration, "data": data})
    page.wait_for_timeout(500)
    assert notifications(page) == []
    # no page of the site open (the browser in the background): the notification of the system
    page.goto("about:blank")
    cdp.send("ServiceWorker.deliverPushMessage", {"origin": base, "registrationId": registration, "data": data})
    page.wait_for_timeout(800)
    page.goto(f"{base}/alerts/")
    shown = notifications(page)
    assert len(shown) == 1, shown
    assert shown[0]["title"] == "Critical · North gate" and "CRITICAL on North gate" in shown[0]["body"]
    assert shown[0]["tag"] == f"alert-{delivery.pk}" and shown[0]["requireInteraction"] is True
    assert shown[0]["data"]["url"] == f"{base}/events/{first['id']}/"
    # an update replaces it (the same tag): still one
    page.goto("about:blank")
    update = {**payload, "body": "Update: A man climbs over the gate.", "update": True}
    cdp.send("ServiceWorker.deliverPushMessage", {"origin": base, "registrationId": registration,
                                                  "data": json.dumps(update)})
    page.wait_for_timeout(800)
    page.goto(f"{base}/alerts/")
    shown = notifications(page)
    assert len(shown) == 1 and shown[0]["body"] == "Update: A man climbs over the gate.", shown

    # Preferences: off on this browser removes it; on again posts it again
    page.goto(f"{base}/accounts/preferences/")
    page.wait_for_function("document.getElementById('push-status').dataset.state === 'on'", timeout=10_000)
    assert page.is_checked("#push-enabled")
    page.uncheck("#push-enabled")
    page.wait_for_function("document.getElementById('push-status').dataset.state === 'off'", timeout=10_000)
    assert not PushSubscription.objects.exists()
    page.check("#push-enabled")
    page.wait_for_function("document.getElementById('push-status').dataset.state === 'on'", timeout=10_000)
    assert PushSubscription.objects.filter(user=alice).count() == 1

    # signing out: the server forgets this browser's subscription first
    page.click("header form button")
    page.wait_for_url(f"{base}/accounts/login/**", timeout=10_000)
    assert not PushSubscription.objects.exists()
    assert not JS_ERRORS, JS_ERRORS
