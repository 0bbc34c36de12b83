from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse

from .forms import site_settings_admin_form
from .models import SiteSettings
from .selectors import site_settings, site_settings_clear_cache


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
    )
    readonly_fields = ("updated_at",)

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
