from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .forms import site_settings_admin_form
from .models import SiteSettings
from .selectors import site_settings, site_settings_clear_cache
from .services import site_vapid_keys_generate
from .vapid import VapidKeyError, check_subject

#: The change form's button that makes a new VAPID key pair (templates/admin/siteconfig/sitesettings/change_form.html).
GENERATE_VAPID = "_generate_vapid"


def _default_subject(request) -> str:
    """A contact for new VAPID keys when none is set: the administrator's address, else the site's https origin."""
    candidates = []
    if getattr(request.user, "email", ""):
        candidates.append(f"mailto:{request.user.email}")
    candidates.append(settings.SITE_URL.rstrip("/"))
    for subject in candidates:
        try:
            check_subject(subject)
        except VapidKeyError:
            continue
        return subject
    return ""


@admin.register(SiteSettings)
class SiteSettingsAdmin(admin.ModelAdmin):
    """One row: the list goes straight to it; it can be changed, not added or deleted."""

    form = site_settings_admin_form(SiteSettings)
    fieldsets = (
        ("Networks", {"fields": ("camera_networks", "model_server_networks", "webhook_networks"),
                      "description": "Where cameras, model servers and alert targets may be. Checked when "
                                     "a camera or channel is saved and again each time a connection is made."}),
        ("Sign-in", {"fields": ("registration_open", "login_max_failures", "login_lockout_seconds",
                                "trusted_proxies")}),
        ("Model servers", {"fields": ("vlm_server", "agent_server"),
                           "description": "The OpenAI-compatible servers (Ollama, llama.cpp server, vLLM) cameras "
                                          "use by default. An API key shows as ***: leave it so to keep it."}),
        ("Email (SMTP)", {"fields": ("smtp_host", "smtp_port", "smtp_security", "smtp_username", "smtp_password",
                                     "smtp_password_clear", "smtp_from_email"),
                          "description": "The mail server email alerts go through. With a server set here, "
                                         "operators' email channels work; empty, the EMAIL_* environment settings "
                                         "apply. The password is stored and never shown: leave it empty to keep it."}),
        (gettext_lazy("Web Push"), {
            "fields": ("vapid_public_key", "vapid_private_key", "vapid_keys_clear", "vapid_subject"),
            "description": gettext_lazy(
                "The VAPID key pair that signs the site's Web Push notifications (alerts reaching a background tab, "
                "a closed browser or a phone). \"Generate VAPID keys\" below makes a new pair: browsers subscribe "
                "again on their next page. The private key is stored and never shown.")}),
        (gettext_lazy("Recordings"), {
            "fields": ("recording_max_gb", "recording_min_free_gb", "recording_retention_days_continuous",
                       "recording_retention_days_motion", "recording_retention_days_events"),
            "description": gettext_lazy(
                "How long recorded footage is kept, per recording mode, and how much of each recordings folder it "
                "may fill. The next retention run follows a change. Footage of open, unresolved or kept events is "
                "never deleted.")}),
    )
    readonly_fields = ("vapid_public_key", "updated_at")

    def changelist_view(self, request, extra_context=None):
        row = site_settings()
        return HttpResponseRedirect(reverse("admin:siteconfig_sitesettings_change", args=[row.pk]))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        site_settings_clear_cache()
        if GENERATE_VAPID in request.POST:
            try:
                row = site_vapid_keys_generate(subject=_default_subject(request))
            except ValidationError as exc:
                messages.error(request, _("No VAPID keys were generated: %(why)s") % {
                    "why": " ".join(exc.messages)})
            else:
                obj.vapid_public_key, obj.vapid_private_key = row.vapid_public_key, row.vapid_private_key
                obj.vapid_subject = row.vapid_subject
                messages.success(request, _("New VAPID keys are stored; browsers subscribe again on their next page."))

    def response_change(self, request, obj):
        if GENERATE_VAPID in request.POST:  # back to the form, to see the new public key
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)
