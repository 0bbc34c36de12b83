"""Self-service alerts and the API docs in Debian's Chromium (Playwright) against a real daphne (issue 18).

An operator creates an email channel and a webhook channel and a rule in the My alerts pages, presses "Send a
test alert" on each: the webhook's body reaches a local HTTP server, the email a local SMTP server set as the
site's mail server in the site settings. They change and delete them; another user gets 403 on those pages.
The API docs (Swagger UI) render with the page's network limited to the server: no CDN.
"""

import json

import pytest
from guardian.shortcuts import assign_perm

from alerts.models import AlertRule, NotificationChannel
from siteconfig.services import site_settings_update
from tests.alerts.conftest import SECRET, HookServer
from tests.alerts.smtp_server import SmtpServer
from tests.factories import CameraFactory, UserFactory
from tests.pages.test_browser import JS_ERRORS, sign_in
from tests.system.processes import process_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def hook():
    server = HookServer()
    yield server
    server.close()


@pytest.fixture
def smtp():
    server = SmtpServer()
    yield server
    server.close()


def _message(page) -> str:
    return page.inner_text("ul.messages")


def test_an_operator_sets_up_alerts_in_the_pages(processes, browser, tmp_path, settings, hook, smtp):
    JS_ERRORS.clear()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    alice = UserFactory(username="alice", email="alice@example.com")
    UserFactory(username="mallory")
    gate, yard = CameraFactory(name="North gate"), CameraFactory(name="Yard")
    CameraFactory(name="Vault (not alice's)")
    for camera in (gate, yard):
        for perm in ("view_camera", "operate_camera"):
            assign_perm(perm, alice, camera)
    # The administrator's site settings: the local mail server, and webhooks on loopback allowed.
    site_settings_update(webhook_networks="127.0.0.0/8", smtp_host="127.0.0.1", smtp_port=smtp.port,
                         smtp_security="none", smtp_from_email="alerts@example.org")
    env = process_env(tmp_path)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    base = f"http://127.0.0.1:{processes.daphne(env)}"

    page = sign_in(browser, base, "alice")
    page.goto(f"{base}/alerts/")
    assert "use the API" not in page.content()
    assert page.locator('[data-role="email-not-set-up"]').count() == 0  # the site has a mail server

    # An email channel.
    page.click('[data-action="new-channel"]')
    page.fill("#id_name", "My mail")
    page.check('input[name="kind"][value="email"]')
    assert page.is_visible("#id_email") and not page.is_visible("#id_secret")  # only the kind's fields
    page.fill("#id_email", "alice.alerts@example.com")
    page.click('[data-action="save"]')
    page.wait_for_url(f"{base}/alerts/")
    assert "Channel My mail created" in _message(page)

    # A webhook channel, to the local server.
    page.click('[data-action="new-channel"]')
    page.fill("#id_name", "My hook")
    page.check('input[name="kind"][value="webhook"]')
    assert page.is_visible("#id_secret") and not page.is_visible("#id_email")
    page.fill("#id_url", hook.url("/alice"))
    page.fill("#id_secret", "short")  # too short: said on the field, nothing saved
    page.click('[data-action="save"]')
    assert "at least 16 characters" in page.inner_text('[data-field="secret"] [data-role="error"]')
    page.fill("#id_secret", SECRET)
    page.click('[data-action="save"]')
    page.wait_for_url(f"{base}/alerts/")
    mail = NotificationChannel.objects.get(owner=alice, name="My mail")
    webhook = NotificationChannel.objects.get(owner=alice, name="My hook")
    assert webhook.secret == SECRET and webhook.url == hook.url("/alice")

    # A rule: only the gate, from high, scene anomalies, quiet hours, both channels.
    page.click('[data-action="new-rule"]')
    assert page.locator("text=Vault (not alice's)").count() == 0
    page.fill("#id_name", "Gate, urgent")
    page.check('input[name="all_cameras"][value="0"]')
    page.check(f'input[name="cameras"][value="{gate.pk}"]')
    page.select_option("#id_min_severity", "high")
    page.check('input[name="kinds"][value="scene"]')
    page.fill("#id_quiet_start", "22:00")
    page.fill("#id_quiet_end", "06:30")
    page.select_option("#id_time_zone", "Europe/Paris")
    for channel in (mail, webhook):
        page.check(f'input[name="channels"][value="{channel.pk}"]')
    page.click('[data-action="save"]')
    page.wait_for_url(f"{base}/alerts/")
    rule = AlertRule.objects.get(owner=alice)
    assert (rule.name, rule.all_cameras, rule.min_severity, rule.kinds, rule.time_zone) == (
        "Gate, urgent", False, "high", ["scene"], "Europe/Paris")
    assert {c.pk for c in rule.cameras.all()} == {gate.pk}
    assert {c.pk for c in rule.channels.all()} == {mail.pk, webhook.pk}
    assert "North gate" in page.inner_text(f'[data-rule="{rule.pk}"]')

    # Test alerts: the webhook's body at the local server, the email at the local SMTP server.
    page.click(f'[data-channel="{webhook.pk}"] [data-action="test"]')
    page.wait_for_url(f"{base}/alerts/")
    assert "Test alert sent through My hook." in _message(page)
    [received] = hook.wait_for(lambda r: r["path"] == "/alice")
    body = json.loads(received["body"])
    assert body["type"] == "test" and received["headers"]["X-Alert-Signature"].startswith("sha256=")
    page.click(f'[data-channel="{mail.pk}"] [data-action="test"]')
    page.wait_for_url(f"{base}/alerts/")
    assert "Test alert sent through My mail." in _message(page)
    [email] = smtp.wait_for(1)
    assert email["to"] == ["alice.alerts@example.com"] and email["from"] == "alerts@example.org"

    # Change the webhook: the secret is never shown back, and an empty box keeps it.
    page.click(f'[data-channel="{webhook.pk}"] [data-action="edit"]')
    assert page.input_value("#id_secret") == "" and SECRET not in page.content()
    page.fill("#id_name", "Home Assistant")
    page.click('[data-action="save"]')
    page.wait_for_url(f"{base}/alerts/")
    webhook.refresh_from_db()
    assert webhook.name == "Home Assistant" and webhook.secret == SECRET
    # Change the rule: every camera now.
    page.click(f'[data-rule="{rule.pk}"] [data-action="edit"]')
    page.check('input[name="all_cameras"][value="1"]')
    page.click('[data-action="save"]')
    page.wait_for_url(f"{base}/alerts/")
    rule.refresh_from_db()
    assert rule.all_cameras

    # Another user gets nothing of alice's.
    other = sign_in(browser, base, "mallory")
    for path in (f"/alerts/channels/{webhook.pk}/", f"/alerts/rules/{rule.pk}/", f"/alerts/channels/{mail.pk}/delete/"):
        assert other.goto(f"{base}{path}").status == 403, path
    other.goto(f"{base}/alerts/")
    assert "Home Assistant" not in other.content() and "Gate, urgent" not in other.content()

    # Delete the email channel and the rule.
    page.click(f'[data-channel="{mail.pk}"] [data-action="delete"]')
    page.click('[data-action="confirm-delete"]')
    page.wait_for_url(f"{base}/alerts/")
    assert "Channel My mail deleted" in _message(page)
    page.click(f'[data-rule="{rule.pk}"] [data-action="delete"]')
    page.click('[data-action="confirm-delete"]')
    page.wait_for_url(f"{base}/alerts/")
    assert not NotificationChannel.objects.filter(pk=mail.pk).exists()
    assert not AlertRule.objects.filter(pk=rule.pk).exists()
    assert NotificationChannel.objects.filter(pk=webhook.pk).exists()
    assert not JS_ERRORS, JS_ERRORS


def test_the_api_docs_render_without_a_cdn(processes, browser, tmp_path):
    env = process_env(tmp_path)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    base = f"http://127.0.0.1:{processes.daphne(env)}"
    context = browser.new_context()
    refused, asked = [], []

    def only_the_server(route):
        url = route.request.url
        asked.append(url)
        if url.startswith(base + "/") or url.startswith("data:") or url.startswith("blob:"):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    context.route("**/*", only_the_server)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{base}/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .opblock")
    assert page.locator(".swagger-ui .opblock").count() > 20
    assert "Surveillance API" in page.inner_text(".swagger-ui .info")
    assert not refused, refused
    assert any("/static/drf_spectacular_sidecar/" in url for url in asked)
    context.close()
