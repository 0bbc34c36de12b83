"""Self-service alerts in the pages (My alerts: channels and rules of one's own), and the mail server of the
site settings (admin and API: the password is never shown; email alerts go through it).

The browser's walk through the same pages is tests/pages/test_self_service.py.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from alerts.models import AlertRule, Delivery, NotificationChannel
from alerts.services import alert_channel_test, alert_rule_create, notification_channel_create
from audit.models import AuditEntry
from tests.alerts.conftest import SECRET
from tests.alerts.smtp_server import SmtpServer
from tests.factories import CameraFactory, UserFactory

pytestmark = pytest.mark.django_db

APPRISE_URL = "tgram://123456789:AAH-very-secret-bot-token/-100200300"


@pytest.fixture
def smtp():
    server = SmtpServer(username="mailer", password="smtp-pass-word-42")
    yield server
    server.close()


@pytest.fixture
def smtp_site(site, smtp):
    """The site's mail server: the local SMTP server, signed in, no TLS."""
    return site(smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_security="none", smtp_username="mailer",
                smtp_password="smtp-pass-word-42", smtp_from_email="Surveillance <alerts@example.org>")


def _channel_post(**fields):
    data = {"name": "Mine", "kind": "email", "email": "", "url": "", "secret": "", "enabled": "on"}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


# -- channels in the pages ----------------------------------------------------------------------------
def test_an_operator_creates_changes_and_deletes_channels_in_the_pages(client, owner, hook):
    client.force_login(owner)
    page = client.get(reverse("my-alerts")).content.decode()
    assert "Create and change channels and rules in the API" not in page  # no longer read-only
    assert reverse("my-alerts-channel-new") in page and reverse("my-alerts-rule-new") in page
    assert reverse("api-docs") in page  # a secondary hint only

    response = client.post(reverse("my-alerts-channel-new"),
                           _channel_post(name="Hook", kind="webhook", url=hook.url(), secret=SECRET))
    assert response.status_code == 302 and response["Location"] == reverse("my-alerts")
    channel = NotificationChannel.objects.get(owner=owner, name="Hook")
    assert channel.kind == "webhook" and channel.url == hook.url() and channel.secret == SECRET
    assert AuditEntry.objects.filter(action="channel.create", target_id=str(channel.pk)).exists()

    # The secret is never shown back; an empty box keeps it.
    form = client.get(reverse("my-alerts-channel", args=[channel.pk])).content.decode()
    assert SECRET not in form and hook.url() in form and "A secret is stored" in form
    response = client.post(reverse("my-alerts-channel", args=[channel.pk]),
                           _channel_post(name="Hook 2", kind="email", url=hook.url(), enabled=None))
    assert response.status_code == 302
    channel.refresh_from_db()
    assert (channel.name, channel.kind, channel.secret, channel.enabled) == ("Hook 2", "webhook", SECRET, False)
    # A new one replaces it.
    client.post(reverse("my-alerts-channel", args=[channel.pk]),
                _channel_post(name="Hook 2", url=hook.url(), secret="another-long-secret-key"))
    channel.refresh_from_db()
    assert channel.secret == "another-long-secret-key" and channel.enabled

    response = client.post(reverse("my-alerts-channel-delete", args=[channel.pk]))
    assert response.status_code == 302 and not NotificationChannel.objects.filter(pk=channel.pk).exists()
    assert AuditEntry.objects.filter(action="channel.delete", target_id=str(channel.pk)).exists()


def test_an_apprise_url_is_never_shown_back(client, owner):
    channel = notification_channel_create(owner=owner, name="Telegram", kind="apprise", url=APPRISE_URL)
    client.force_login(owner)
    for url in (reverse("my-alerts"), reverse("my-alerts-channel", args=[channel.pk])):
        html = client.get(url).content.decode()
        assert "very-secret-bot-token" not in html and "tgram://…" in html, url
    # Left empty: kept.
    client.post(reverse("my-alerts-channel", args=[channel.pk]), _channel_post(name="Telegram 2", kind="apprise"))
    channel.refresh_from_db()
    assert channel.name == "Telegram 2" and channel.url == APPRISE_URL


def test_bad_channel_input_names_the_field_and_is_never_a_server_error(client, owner):
    client.force_login(owner)
    cases = [
        (_channel_post(name=""), "name"),
        (_channel_post(kind="pigeon"), "kind"),
        (_channel_post(email="not-an-address"), "email"),
        (_channel_post(kind="webhook", url="ftp://example.com/x", secret=SECRET), "url"),
        (_channel_post(kind="webhook", url="https://example.com/hook", secret="short"), "secret"),
        (_channel_post(kind="apprise", url="nonsense"), "url"),
        # An internal address the site settings do not allow for webhooks.
        (_channel_post(kind="webhook", url="http://10.1.2.3/hook", secret=SECRET), "url"),
    ]
    for data, field in cases:
        response = client.post(reverse("my-alerts-channel-new"), data)
        assert response.status_code == 200, (data, response.status_code)
        html = response.content.decode()
        assert f'data-field="{field}"' in html and 'class="field has-error" data-field="' + field in html, (field, html)
    assert not NotificationChannel.objects.filter(owner=owner).exists()


def test_an_email_channel_says_when_the_site_cannot_send_email(client, owner, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"  # make run's default
    channel = notification_channel_create(owner=owner, name="Mail", kind="email", email="me@example.com")
    client.force_login(owner)
    html = client.get(reverse("my-alerts")).content.decode()
    assert 'data-role="email-not-set-up"' in html
    assert "Email is not set up on this site, so this channel cannot send anything" in html
    form = client.get(reverse("my-alerts-channel", args=[channel.pk])).content.decode()
    assert "Email is not set up on this site" in form
    # Its test says why it failed, never "sent".
    page = client.post(reverse("my-alerts-test", args=[channel.pk]), follow=True).content.decode()
    assert "Test alert through Mail failed: Email is not set up on this site" in page
    assert "Site settings" in page and "Test alert sent" not in page
    assert Delivery.objects.get(channel=channel).status == Delivery.Status.FAILED


def test_nobody_sees_or_changes_anyone_elses_channel_or_rule(client, owner, outsider, viewer, staff):
    channel = notification_channel_create(owner=owner, name="Owner mail", kind="email", email="o@example.com")
    rule = alert_rule_create(owner=owner, name="Owner rule", all_cameras=True, channels=[channel.pk])
    for user in (outsider, viewer, staff):
        client.force_login(user)
        for name, pk in (("my-alerts-channel", channel.pk), ("my-alerts-channel-delete", channel.pk),
                         ("my-alerts-rule", rule.pk), ("my-alerts-rule-delete", rule.pk)):
            assert client.get(reverse(name, args=[pk])).status_code == 403, (user, name)
            assert client.post(reverse(name, args=[pk]), {"name": "Taken", "all_cameras": "1",
                                                          "min_severity": "low"}).status_code == 403
        assert client.post(reverse("my-alerts-test", args=[channel.pk])).status_code == 403
        assert "Owner mail" not in client.get(reverse("my-alerts")).content.decode()
        # Their own rule may not name someone else's channel: it is not among the choices.
        client.post(reverse("my-alerts-rule-new"), {"name": "Sneaky", "all_cameras": "1", "min_severity": "low",
                                                    "channels": [channel.pk]})
        assert not AlertRule.objects.filter(name="Sneaky", channels=channel).exists()
    channel.refresh_from_db()
    rule.refresh_from_db()
    assert channel.name == "Owner mail" and rule.name == "Owner rule"
    client.logout()
    response = client.get(reverse("my-alerts-channel", args=[channel.pk]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


# -- rules in the pages -------------------------------------------------------------------------------
def test_an_operator_creates_changes_and_deletes_a_rule(client, owner, camera):
    hidden = CameraFactory(name="Vault (not granted)")
    mine = notification_channel_create(owner=owner, name="Mine", kind="email", email="o@example.com")
    client.force_login(owner)
    form = client.get(reverse("my-alerts-rule-new")).content.decode()
    assert camera.name in form and hidden.name not in form and "Mine (Email)" in form

    response = client.post(reverse("my-alerts-rule-new"), {
        "name": "Gate at night", "enabled": "on", "all_cameras": "0", "cameras": [camera.pk], "min_severity": "high",
        "kinds": ["scene", "camera_offline"], "quiet_start": "22:00", "quiet_end": "07:00",
        "time_zone": "Europe/Berlin", "notify_in_app": "on", "channels": [mine.pk]})
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = AlertRule.objects.get(owner=owner, name="Gate at night")
    assert not rule.all_cameras and [c.pk for c in rule.cameras.all()] == [camera.pk]
    assert rule.min_severity == "high" and rule.kinds == ["scene", "camera_offline"]
    assert (rule.quiet_start.hour, rule.quiet_end.hour, rule.time_zone) == (22, 7, "Europe/Berlin")
    assert not rule.critical_in_quiet_hours and rule.notify_in_app and [c.pk for c in rule.channels.all()] == [mine.pk]
    assert AuditEntry.objects.filter(action="rule.create", target_id=str(rule.pk)).exists()

    page = client.get(reverse("my-alerts-rule", args=[rule.pk])).content.decode()
    assert 'value="Gate at night"' in page and 'value="22:00"' in page

    response = client.post(reverse("my-alerts-rule", args=[rule.pk]), {
        "name": "Everything", "enabled": "on", "all_cameras": "1", "min_severity": "low", "kinds": [],
        "quiet_start": "", "quiet_end": "", "time_zone": "", "critical_in_quiet_hours": "on"})
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.all_cameras and rule.kinds == [] and rule.quiet_start is None and rule.critical_in_quiet_hours
    assert not rule.notify_in_app and not rule.channels.exists()
    assert "This rule sends nothing" in client.get(reverse("my-alerts")).content.decode()

    assert client.post(reverse("my-alerts-rule-delete", args=[rule.pk])).status_code == 302
    assert not AlertRule.objects.filter(pk=rule.pk).exists()


def test_bad_rule_input_names_the_field(client, owner, camera):
    hidden = CameraFactory(name="Vault (not granted)")
    client.force_login(owner)
    base = {"name": "R", "all_cameras": "1", "min_severity": "medium"}
    cases = [
        ({**base, "name": ""}, "name"),
        ({**base, "min_severity": "apocalyptic"}, "min_severity"),
        ({**base, "kinds": ["weather"]}, "kinds"),
        ({**base, "all_cameras": "0"}, "cameras"),                     # none chosen
        ({**base, "all_cameras": "0", "cameras": [hidden.pk]}, "cameras"),  # one they may not view
        ({**base, "cameras": ["x"]}, "cameras"),
        ({**base, "quiet_start": "22:00"}, "quiet_end"),
        ({**base, "quiet_start": "25:99", "quiet_end": "07:00"}, "quiet_start"),
        ({**base, "quiet_start": "08:00", "quiet_end": "08:00"}, "quiet_end"),  # the model's own check
        ({**base, "time_zone": "Mars/Olympus"}, "time_zone"),
        ({**base, "channels": [999999]}, "channels"),
    ]
    for data, field in cases:
        response = client.post(reverse("my-alerts-rule-new"), data)
        assert response.status_code == 200, (data, response.status_code)
        assert 'class="field has-error" data-field="' + field in response.content.decode(), (field, data)
    assert not AlertRule.objects.filter(owner=owner).exists()


def test_editing_a_rule_keeps_its_escalation_steps(client, owner):
    mine = notification_channel_create(owner=owner, name="Mine", kind="email", email="o@example.com")
    rule = alert_rule_create(owner=owner, name="Urgent", all_cameras=True,
                             escalation_steps=[{"after_minutes": 5, "channels": [mine.pk]}])
    client.force_login(owner)
    assert "escalation step" in client.get(reverse("my-alerts-rule", args=[rule.pk])).content.decode()
    client.post(reverse("my-alerts-rule", args=[rule.pk]), {"name": "Urgent 2", "all_cameras": "1",
                                                            "min_severity": "high", "notify_in_app": "on"})
    rule.refresh_from_db()
    assert rule.name == "Urgent 2" and rule.escalation_steps.count() == 1


# -- the mail server in the site settings -------------------------------------------------------------------
def test_email_alerts_go_through_the_site_settings_mail_server(client, owner, smtp, smtp_site, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"  # the environment sets none
    channel = notification_channel_create(owner=owner, name="Mail", kind="email", email="owner@example.com")
    client.force_login(owner)
    assert 'data-role="email-not-set-up"' not in client.get(reverse("my-alerts")).content.decode()
    page = client.post(reverse("my-alerts-test", args=[channel.pk]), follow=True).content.decode()
    assert "Test alert sent through Mail." in page
    [received] = smtp.wait_for(1)
    assert received["to"] == ["owner@example.com"] and received["from"] == "alerts@example.org"
    assert received["message"]["From"] == "Surveillance <alerts@example.org>"
    assert received["message"]["Subject"] and smtp.logins == [("mailer", "smtp-pass-word-42")]


def test_a_mail_server_that_refuses_says_why(owner, smtp, site, settings):
    site(smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_security="none", smtp_username="mailer",
         smtp_password="wrong-password")
    channel = notification_channel_create(owner=owner, name="Mail", kind="email", email="owner@example.com")
    delivery = alert_channel_test(channel=channel, by=owner)
    assert delivery.status == Delivery.Status.FAILED and "535" in delivery.error
    assert not smtp.messages


def test_without_a_mail_server_the_environment_applies(owner, settings, mailoutbox):
    # No SMTP host in the site settings: EMAIL_BACKEND (the suite's locmem) as before.
    channel = notification_channel_create(owner=owner, name="Mail", kind="email", email="owner@example.com")
    assert alert_channel_test(channel=channel, by=owner).status == Delivery.Status.SENT
    assert len(mailoutbox) == 1
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    failed = alert_channel_test(channel=channel, by=owner)
    assert failed.status == Delivery.Status.FAILED
    assert "fills the SMTP fields" in failed.error and "Site settings" in failed.error and "EMAIL_HOST" in failed.error


def test_the_api_never_returns_the_smtp_password(api_as, staff, site):
    client = api_as(staff)
    response = client.patch("/api/v1/site/settings/", {
        "smtp_host": "mail.example.com", "smtp_port": 465, "smtp_security": "ssl", "smtp_username": "u",
        "smtp_password": "api-secret-pass", "smtp_from_email": "alerts@example.com"}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert "smtp_password" not in body and body["has_smtp_password"] is True
    assert "api-secret-pass" not in response.content.decode()
    assert "api-secret-pass" not in client.get("/api/v1/site/settings/").content.decode()
    from siteconfig.selectors import site_settings

    assert site_settings().smtp_password == "api-secret-pass"
    # Left out, or empty: kept. Null: cleared.
    client.patch("/api/v1/site/settings/", {"smtp_port": 587, "smtp_security": "starttls"}, format="json")
    client.patch("/api/v1/site/settings/", {"smtp_password": ""}, format="json")
    assert site_settings().smtp_password == "api-secret-pass"
    cleared = client.patch("/api/v1/site/settings/", {"smtp_password": None}, format="json")
    assert cleared.json()["has_smtp_password"] is False and site_settings().smtp_password == ""
    # Bad values name the field.
    for field, value in (("smtp_port", 70000), ("smtp_security", "rot13"), ("smtp_host", "smtp.example.com:25"),
                         ("smtp_from_email", "nobody"), ("smtp_port", None)):
        bad = client.patch("/api/v1/site/settings/", {field: value}, format="json")
        assert bad.status_code == 400 and field in bad.json(), (field, bad.json())
    # Only staff.
    assert api_as(UserFactory(username="not-staff")).get("/api/v1/site/settings/").status_code == 403


def test_the_admin_never_shows_the_smtp_password(admin_client, site):
    site(smtp_host="mail.example.com", smtp_username="u", smtp_password="admin-secret-pass")
    from siteconfig.selectors import site_settings

    url = "/admin/siteconfig/sitesettings/1/change/"
    page = admin_client.get(url).content.decode()
    assert "admin-secret-pass" not in page and 'name="smtp_password"' in page and "A password is stored" in page
    assert 'name="smtp_host"' in page and "Email (SMTP)" in page

    form = admin_client.get(url).context["adminform"].form
    data = {name: ("" if value is None else value) for name, value in form.initial.items()
            if name not in ("vlm_server", "agent_server")}
    data.update(vlm_server="{}", agent_server="{}", smtp_password="", smtp_host="smtp2.example.com")
    data = {k: v for k, v in data.items() if v is not False}
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    row = site_settings()
    assert row.smtp_host == "smtp2.example.com" and row.smtp_password == "admin-secret-pass"  # empty: kept
    response = admin_client.post(url, {**data, "smtp_password": "new-pass-word"})
    assert site_settings().smtp_password == "new-pass-word"
    response = admin_client.post(url, {**data, "smtp_password_clear": "on"})
    assert site_settings().smtp_password == ""


# -- the API docs without a CDN -------------------------------------------------------------------------------
def test_the_api_docs_load_only_the_sites_own_files(client):
    import re

    html = client.get("/api/v1/docs/").content.decode()
    urls = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)', html) + re.findall(r'https?://[^\s"\'<>)]+', html)
    assert any("/static/drf_spectacular_sidecar/swagger-ui-dist/" in u for u in urls), html
    outside = [u for u in urls if re.match(r"^(https?:)?//", u)]
    assert not outside, outside
    from django.contrib.staticfiles import finders

    for url in urls:
        if url.startswith("/static/"):
            assert finders.find(url.removeprefix("/static/").split("?")[0]), url
