"""Admin forms that never show a model server's API key: it reads ``***``, and ``***`` sent back keeps it."""

from django import forms
from django.utils.translation import gettext_lazy as _

from inference.openai_chat import keep_secrets, mask_secrets


def secret_params_form(model, fields: tuple[str, ...]):
    """A ModelForm class for ``model`` whose JSON ``fields`` show API keys masked and keep them when unchanged."""

    class SecretParamsForm(forms.ModelForm):
        class Meta:
            exclude = ()

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            for name in fields:
                if name in self.initial:
                    self.initial[name] = mask_secrets(self.initial[name])

        def _clean_fields(self):
            super()._clean_fields()
            stored = self.instance if self.instance.pk else None
            for name in fields:
                if name in self.cleaned_data and stored is not None:
                    self.cleaned_data[name] = keep_secrets(self.cleaned_data[name], getattr(stored, name))

    SecretParamsForm.Meta.model = model
    return SecretParamsForm


class SecretField(forms.CharField):
    """A write-only text: an empty password box, whatever is stored; left empty, the stored value is kept."""

    widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        super().__init__(*args, **kwargs)


def site_settings_admin_form(model):
    """The site settings' admin form: model servers' API keys masked (``***``), the SMTP password never shown
    (an empty box; empty keeps it, "clear the stored password" removes it)."""

    base = secret_params_form(model, ("vlm_server", "agent_server"))

    class SiteSettingsAdminForm(base):
        smtp_password = SecretField(
            label="SMTP password", max_length=255,
            help_text="Never shown here. Leave it empty to keep the stored password; type a new one to replace it.")
        smtp_password_clear = forms.BooleanField(
            label="Clear the stored SMTP password", required=False,
            help_text="Sign in to the mail server without a password from now on.")

        vapid_private_key = SecretField(
            label=_("VAPID private key"), max_length=100,
            help_text=_("Never shown here. Leave it empty to keep the stored key; \"Generate VAPID keys\" makes a "
                        "new pair."))
        vapid_keys_clear = forms.BooleanField(
            label=_("Clear the stored VAPID keys"), required=False,
            help_text=_("Stop sending Web Push (browsers keep their subscriptions until they are next used)."))

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.initial.pop("smtp_password", None)
            self.initial.pop("vapid_private_key", None)
            if self.instance.pk and self.instance.smtp_password:
                self.fields["smtp_password"].help_text = (
                    "A password is stored (not shown). " + self.fields["smtp_password"].help_text)
            if self.instance.pk and self.instance.vapid_private_key:
                self.fields["vapid_private_key"].help_text = (
                    _("A private key is stored (not shown).") + " " + self.fields["vapid_private_key"].help_text)

        def clean(self):
            cleaned = super().clean()
            stored = self.instance.smtp_password if self.instance.pk else ""
            if cleaned.get("smtp_password_clear"):
                cleaned["smtp_password"] = ""
            elif not cleaned.get("smtp_password"):
                cleaned["smtp_password"] = stored
            stored_key = self.instance.vapid_private_key if self.instance.pk else ""
            if cleaned.get("vapid_keys_clear"):
                cleaned["vapid_private_key"] = ""
                self.instance.vapid_public_key = ""
            elif not (cleaned.get("vapid_private_key") or "").strip():
                cleaned["vapid_private_key"] = stored_key
            elif cleaned["vapid_private_key"].strip() != stored_key:
                self.instance.vapid_public_key = ""  # a new private key: its public key is derived
            return cleaned

    return SiteSettingsAdminForm
