"""Reading the site settings: one row, cached in each process for SITE_SETTINGS_CACHE_SECONDS.

Every process (web, workers, beat) sees an edit in the admin or the API within that time;
the process that saved it sees it at once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError

from inference.addresses import Network, parse_networks

from .models import SiteSettings

_lock = threading.Lock()
_cached: tuple[float, SiteSettings] | None = None


def site_settings_clear_cache() -> None:
    global _cached
    with _lock:
        _cached = None


def site_settings() -> SiteSettings:
    """The site's settings row (created with its defaults, seeded from the environment, when missing)."""
    global _cached
    now = time.monotonic()
    with _lock:
        cached = _cached
    if cached is not None and now - cached[0] < settings.SITE_SETTINGS_CACHE_SECONDS:
        return cached[1]
    try:
        row = SiteSettings.objects.filter(pk=1).first()
        if row is None:
            row, _ = SiteSettings.objects.get_or_create(pk=1)
    except DatabaseError:
        if cached is not None:  # the database is away: keep using what was read last
            return cached[1]
        raise
    with _lock:
        _cached = (now, row)
    return row


def _networks(value: str) -> list[Network] | None:
    try:
        return parse_networks(value)
    except ValueError:  # validated on save; a bad row written around the validation allows nothing
        return []


def camera_networks() -> list[Network] | None:
    """Internal networks camera streams may use (None: any)."""
    return _networks(site_settings().camera_networks)


def model_server_networks() -> list[Network] | None:
    return _networks(site_settings().model_server_networks)


def webhook_networks() -> list[Network] | None:
    return _networks(site_settings().webhook_networks)


def trusted_proxies() -> list[Network]:
    return _networks(site_settings().trusted_proxies) or []


def smtp_server() -> dict | None:
    """The mail server set in the site settings, as ``django.core.mail.get_connection`` arguments plus
    ``from_email``; None when no SMTP host is set (the EMAIL_* environment settings apply)."""
    row = site_settings()
    if not row.smtp_host:
        return None
    return {"host": row.smtp_host, "port": row.smtp_port, "username": row.smtp_username,
            "password": row.smtp_password, "use_tls": row.smtp_security == "starttls",
            "use_ssl": row.smtp_security == "ssl", "from_email": row.smtp_from_email}


def web_push_keys() -> dict | None:
    """The site's VAPID keys and contact for Web Push (docs/alerts.md "Web Push"); None while they are not set
    (no push is sent, browsers do not subscribe)."""
    row = site_settings()
    if not (row.vapid_private_key and row.vapid_public_key and row.vapid_subject):
        return None
    return {"public_key": row.vapid_public_key, "private_key": row.vapid_private_key, "subject": row.vapid_subject}


def web_push_public_key() -> str:
    """The key browsers subscribe with (the VAPID public key); "" while Web Push is not set up."""
    keys = web_push_keys()
    return keys["public_key"] if keys else ""


@dataclass(frozen=True)
class RecordingRetention:
    """What recording retention keeps (docs/recordings.md "Retention"): 0 means no cap, no floor, kept."""

    max_gb: float
    min_free_gb: float
    days_continuous: float
    days_motion: float
    days_events: float


def recording_retention() -> RecordingRetention:
    """The site's recording retention (Site settings > Recordings), read once by each retention run."""
    row = site_settings()
    return RecordingRetention(max_gb=row.recording_max_gb, min_free_gb=row.recording_min_free_gb,
                              days_continuous=row.recording_retention_days_continuous,
                              days_motion=row.recording_retention_days_motion,
                              days_events=row.recording_retention_days_events)


def registration_open() -> bool:
    return site_settings().registration_open


# Where each policy is changed, for the messages that refuse an address.
WHERE = {
    "camera": "Site settings > camera networks (admin /admin/siteconfig/sitesettings/ or PATCH /api/v1/site/settings/)",
    "model server": "Site settings > model server networks (admin /admin/siteconfig/sitesettings/ or "
                    "PATCH /api/v1/site/settings/)",
    "webhook": "Site settings > webhook and Apprise networks (admin /admin/siteconfig/sitesettings/ or "
               "PATCH /api/v1/site/settings/)",
}
