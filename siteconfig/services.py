"""Changing the site settings: validate, save the changed fields, forget the cached row."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from inference.openai_chat import keep_secrets

from .models import SiteSettings
from .selectors import site_settings_clear_cache

EDITABLE = (
    "camera_networks", "model_server_networks", "webhook_networks", "registration_open",
    "login_max_failures", "login_lockout_seconds", "trusted_proxies", "vlm_server", "agent_server",
    "smtp_host", "smtp_port", "smtp_security", "smtp_username", "smtp_password", "smtp_from_email",
)
#: Write-only: never shown back (admin, API). Empty (or left out) keeps the stored one; None clears it.
SECRET_FIELDS = ("smtp_password",)
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
        changed = [name for name, value in changes.items() if getattr(row, name) != value]
        for name in changed:
            setattr(row, name, changes[name])
        row.full_clean()
        if changed:
            row.save(update_fields=[*changed, "updated_at"])
    transaction.on_commit(site_settings_clear_cache)
    site_settings_clear_cache()
    return row
