"""The operator pages in Debian's Chromium (Playwright), against a real daphne, Celery worker and Redis
running real footage. Takes the screenshots in docs/screenshots/.

Operators sign in, see live pictures on the dashboard and new events arrive without reloading, open an
event and play its clip, acknowledge it and see the change on a second operator's open page; a viewer
without the operate permission sees no action buttons.
"""

import re
import time

import pytest
from guardian.shortcuts import assign_perm

from alerts.services import alert_rule_create, notification_channel_create
from cameras.services import camera_start
from events.models import AnomalyEvent
from runtime.tasks import camera_run
from tests.conftest import ROOT, dataset
from tests.factories import CameraFactory, UserFactory
from tests.system.processes import process_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "pass-word-123"  # tests.factories.UserFactory
SHOTS = ROOT / "docs" / "screenshots"


#: Uncaught JavaScript errors on any page of the test (asserted empty at the end).
JS_ERRORS: list[str] = []


def _watch(page):
    page.on("pageerror", lambda exc: JS_ERRORS.append(f"{page.url}: {exc}"))


def sign_in(browser, base, username, **context):
    context.setdefault("viewport", {"width": 1440, "height": 900})
    ctx = browser.new_context(**context)
    ctx.on("page", _watch)
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    return page


def wait_for(predicate, timeout, what, output):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    pytest.fail(f"timed out waiting for {what}\n{output()}")


def shot(page, name, **kwargs):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header at the top of full-page pictures
    page.screenshot(path=str(SHOTS / name), **kwargs)


def test_operators_in_the_browser(processes, browser, tmp_path, settings):
    JS_ERRORS.clear()
    ucsd = dataset("ucsd-ped1/videos/testing/Test024.mp4")
    ucsd_bikes = dataset("ucsd-ped1/videos/testing/Test014.mp4")
    walkway = dataset("pets-walkway/vtest.avi")
    settings.MEDIA_ROOT = tmp_path / "media"
    # the servers run the real settings: passwords must use a hasher they know (the suite's is MD5)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    alice = UserFactory(username="alice", first_name="Alice")  # operator
    bob = UserFactory(username="bob")  # a second operator
    carol = UserFactory(username="carol")  # viewer only
    UserFactory(username="mallory")  # no grants
    cameras = [CameraFactory(name="Walkway (PETS 2009)", source_url=str(walkway), threshold=0.5),
               CameraFactory(name="Campus path (UCSD Ped1)", source_url=str(ucsd), threshold=0.45),
               CameraFactory(name="Campus path, north (UCSD Ped1)", source_url=str(ucsd_bikes), threshold=0.45)]
    secret = CameraFactory(name="Vault (no access)", source_url="demo://")
    for camera in cameras:
        for user in (alice, bob, carol):
            assign_perm("view_camera", user, camera)
        for user in (alice, bob):
            assign_perm("operate_camera", user, camera)
    channel = notification_channel_create(owner=alice, name="Alice's email", kind="email", email="alice@example.com")
    alert_rule_create(owner=alice, name="High and critical, all my cameras", min_severity="high",
                      channels=[channel.pk], quiet_start="22:00", quiet_end="06:00", time_zone="Europe/London")

    # Email really goes somewhere: files in tmp_path/mail (the console backend would deliver nothing, and an
    # email alert is then refused as "not set up").
    env = process_env(tmp_path, WORKER_HEARTBEAT_SECONDS=1, CLIP_PRE_SECONDS=3,
                      EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
                      EMAIL_FILE_PATH=tmp_path / "mail")
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the servers keep Django's async-safety checks
    port = processes.daphne(env)
    base = f"http://127.0.0.1:{port}"
    processes.worker(env)
    for camera in cameras:
        camera_start(camera=camera, by=alice)
        camera_run.apply_async(args=[camera.id])  # the real broker (the suite records .delay only)

    # -- dashboard: live pictures, states, and new events without reloading --------------------------------
    dash = sign_in(browser, base, "alice")
    assert secret.name not in dash.content()  # never listed
    dash.evaluate("window.__loadedOnce = true")
    initial_events = set(dash.eval_on_selector_all("#events tbody tr[data-event]", "rows => rows.map(r => r.dataset.event)"))
    for camera in cameras:
        dash.wait_for_selector(f'[data-camera="{camera.pk}"] img[data-role="frame"][src^="blob:"]', timeout=120_000)
        dash.wait_for_selector(f'[data-camera="{camera.pk}"] [data-role="state"][data-state="running"]')
    latest = wait_for(
        lambda: AnomalyEvent.objects.filter(camera=cameras[1], ended_at__isnull=False).exclude(clip="")
        .order_by("-started_at").first(), 240, "a closed event with a clip", processes.output)
    dash.wait_for_selector(f'#events tbody tr[data-event="{latest.pk}"]', timeout=30_000)
    live_rows = set(dash.eval_on_selector_all("#events tbody tr[data-event]", "rows => rows.map(r => r.dataset.event)"))
    assert live_rows - initial_events, "no event row arrived live"
    assert dash.evaluate("window.__loadedOnce === true")  # the page was never reloaded
    dash.wait_for_selector(f'[data-camera="{cameras[1].pk}"] [data-role="latest"] [data-event]')
    # a few more events for a telling picture (they keep arriving live)
    deadline = time.monotonic() + 90
    while dash.locator("#events tbody tr[data-event]").count() < 5 and time.monotonic() < deadline:
        dash.wait_for_timeout(1000)
    time.sleep(2)
    shot(dash, "dashboard.png")
    closed = (AnomalyEvent.objects.filter(camera=cameras[1], ended_at__isnull=False).exclude(clip="")
              .order_by("-peak_score").first())  # the clearest one, for the event page

    phone = sign_in(browser, base, "alice", viewport={"width": 390, "height": 844}, is_mobile=True,
                    device_scale_factor=2)
    phone.wait_for_selector('img[data-role="frame"][src^="blob:"]', timeout=60_000)
    shot(phone, "dashboard-phone.png")
    phone.context.close()

    # -- camera page: live view at a chosen frame rate, score charts, events, controls ------------------------
    cam = dash.context.new_page()
    cam.goto(f"{base}/cameras/{cameras[1].pk}/")
    cam.wait_for_selector('#live-frame[src^="blob:"]', timeout=60_000)
    cam.select_option("#live-fps", "10")
    cam.wait_for_function("document.getElementById('live-rate').textContent.includes('fps')", timeout=30_000)
    assert cam.locator('button[data-action="stop"]').count() == 1
    assert cam.locator("#chart-live canvas").count() == 1 and cam.locator("#chart-day canvas").count() == 1
    cam.click('button[data-span="3600"]')  # the last hour of the timeline
    # the worker's live figures for this camera
    cam.wait_for_function("/^[0-9.]+$/.test(document.querySelector('#figures [data-figure=\"fps\"]').textContent)",
                          timeout=30_000)
    # "learn what is normal now": the job runs on the inference worker, its progress arrives live
    cam.click('button[data-action="learn"]')
    cam.wait_for_selector('#learning [data-role="job"]:not([hidden])', timeout=30_000)
    cam.wait_for_selector('#learning [data-role="versions"] tr:not([data-empty])', timeout=180_000)
    cam.wait_for_selector('#learning [data-role="job-status"]:has-text("Done")', timeout=30_000)
    assert cameras[1].detector_versions.count() == 1
    time.sleep(4)  # a few live score points (the camera restarted with the learned state)
    shot(cam, "camera.png", full_page=True)

    # -- events list ---------------------------------------------------------------------------------------------
    cam.goto(f"{base}/events/?camera={cameras[1].pk}")
    assert cam.locator(f'tr[data-event="{closed.pk}"]').count() == 1
    shot(cam, "events.png", full_page=True)

    # -- the event page: snapshot, region, clip playing, decision, curve -----------------------------------------
    event_url = f"{base}/events/{closed.pk}/"
    page_a = dash.context.new_page()
    page_a.goto(event_url)
    page_a.wait_for_selector(".snapshot svg rect")
    page_a.wait_for_function("document.getElementById('clip').readyState >= 1", timeout=30_000)
    page_a.evaluate("document.getElementById('clip').play()")
    page_a.wait_for_function("document.getElementById('clip').currentTime > 0.5", timeout=30_000)
    video = page_a.evaluate("(() => { const v = document.getElementById('clip');"
                            " return {error: v.error && v.error.code, width: v.videoWidth, duration: v.duration}; })()")
    assert video["error"] is None and video["width"] > 0 and video["duration"] >= 1, video
    page_a.evaluate("(() => { const v = document.getElementById('clip'); v.pause(); v.currentTime = 0; })()")

    # a second operator has the same event open
    page_b = sign_in(browser, base, "bob")
    page_b.goto(event_url)
    page_b.wait_for_selector('#event[data-live="1"]')
    page_b.evaluate("window.__loadedOnce = true")
    assert page_b.locator('button[data-action="acknowledge"]').count() == 1

    page_a.click('button[data-action="acknowledge"]')
    page_a.wait_for_selector('#event-actions [data-role="status"]:has-text("Acknowledged")')
    page_b.wait_for_selector('#event-actions [data-role="status"]:has-text("Acknowledged")', timeout=15_000)
    assert "Acknowledged by alice" in page_b.inner_text("#event-actions")
    assert page_b.evaluate("window.__loadedOnce === true")  # live, not a reload
    assert page_b.locator('button[data-action="acknowledge"]').count() == 0
    page_a.wait_for_timeout(1500)
    shot(page_a, "event.png", full_page=True)

    # -- a viewer without the operate permission sees no action buttons ----------------------------------------
    page_c = sign_in(browser, base, "carol")
    page_c.goto(event_url)
    page_c.wait_for_selector("#event-actions")
    assert page_c.locator("#event-actions button").count() == 0
    assert page_c.locator("[data-action]").count() == 0
    page_c.goto(f"{base}/cameras/{cameras[1].pk}/")
    assert page_c.locator('button[data-action="stop"], button[data-action="start"]').count() == 0
    page_c.goto(f"{base}/events/")
    assert page_c.locator('input[name="event"]').count() == 0

    # -- an outsider is refused ---------------------------------------------------------------------------------
    page_m = sign_in(browser, base, "mallory")
    assert page_m.goto(event_url).status == 403
    assert page_m.goto(f"{base}/cameras/{cameras[1].pk}/").status == 403
    assert page_m.goto(f"{base}/events/{closed.pk}/clip.webm").status == 404

    # -- Korean, in Seoul time --------------------------------------------------------------------------------
    bob.time_zone = "Asia/Seoul"
    bob.save(update_fields=["time_zone"])
    page_ko = sign_in(browser, base, "bob", locale="ko-KR")
    page_ko.goto(event_url)
    page_ko.wait_for_selector("#event-actions")
    assert "처리" in page_ko.inner_text("#event-actions") and "Asia/Seoul" in page_ko.inner_text("header.top")
    page_ko.wait_for_timeout(1000)
    # Nothing the product says is left in English: only the names people gave and product names.
    shown = page_ko.inner_text("body")
    for kept in (*(c.name for c in cameras), "bob", "alice", "Asia/Seoul", "VLM", "Ollama", "llama.cpp", "vLLM",
                 "API"):
        shown = shown.replace(kept, " ")
    assert re.findall(r"[A-Za-z]{3,}", shown) == [], shown
    shot(page_ko, "event-ko.png", full_page=True)

    # -- my alerts, with a test alert ----------------------------------------------------------------------------
    alerts = dash.context.new_page()
    alerts.goto(f"{base}/alerts/")
    alerts.click('button[data-action="test"]')
    alerts.wait_for_selector(".messages .msg-success")
    assert "Test alert sent through Alice's email." in alerts.inner_text(".messages")
    wait_for(lambda: any("Test alert" in f.read_text() for f in (tmp_path / "mail").glob("*.log")), 30,
             "the test email written by the worker", processes.output)
    shot(alerts, "alerts.png", full_page=True)

    for name in ("dashboard.png", "dashboard-phone.png", "camera.png", "events.png", "event.png", "event-ko.png",
                 "alerts.png"):
        assert (SHOTS / name).stat().st_size > 10_000, name
    assert not JS_ERRORS, "JavaScript errors:\n" + "\n".join(JS_ERRORS)
