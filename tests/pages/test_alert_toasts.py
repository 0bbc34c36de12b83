"""In-app alerts on open pages, in Debian's Chromium (Playwright) against a real daphne and Redis
(docs/alerts.md, "On open pages"; static/js/notify.js). Takes docs/screenshots/alert-toast.png.

An event is stored as the worker stores it (``events.services.event_records_store``) and routed through the
real alert path: ``alerts_route`` and ``alert_deliver`` run in this process, as a default-queue worker
would run them (the broker is shared by every test run on the machine), and the in-app notification
reaches the pages through the channel layer and daphne's WebSockets.

A signed-in operator with the dashboard open sees a toast naming the camera and the severity within a
second, hears the alert sound, and the badge and the title count 1; their events list page (and a desktop
notification while it is hidden) too. A muted operator gets the toast and no sound; an outsider who may not
view the camera gets nothing. The description's follow-up updates the toast; acknowledging the event takes
it off every badge.
"""

import threading
import time
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connections
from django.utils import timezone
from guardian.shortcuts import assign_perm

from alerts.models import AlertRule, Delivery
from cameras.groups import user_group
from events.models import AnomalyEvent
from events.services import event_records_store
from tests.factories import CameraFactory, UserFactory
from tests.pages.conftest import CHROMIUM_ARGS, chromium
from tests.pages.test_browser import JS_ERRORS, SHOTS, shot, sign_in
from tests.system.processes import process_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

#: Sounds without a click first, as on a page the operator has used (browsers allow it then).
ARGS = [*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"]
FADE_SECONDS = 2  # ALERT_TOAST_SECONDS of the server: low and medium toasts fade after it

#: A page that is hidden on demand (window.__hidden) and records desktop notifications instead of showing them.
DESKTOP_STUB = """
window.__desktop = [];
Object.defineProperty(Document.prototype, "hidden", { configurable: true, get() { return window.__hidden === true; } });
window.Notification = class {
  constructor(title, options) { this.title = title; this.options = options || {}; window.__desktop.push(this); }
  close() { this.closed = true; }
  static get permission() { return "granted"; }
  static requestPermission() { return Promise.resolve("granted"); }
};
"""


@pytest.fixture
def browser(monkeypatch):
    with chromium(monkeypatch, ARGS) as launched:
        yield launched


@pytest.fixture
def worker_here(monkeypatch):
    """Routing and delivery run at once in this process, as the default-queue worker would run them."""
    from alerts import tasks

    monkeypatch.setattr(tasks.alerts_route, "delay", lambda *args: tasks.alerts_route.apply(args=args).get())
    monkeypatch.setattr(tasks.alert_deliver, "delay", lambda delivery_id: tasks.alert_deliver.run(delivery_id))
    monkeypatch.setattr(tasks.alert_deliver, "apply_async",
                        lambda args, countdown=None, **kw: tasks.alert_deliver.run(*args))


def in_thread(fn, *args, **kwargs):
    """Run ``fn`` in its own thread (Playwright keeps an event loop in this one: no async_to_sync here)."""
    out = {}

    def run():
        try:
            out["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # re-raised in the test
            out["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if "error" in out:
        raise out["error"]
    return out.get("value")


def record(camera, **extra) -> dict:
    """The record the worker emits when an episode opens: preliminary severity, no description."""
    return {"id": str(uuid.uuid4()), "camera_id": camera.pk, "started_at": timezone.now().isoformat(),
            "severity": "critical", "peak_score": 0.95, "description": "", "labels": ["person"],
            "details": {"detector": "objects", "objects": [{"id": 1, "track": 1, "label": "person",
                                                            "box": [10, 10, 50, 90]}]},
            "decision": {"severity": "critical", "actions": ["alert_now"], "reasons": []}, **extra}


def push(user, payload):
    """A notification straight onto the user's sockets (for what the toasts do with many)."""
    async_to_sync(get_channel_layer().group_send)(user_group(user.pk), {"type": "notification", "payload": payload})


def connected(page):
    page.wait_for_selector('#toasts[data-connected="1"]', state="attached", timeout=30_000)


TOASTS = "#toasts .toast"


def test_alerts_reach_the_open_pages(processes, browser, worker_here, tmp_path, settings):
    JS_ERRORS.clear()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    alice = UserFactory(username="alice")  # operator: sound on
    bob = UserFactory(username="bob")  # operator who muted the sound
    bob.alert_sound = False
    bob.save(update_fields=["alert_sound"])
    mallory = UserFactory(username="mallory")  # an in-app rule, but no grant on the camera
    gate = CameraFactory(name="North gate", source_url="demo://")
    for user in (alice, bob):
        for perm in ("view_camera", "operate_camera"):
            assign_perm(perm, user, gate)
    for user in (alice, bob, mallory):
        AlertRule.objects.create(owner=user, name="Everything in-app", min_severity="low", notify_in_app=True)

    env = process_env(tmp_path, ALERT_TOAST_SECONDS=FADE_SECONDS)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the server keeps Django's async-safety checks
    port = processes.daphne(env)
    base = f"http://127.0.0.1:{port}"
    settings.SITE_URL = base  # the alerts' links (rendered here, where the delivery runs)

    dash = sign_in(browser, base, "alice")  # the dashboard
    events_tab = dash.context.new_page()
    events_tab.add_init_script(DESKTOP_STUB)
    events_tab.goto(f"{base}/events/")
    events_tab.evaluate("window.__hidden = true")  # another tab is in front: desktop notifications show
    bobs = sign_in(browser, base, "bob")
    bobs.goto(f"{base}/events/")
    mallorys = sign_in(browser, base, "mallory")
    pages = (dash, events_tab, bobs, mallorys)
    for page in pages:
        connected(page)
        assert page.locator("#alert-badge").is_hidden() and not page.title().startswith("(")
    time.sleep(0.5)  # the sockets have joined their users' groups

    # -- a critical event: the toast, the sound, the badge and the title -------------------------------------
    first = record(gate)
    in_thread(event_records_store, [first])
    delivery = Delivery.objects.get(recipient=alice, medium="in_app", mode="immediate")
    assert delivery.status == "sent"
    toast = dash.wait_for_selector(f'{TOASTS}[data-event="{first["id"]}"]', timeout=1_000)  # within a second
    assert toast.get_attribute("data-delivery") == str(delivery.pk)
    assert toast.query_selector('[data-role="camera"]').inner_text() == "North gate"
    assert toast.query_selector('[data-role="severity"]').inner_text() == "Critical"
    assert "CRITICAL on North gate" in toast.query_selector('[data-role="title"]').inner_text()
    assert toast.query_selector('[data-role="link"]').get_attribute("href") == f"{base}/events/{first['id']}/"
    dash.wait_for_function("document.getElementById('alert-sound').played.length > 0", timeout=5_000)
    assert dash.evaluate("document.getElementById('alert-sound').dataset.played") == "1"
    assert dash.inner_text('#alert-badge [data-role="count"]') == "1" and dash.locator("#alert-badge").is_visible()
    assert dash.title().startswith("(1) ") and "Dashboard" in dash.title()
    assert dash.get_attribute("#toasts", "role") == "status" and dash.get_attribute("#toasts", "aria-live")

    # the events list page of the same operator, hidden behind the dashboard: a toast and a desktop notification
    events_tab.wait_for_selector(f'{TOASTS}[data-event="{first["id"]}"]', timeout=1_000)
    assert events_tab.title().startswith("(1) ")
    desktop = events_tab.evaluate("window.__desktop.map(n => ({title: n.title, body: n.options.body, tag: n.options.tag}))")
    assert len(desktop) == 1 and desktop[0]["title"] == "Critical · North gate", desktop
    assert desktop[0]["tag"] == f"alert-{delivery.pk}" and "CRITICAL on North gate" in desktop[0]["body"]

    # the muted operator: the toast, no sound
    bobs.wait_for_selector(f'{TOASTS}[data-event="{first["id"]}"]', timeout=1_000)
    assert bobs.evaluate("document.getElementById('alert-sound') === null")
    assert bobs.evaluate("document.body.dataset.alertSound") == "0"
    assert bobs.inner_text('#alert-badge [data-role="count"]') == "1"

    # the outsider: nothing at all
    time.sleep(1.5)
    assert mallorys.locator(TOASTS).count() == 0 and mallorys.locator("#alert-badge").is_hidden()
    assert not mallorys.title().startswith("(")
    assert not Delivery.objects.filter(recipient=mallory).exists()

    # a page opened now counts it from the server
    fresh = dash.context.new_page()
    fresh.goto(f"{base}/alerts/")
    assert fresh.title().startswith("(1) ") and fresh.inner_text('#alert-badge [data-role="count"]') == "1"
    fresh.close()

    # -- the description arrives: the same toast, updated; no second sound ---------------------------------------
    in_thread(event_records_store, [{**first, "description": "A man climbs over the north gate."}])
    for page in (dash, events_tab, bobs):
        page.wait_for_selector(f'{TOASTS}[data-event="{first["id"]}"][data-updated="1"]', timeout=2_000)
        assert page.locator(TOASTS).count() == 1
        assert "A man climbs over the north gate." in page.inner_text(f'{TOASTS} [data-role="title"]')
    assert dash.evaluate("document.getElementById('alert-sound').dataset.played") == "1"
    assert dash.inner_text('#alert-badge [data-role="count"]') == "1"
    # a second medium alert: a toast of its own, under the critical one, that fades; the critical one stays
    medium = record(gate, severity="medium", details={"kind": "loitering"},
                    decision={"severity": "medium", "actions": ["alert_now"], "reasons": []})
    in_thread(event_records_store, [medium])
    dash.wait_for_selector(f'{TOASTS}[data-event="{medium["id"]}"]', timeout=2_000)
    assert dash.eval_on_selector_all(TOASTS, "ts => ts.map(t => t.dataset.severity)") == ["medium", "critical"]
    assert dash.inner_text('#alert-badge [data-role="count"]') == "1"  # medium alerts are not counted
    dash.wait_for_timeout(300)
    shot(dash, "alert-toast.png")
    dash.wait_for_selector(f'{TOASTS}[data-event="{medium["id"]}"]', state="detached",
                           timeout=(FADE_SECONDS + 3) * 1000)
    assert dash.locator(f'{TOASTS}[data-event="{first["id"]}"]').count() == 1  # critical: until dismissed
    assert dash.evaluate("document.getElementById('alert-sound').dataset.played") == "1"  # medium: silent

    # -- the operator opens the event from the toast and acknowledges it: off every badge --------------------------
    events_tab.evaluate("window.__hidden = false")
    events_tab.click(f'{TOASTS}[data-event="{first["id"]}"] [data-role="link"]')
    events_tab.wait_for_url(f"{base}/events/{first['id']}/")
    events_tab.click('button[data-action="acknowledge"]')
    events_tab.wait_for_selector('#event-actions [data-role="status"]:has-text("Acknowledged")')
    assert AnomalyEvent.objects.get(pk=first["id"]).status == "acknowledged"
    for page in (dash, bobs):  # the dashboard follows the camera; bob's events list watches it for its count
        page.wait_for_selector("#alert-badge", state="hidden", timeout=5_000)
        assert not page.title().startswith("(")
    assert events_tab.locator("#alert-badge").is_hidden()  # the page after acknowledging, from the server

    # dismissed by its close button
    dash.click(f'{TOASTS}[data-event="{first["id"]}"] [data-role="close"]')
    assert dash.locator(TOASTS).count() == 0

    # -- at most five at once, the oldest dropped (pushed straight to bob's sockets) ---------------------------------
    for n in range(1, 7):
        in_thread(push, bob, {"event": str(uuid.uuid4()), "camera": gate.pk, "camera_name": "North gate",
                              "severity": "high", "title": f"Alert {n}", "url": f"{base}/events/x/",
                              "delivery": 10_000 + n, "similar_suppressed": 0, "earlier_suppressed": 0})
    bobs.wait_for_selector(f'{TOASTS}[data-delivery="10006"]', timeout=2_000)
    assert bobs.eval_on_selector_all(TOASTS, "ts => ts.map(t => t.dataset.delivery)") == [
        "10006", "10005", "10004", "10003", "10002"]

    # -- the preferences page: desktop notifications, once the browser allows them ------------------------------------
    prefs = dash.context.new_page()
    prefs.goto(f"{base}/accounts/preferences/")
    prefs.wait_for_selector("#desktop-notifications-status[data-permission]", state="attached")
    permission = prefs.get_attribute("#desktop-notifications-status", "data-permission")
    assert permission in ("default", "denied"), permission
    if permission == "default":
        assert prefs.locator("#desktop-notifications").is_visible()
    dash.context.grant_permissions(["notifications"], origin=base)
    prefs.reload()
    prefs.wait_for_selector('#desktop-notifications-status[data-permission="granted"]', state="attached")
    assert prefs.locator("#desktop-notifications").is_hidden()
    assert "Desktop notifications are on" in prefs.inner_text("#desktop-notifications-status")

    assert (SHOTS / "alert-toast.png").stat().st_size > 10_000
    assert not JS_ERRORS, "JavaScript errors:\n" + "\n".join(JS_ERRORS)
