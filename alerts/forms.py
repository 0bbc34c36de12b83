"""Forms of the "My alerts" pages: a user's own notification channels and alert rules.

They check field types and offer only what the user may choose (cameras they may view, their own
channels); the services (alerts/services.py) validate the rest, save and audit. A channel's secrets (a
webhook's signing key, an Apprise URL with its token) are never put back into the page: left empty on
an edit, the stored value is kept.
"""

from __future__ import annotations

from urllib.parse import urlsplit
from zoneinfo import available_timezones

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils.translation import gettext_lazy as _

from cameras.selectors import camera_list_for_user
from events.kinds import EVENT_KINDS

from .models import SEVERITY_CHOICES, NotificationChannel
from .selectors import channel_list_for_user

KIND_LABELS = {
    NotificationChannel.Kind.EMAIL: _("Email"),
    NotificationChannel.Kind.WEBHOOK: _("Webhook"),
    NotificationChannel.Kind.APPRISE: _("Apprise (chat and push services)"),
}
KIND_HELP = {
    NotificationChannel.Kind.EMAIL: _("An email to an address: yours when left empty."),
    NotificationChannel.Kind.WEBHOOK: _("A signed HTTP POST of JSON to your own service (Home Assistant, Node-RED, "
                                        "a script): it checks the signature with the secret."),
    NotificationChannel.Kind.APPRISE: _("A message through a chat or push service Apprise knows: Slack, Telegram, "
                                        "Discord, ntfy, Pushover and many more, given by its URL."),
}


def masked_url(url: str) -> str:
    """An Apprise URL shown without its tokens: only the service (``tgram://…``)."""
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        scheme = ""
    return f"{scheme}://…" if scheme else "…"


def apply_errors(form: forms.Form, exc: ValidationError) -> None:
    """A service's ValidationError onto the form: on the field it names when the form has it, else on top."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for field, errors in exc.message_dict.items():
        if field in form.fields:
            form.add_error(field, errors)
        else:
            form.add_error(None, errors if field == NON_FIELD_ERRORS else [f"{field}: {e}" for e in errors])


class ChannelForm(forms.Form):
    """A channel of the user's: its kind is chosen once, when it is created."""

    name = forms.CharField(label=_("Name"), max_length=100,
                           help_text=_("Your own name for it, e.g. \"My phone\" or \"Night shift mail\"."))
    kind = forms.ChoiceField(label=_("Kind"), choices=NotificationChannel.Kind.choices, widget=forms.RadioSelect)
    enabled = forms.BooleanField(label=_("Enabled"), required=False, initial=True,
                                 help_text=_("Off: nothing is sent through it, but it keeps its settings."))
    email = forms.EmailField(label=_("Email address"), required=False,
                             help_text=_("Email: where alerts go. Empty: your account's address."))
    url = forms.CharField(label=_("URL"), required=False, max_length=2000,
                          widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
                          help_text=_("Webhook: the http(s) address alerts are posted to. Apprise: the service URL, "
                                      "e.g. tgram://bot-token/chat-id, ntfy://topic, slack://…, discord://…."))
    secret = forms.CharField(label=_("Signing secret"), required=False, max_length=200, strip=False,
                             widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                             help_text=_("Webhook: at least 16 characters; each alert is signed with it "
                                         "(HMAC-SHA256), so your service knows it came from this site."))

    def __init__(self, *args, channel: NotificationChannel | None = None, **kwargs):
        self.channel = channel
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = list(KIND_LABELS.items())
        if channel is None:
            self.fields["kind"].initial = NotificationChannel.Kind.EMAIL
            return
        self.fields["kind"].disabled = True  # a channel keeps its kind: make another one for another kind
        self.initial.update(name=channel.name, kind=channel.kind, enabled=channel.enabled, email=channel.email)
        if channel.kind == NotificationChannel.Kind.WEBHOOK:
            self.initial["url"] = channel.url
            if channel.secret:
                self.fields["secret"].help_text = _("A secret is stored (never shown). Leave this empty to keep it, "
                                                    "or type a new one (at least 16 characters) to replace it.")
        elif channel.kind == NotificationChannel.Kind.APPRISE:
            self.fields["url"].help_text = _(
                "A URL is stored (%(service)s, its tokens never shown). Leave this empty to keep it, or give the "
                "whole new URL to replace it.") % {"service": masked_url(channel.url)}

    def values(self) -> dict:
        """The fields for notification_channel_create/update: only those of the channel's kind; an empty secret
        (and an empty Apprise URL on an edit) keeps what is stored."""
        data = self.cleaned_data
        kind = self.channel.kind if self.channel else data["kind"]
        values = {"name": data["name"], "enabled": data["enabled"]}
        if self.channel is None:
            values["kind"] = kind
        if kind == NotificationChannel.Kind.EMAIL:
            values["email"] = data["email"]
        elif kind == NotificationChannel.Kind.WEBHOOK:
            values["url"] = data["url"].strip()
            if data["secret"]:
                values["secret"] = data["secret"]
        elif kind == NotificationChannel.Kind.APPRISE:
            if data["url"].strip() or self.channel is None:
                values["url"] = data["url"].strip()
        return values


class RuleForm(forms.Form):
    """A rule of the user's: which events (cameras, severity, kinds), when (quiet hours), and where (channels)."""

    name = forms.CharField(label=_("Name"), max_length=100,
                           help_text=_("Your own name for it, e.g. \"Everything urgent\" or \"Gate at night\"."))
    enabled = forms.BooleanField(label=_("Enabled"), required=False, initial=True,
                                 help_text=_("Off: the rule alerts nobody, but keeps its settings."))
    all_cameras = forms.TypedChoiceField(
        label=_("Cameras"), coerce=lambda v: v == "1", initial="1", widget=forms.RadioSelect,
        choices=[("1", _("Every camera I may view, now and later")), ("0", _("Only the cameras chosen below"))])
    cameras = forms.ModelMultipleChoiceField(
        label=_("Chosen cameras"), required=False, queryset=None, widget=forms.CheckboxSelectMultiple,
        help_text=_("Used when \"Only the cameras chosen below\" is picked."))
    min_severity = forms.ChoiceField(
        label=_("From severity"), choices=SEVERITY_CHOICES, initial="medium",
        help_text=_("Events of this severity and higher. High and critical ones are sent at once; low and "
                    "medium ones are collected into a digest, about once a minute."))
    kinds = forms.MultipleChoiceField(
        label=_("Kinds of events"), required=False, widget=forms.CheckboxSelectMultiple,
        choices=[(k, _(label)) for k, label in EVENT_KINDS.items()],
        help_text=_("None ticked: every kind. Scene anomalies are what happens in view; camera health is the "
                    "camera covered, blurred, moved, frozen, dark or blinded; offline is a camera that stopped."))
    quiet_start = forms.TimeField(label=_("Quiet hours from"), required=False,
                                  widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    quiet_end = forms.TimeField(label=_("Quiet hours until"), required=False,
                                widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
                                help_text=_("During quiet hours alerts wait and go out together when they end. "
                                            "Over midnight is fine, e.g. 22:00 to 07:00. Both empty: no quiet hours."))
    time_zone = forms.ChoiceField(label=_("Time zone of the quiet hours"), required=False)
    critical_in_quiet_hours = forms.BooleanField(
        label=_("Critical alerts still go out at once during quiet hours"), required=False, initial=True)
    notify_in_app = forms.BooleanField(
        label=_("Show alerts on my open pages"), required=False, initial=True,
        help_text=_("A notification on every page of this site you have open (with a sound for high and "
                    "critical ones, see Preferences)."))
    channels = forms.ModelMultipleChoiceField(
        label=_("Send through my channels"), required=False, queryset=None, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, user, rule=None, **kwargs):
        self.user, self.rule = user, rule
        super().__init__(*args, **kwargs)
        self.fields["cameras"].queryset = camera_list_for_user(user).order_by("name", "id")
        self.fields["channels"].queryset = channel_list_for_user(user)
        self.fields["channels"].label_from_instance = lambda c: f"{c.name} ({c.get_kind_display()})"
        own = getattr(user, "time_zone", "") or "UTC"
        self.fields["time_zone"].choices = [("", _("My time zone (%(zone)s)") % {"zone": own})] + [
            (tz, tz) for tz in sorted(available_timezones())]
        if rule is not None:
            viewable = set(self.fields["cameras"].queryset.values_list("id", flat=True))
            self.initial.update(
                name=rule.name, enabled=rule.enabled, all_cameras="1" if rule.all_cameras else "0",
                cameras=[c.pk for c in rule.cameras.all() if c.pk in viewable], min_severity=rule.min_severity,
                kinds=list(rule.kinds or []), quiet_start=rule.quiet_start, quiet_end=rule.quiet_end,
                time_zone=rule.time_zone, critical_in_quiet_hours=rule.critical_in_quiet_hours,
                notify_in_app=rule.notify_in_app, channels=[c.pk for c in rule.channels.all()])

    def clean(self):
        data = super().clean()
        if data.get("all_cameras") is False and not data.get("cameras") and "cameras" not in self.errors:
            self.add_error("cameras", _("Choose at least one camera, or pick \"Every camera I may view\"."))
        if (data.get("quiet_start") is None) != (data.get("quiet_end") is None) and not (
                "quiet_start" in self.errors or "quiet_end" in self.errors):
            self.add_error("quiet_end", _("Give both the start and the end of the quiet hours, or neither."))
        return data

    def values(self) -> dict:
        """The fields for alert_rule_create/update (its escalation steps are left as they are)."""
        data = self.cleaned_data
        return {
            "name": data["name"], "enabled": data["enabled"], "all_cameras": data["all_cameras"],
            "cameras": [c.pk for c in data["cameras"]],
            "min_severity": data["min_severity"], "kinds": [k for k in EVENT_KINDS if k in data["kinds"]],
            "quiet_start": data["quiet_start"], "quiet_end": data["quiet_end"], "time_zone": data["time_zone"],
            "critical_in_quiet_hours": data["critical_in_quiet_hours"], "notify_in_app": data["notify_in_app"],
            "channels": [c.pk for c in data["channels"]],
        }
