"""Changing the site settings: validate, save the changed fields, forget the cached row."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from inference.openai_chat import keep_secrets

from . import vapid
from .models import SiteSettings
from .selectors import site_settings_clear_cache

EDITABLE = (
    "camera_networks", "model_server_networks", "webhook_networks", "registration_open",
    "login_max_failures", "login_lockout_seconds", "trusted_proxies", "vlm_server", "agent_server",
    "smtp_host", "smtp_port", "smtp_security", "smtp_username", "smtp_password", "smtp_from_email",
    "vapid_public_key", "vapid_private_key", "vapid_subject",
    "recording_max_gb", "recording_min_free_gb", "recording_retention_days_continuous",
    "recording_retention_days_motion", "recording_retention_days_events",
)
#: Write-only: never shown back (admin, API). Empty (or left out) keeps the stored one; None clears it.
SECRET_FIELDS = ("smtp_password", "vapid_private_key")
#: Fields holding model-server parameters: their API key is shown as *** and kept when sent back so.
SERVER_FIELDS = ("vlm_server", "agent_server")


def site_settings_update(**changes) -> SiteSettings:
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValidationError({name: "Not a site setting." for name in sorted(unknown)})
    with transaction.atomic():
        SiteSettings.objects.get_or_create(pk=1)  # the row, with its seeded defaults, if it is missing
        row = SiteSettings.objects.select_for_update().get(pk=1)
        for name in SERVER_FIELDS:
            if name in changes:
                changes[name] = keep_secrets(changes[name], getattr(row, name))
        for name in SECRET_FIELDS:
            if name in changes:
                if changes[name] is None:
                    changes[name] = ""  # cleared
                elif changes[name] == "":
                    del changes[name]  # kept
        if "vapid_private_key" in changes and "vapid_public_key" not in changes:
            changes["vapid_public_key"] = ""  # a new private key's public key is derived; a cleared one's goes
        before = {name: getattr(row, name) for name in EDITABLE}
        for name, value in changes.items():
            setattr(row, name, value)
        row.full_clean()
        # What clean normalised counts too (a VAPID public key derived from its private key).
        changed = [name for name in EDITABLE if getattr(row, name) != before[name]]
        if changed:
            row.save(update_fields=[*changed, "updated_at"])
    transaction.on_commit(site_settings_clear_cache)
    site_settings_clear_cache()
    return row


def site_vapid_keys_generate(*, subject: str = "") -> SiteSettings:
    """A new VAPID key pair for Web Push (docs/alerts.md "Web Push"), replacing any stored one: browsers
    subscribed with the old public key subscribe again on their next page (their old subscriptions are dropped
    when a push is sent). ``subject`` fills the contact when none is set yet."""
    public, private = vapid.generate()
    changes = {"vapid_public_key": public, "vapid_private_key": private}
    with transaction.atomic():
        SiteSettings.objects.get_or_create(pk=1)
        if subject and not SiteSettings.objects.get(pk=1).vapid_subject:
            changes["vapid_subject"] = subject
        return site_settings_update(**changes)
