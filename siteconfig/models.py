"""The site's own settings, kept in the database (admin and API, staff only).

One row. What a site must change to work (the networks its cameras, model servers and alert
targets live on, registration, sign-in limits, its reverse proxy) is changed here, without a
restart: every process rereads the row within ``SITE_SETTINGS_CACHE_SECONDS``. Environment
variables only seed the row when it is first created (docs/deployment.md).
"""

import ipaddress
import math
from email.utils import parseaddr

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, validate_email
from django.db import models
from django.utils.translation import gettext_lazy as _

from inference.addresses import parse_networks
from inference.openai_chat import CLIENT_PARAMS, check_params

from .vapid import VapidKeyError, check_subject, public_key_of

# Private LANs, loopback, CGNAT/Tailscale and IPv6 unique-local: where a self-hosted site's cameras
# and model servers live. Link-local (169.254.0.0/16, fe80::/10) is not in it, and cloud metadata
# addresses are refused whatever is listed (inference.addresses.METADATA_ADDRESSES).
LOCAL_NETWORKS = "10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 127.0.0.0/8, 100.64.0.0/10, fc00::/7, ::1/128"

NETWORK_FIELDS = ("camera_networks", "model_server_networks", "webhook_networks", "trusted_proxies")


def _ipv6(value: str) -> bool:
    try:
        return ipaddress.ip_address(value).version == 6
    except ValueError:
        return False


def _seed(name: str, fallback: str) -> str:
    value = getattr(settings, name, None)
    return fallback if value is None else value


def _camera_networks_default():
    return _seed("SEED_CAMERA_NETWORKS", LOCAL_NETWORKS)


def _model_server_networks_default():
    return _seed("SEED_MODEL_SERVER_NETWORKS", LOCAL_NETWORKS)


def _webhook_networks_default():
    return _seed("SEED_WEBHOOK_NETWORKS", "")


def _trusted_proxies_default():
    return _seed("SEED_TRUSTED_PROXIES", "")


def _registration_open_default():
    return bool(getattr(settings, "SEED_REGISTRATION_OPEN", False))


# Recording retention (docs/recordings.md "Retention"): the RECORDING_* environment settings seed the row.
def _number(name: str, fallback: float) -> float:
    value = getattr(settings, name, None)
    return float(fallback if value is None else value)


def _recording_max_gb_default():
    return _number("RECORDING_MAX_GB", 0)


def _recording_min_free_gb_default():
    return _number("RECORDING_MIN_FREE_GB", 1)


def _recording_days_continuous_default():
    return _number("RECORDING_RETENTION_DAYS_CONTINUOUS", 7)


def _recording_days_motion_default():
    return _number("RECORDING_RETENTION_DAYS_MOTION", 14)


def _recording_days_events_default():
    return _number("RECORDING_RETENTION_DAYS_EVENTS", 30)


#: The largest values the recording retention fields take: a size cap of 1 PB, a free-space floor of 100 TB,
#: ten years of footage.
RECORDING_MAX_GB_LIMIT = 1_000_000
RECORDING_MIN_FREE_GB_LIMIT = 100_000
RECORDING_DAYS_LIMIT = 3650
#: field: its largest value.
RECORDING_FIELDS = {
    "recording_max_gb": RECORDING_MAX_GB_LIMIT,
    "recording_min_free_gb": RECORDING_MIN_FREE_GB_LIMIT,
    "recording_retention_days_continuous": RECORDING_DAYS_LIMIT,
    "recording_retention_days_motion": RECORDING_DAYS_LIMIT,
    "recording_retention_days_events": RECORDING_DAYS_LIMIT,
}


class SiteSettings(models.Model):
    class SmtpSecurity(models.TextChoices):
        STARTTLS = "starttls", "STARTTLS (usually port 587)"
        SSL = "ssl", "SSL/TLS from the start (usually port 465)"
        NONE = "none", "None (plain, usually port 25; only on a trusted network)"

    NETWORKS_HELP = (
        "Comma-separated networks (CIDR such as 192.168.1.0/24, or single addresses); * allows every "
        "address. Public internet addresses are always allowed; internal ones (private, loopback, "
        "link-local, reserved) only when listed here. Cloud metadata addresses are always refused."
    )

    camera_networks = models.TextField(
        "camera networks", blank=True, default=_camera_networks_default,
        help_text="Internal networks camera streams may be on. " + NETWORKS_HELP)
    model_server_networks = models.TextField(
        "model server networks", blank=True, default=_model_server_networks_default,
        help_text="Internal networks model servers (Ollama, llama.cpp, vLLM) may be on. " + NETWORKS_HELP)
    webhook_networks = models.TextField(
        "webhook and Apprise networks", blank=True, default=_webhook_networks_default,
        help_text="Internal networks alert webhooks and Apprise targets may be on (for example Home "
                  "Assistant, Node-RED or ntfy on the LAN). Empty: public addresses only. " + NETWORKS_HELP)
    registration_open = models.BooleanField(
        "self-registration open", default=_registration_open_default,
        help_text="Anyone may create an account through POST /api/v1/auth/register/. Off: administrators "
                  "create users in the admin.")
    login_max_failures = models.PositiveIntegerField(
        "failed sign-ins before a pause", default=5,
        help_text="Failed sign-ins allowed per user name and client address within the window below.")
    login_lockout_seconds = models.PositiveIntegerField(
        "sign-in pause (seconds)", default=300,
        help_text="How long a user name is paused for one client address after too many failed sign-ins.")
    trusted_proxies = models.TextField(
        "trusted reverse proxies", blank=True, default=_trusted_proxies_default,
        help_text="Networks of the reverse proxies in front of this site. Only a request from one of them "
                  "has its X-Forwarded-For believed (the nearest address not itself a proxy is the client). "
                  "Empty: the connecting address is the client.")
    vlm_server = models.JSONField(
        "default VLM server", default=dict, blank=True,
        help_text="The model server cameras with the \"openai\" VLM backend use, unless they give their own "
                  "vlm_params (theirs win, key by key). " + ", ".join(CLIENT_PARAMS) + ". For example "
                  '{"base_url": "http://192.168.1.10:11434/v1", "model": "qwen2.5vl:7b", "timeout": 20} (Ollama).')
    agent_server = models.JSONField(
        "default agent server", default=dict, blank=True,
        help_text="The model server cameras with the \"openai\" agent policy use, unless they give their own "
                  "agent_params (theirs win, key by key). Same parameters as the VLM server.")
    # Email alerts: the mail server. Empty host: the EMAIL_* environment settings apply (docs/alerts.md).
    smtp_host = models.CharField(
        "SMTP server", max_length=255, blank=True, default="",
        help_text="The mail server email alerts are sent through, e.g. smtp.example.com. Empty: the site's "
                  "EMAIL_* environment settings apply (by default mail is only printed in the server's log, "
                  "so email alerts fail as \"not set up\").")
    smtp_port = models.PositiveIntegerField(
        "SMTP port", default=587, validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text="Usually 587 with STARTTLS, 465 with SSL/TLS, 25 without encryption.")
    smtp_security = models.CharField(
        "SMTP encryption", max_length=16, choices=SmtpSecurity.choices, default=SmtpSecurity.STARTTLS)
    smtp_username = models.CharField(
        "SMTP user name", max_length=255, blank=True, default="",
        help_text="Empty: the server is used without signing in.")
    smtp_password = models.CharField(
        "SMTP password", max_length=255, blank=True, default="",
        help_text="Stored, never shown back: leave it empty to keep the current one.")
    smtp_from_email = models.CharField(
        "sender address", max_length=255, blank=True, default="",
        help_text="The From address of email alerts, e.g. alerts@example.com or "
                  "\"Surveillance <alerts@example.com>\". Empty: DEFAULT_FROM_EMAIL.")
    # Web Push (docs/alerts.md "Web Push"): the site's VAPID key pair and contact. Empty keys: no push is sent.
    vapid_public_key = models.CharField(
        _("VAPID public key"), max_length=100, blank=True, default="",
        help_text=_("The application server key browsers subscribe with (base64url, 65 bytes). Left empty with a "
                    "private key given, it is derived from it."))
    vapid_private_key = models.CharField(
        _("VAPID private key"), max_length=100, blank=True, default="",
        help_text=_("Stored, never shown back (base64url of the 32-byte P-256 key). Use \"Generate VAPID keys\" "
                    "rather than typing one."))
    vapid_subject = models.CharField(
        _("VAPID contact"), max_length=255, blank=True, default="",
        help_text=_("How push services reach the site's administrator: mailto:admin@example.com, or the site's "
                    "https:// address without a path (https://cameras.example.com)."))
    # Recording retention (docs/recordings.md "Retention"), read by each run of recordings_retention.
    recording_max_gb = models.FloatField(
        _("size cap per folder (GB)"), default=_recording_max_gb_default,
        validators=[MinValueValidator(0), MaxValueValidator(RECORDING_MAX_GB_LIMIT)],
        help_text=_("When a recordings folder (the fast one, and the archive one) holds more than this, its oldest "
                    "footage that no event protects is deleted. 0: no cap."))
    recording_min_free_gb = models.FloatField(
        _("free-space floor (GB)"), default=_recording_min_free_gb_default,
        validators=[MinValueValidator(0), MaxValueValidator(RECORDING_MIN_FREE_GB_LIMIT)],
        help_text=_("When the disk of a recordings folder has less free space than this, its oldest footage that "
                    "no event protects is deleted. 0: no floor."))
    recording_retention_days_continuous = models.FloatField(
        _("days kept: continuous"), default=_recording_days_continuous_default,
        validators=[MinValueValidator(0), MaxValueValidator(RECORDING_DAYS_LIMIT)],
        help_text=_("Footage recorded in the \"continuous\" mode is deleted after this many days. 0: kept "
                    "(until the size cap or the free-space floor needs the room)."))
    recording_retention_days_motion = models.FloatField(
        _("days kept: motion"), default=_recording_days_motion_default,
        validators=[MinValueValidator(0), MaxValueValidator(RECORDING_DAYS_LIMIT)],
        help_text=_("Footage with motion or objects, recorded in the \"motion\" mode, is deleted after this many "
                    "days. 0: kept."))
    recording_retention_days_events = models.FloatField(
        _("days kept: events"), default=_recording_days_events_default,
        validators=[MinValueValidator(0), MaxValueValidator(RECORDING_DAYS_LIMIT)],
        help_text=_("Footage around events, recorded in the \"events\" mode, is deleted after this many days. "
                    "0: kept."))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("site settings")
        verbose_name_plural = _("site settings")

    def __str__(self):
        return "Site settings"

    def clean(self):
        errors = {}
        for name in NETWORK_FIELDS:
            try:
                parse_networks(getattr(self, name))
            except ValueError as exc:
                errors[name] = str(exc)
        for name, what in (("vlm_server", "VLM server"), ("agent_server", "agent server")):
            value = getattr(self, name)
            if value in (None, ""):
                value = {}
                setattr(self, name, value)
            try:
                check_params(value, what=what, complete=False)
            except ValueError as exc:
                errors[name] = str(exc)
        self.smtp_host = (self.smtp_host or "").strip()
        if self.smtp_host and any(c.isspace() or c in "/@" or (c == ":" and not _ipv6(self.smtp_host))
                                  for c in self.smtp_host):
            errors["smtp_host"] = "Give the mail server's name or address only, e.g. smtp.example.com (the port " \
                                  "goes in its own field)."
        if self.smtp_security not in self.SmtpSecurity.values:
            errors["smtp_security"] = f"Choose one of {', '.join(self.SmtpSecurity.values)}."
        if self.smtp_port is None or not 1 <= self.smtp_port <= 65535:
            errors["smtp_port"] = "A port between 1 and 65535."
        if self.smtp_from_email:
            try:
                validate_email(parseaddr(self.smtp_from_email)[1])
            except ValidationError:
                errors["smtp_from_email"] = "Give an email address, e.g. alerts@example.com or " \
                                            "\"Surveillance <alerts@example.com>\"."
        errors.update(self._clean_vapid())
        errors.update(self._clean_recording())
        if self.login_max_failures < 1:
            errors["login_max_failures"] = "At least one attempt."
        if self.login_lockout_seconds < 1:
            errors["login_lockout_seconds"] = "At least one second."
        if errors:
            raise ValidationError(errors)

    def _clean_vapid(self) -> dict:
        """The VAPID keys: both or neither, one pair (a public key alone is derived from its private key), and
        a contact whenever they are set."""
        errors = {}
        self.vapid_public_key = (self.vapid_public_key or "").strip()
        self.vapid_private_key = (self.vapid_private_key or "").strip()
        self.vapid_subject = (self.vapid_subject or "").strip()
        if self.vapid_private_key:
            try:
                derived = public_key_of(self.vapid_private_key)
            except VapidKeyError as exc:
                errors["vapid_private_key"] = str(exc)
            else:
                if not self.vapid_public_key:
                    self.vapid_public_key = derived
                elif self.vapid_public_key != derived:
                    errors["vapid_public_key"] = _("This public key is not the private key's: leave it empty to "
                                                   "derive it, or generate a new pair.")
        elif self.vapid_public_key:
            errors["vapid_private_key"] = _("Give the private key of this public key too (or generate a new pair).")
        if self.vapid_subject:
            try:
                check_subject(self.vapid_subject)
            except VapidKeyError as exc:
                errors["vapid_subject"] = str(exc)
        elif self.vapid_private_key:
            errors["vapid_subject"] = _("Push services need a contact with the keys: mailto:admin@example.com or "
                                        "the site's https:// address.")
        return errors

    def _clean_recording(self) -> dict:
        """The retention numbers: their validators keep them from 0 up to their limit; a NaN slips past those."""
        errors = {}
        for name, limit in RECORDING_FIELDS.items():
            value = getattr(self, name)
            if isinstance(value, float) and math.isnan(value):
                errors[name] = _("A number from 0 to %(limit)s.") % {"limit": limit}
        return errors

    def save(self, *args, **kwargs):
        self.pk = 1  # one row
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("The site settings cannot be deleted; change them instead.")
