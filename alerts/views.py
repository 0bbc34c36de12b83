"""Operator pages of one's own alerts: channels and rules (create, change, delete), a test alert per channel,
and the recent deliveries.

Every change goes through alerts.services (which validate and audit). Another user's channel or rule answers
403, like every page a user may not open (the API answers 404).
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views import View
from django.views.decorators.http import require_GET, require_POST

from cameras.selectors import camera_list_for_user
from events.kinds import EVENT_KINDS

from .forms import KIND_HELP, KIND_LABELS, ChannelForm, RuleForm, apply_errors, masked_url
from .models import Delivery, NotificationChannel
from .selectors import (
    channel_get_for_user,
    channel_list_for_user,
    delivery_list_for_user,
    rule_get_for_user,
    rule_list_for_user,
)
from .services import (
    alert_channel_test,
    alert_rule_create,
    alert_rule_delete,
    alert_rule_update,
    notification_channel_create,
    notification_channel_delete,
    notification_channel_update,
)
from .transports import email_configured

RECENT_DELIVERIES = 20


def channel_problems(channel: NotificationChannel, *, email_ok: bool) -> list[str]:
    """Why the channel cannot send, in words for its owner (empty: nothing known to be wrong)."""
    problems = []
    if channel.kind == NotificationChannel.Kind.EMAIL:
        if not email_ok:
            problems.append(_("Email is not set up on this site, so this channel cannot send anything: an "
                              "administrator fills in the mail server (SMTP) in the admin's Site settings."))
        if not channel.address():
            problems.append(_("No address: give one here, or add an email address to your account."))
    elif channel.kind == NotificationChannel.Kind.WEBHOOK and not channel.secret:
        problems.append(_("No signing secret: give one of at least 16 characters."))
    return problems


def _own_channel(user, channel_id) -> NotificationChannel:
    channel = channel_get_for_user(user, channel_id)
    if channel is None:
        raise PermissionDenied(_("You have no notification channel with that id."))
    return channel


def _own_rule(user, rule_id):
    rule = rule_get_for_user(user, rule_id)
    if rule is None:
        raise PermissionDenied(_("You have no alert rule with that id."))
    return rule


@login_required
def my_alerts(request):
    viewable = {c.pk: c.name for c in camera_list_for_user(request.user).only("id", "name")}
    email_ok = email_configured()
    channels = list(channel_list_for_user(request.user))
    for channel in channels:
        channel.problems = channel_problems(channel, email_ok=email_ok)
        channel.kind_label = KIND_LABELS.get(channel.kind, channel.kind)
        channel.shown_url = masked_url(channel.url) if channel.kind == NotificationChannel.Kind.APPRISE else channel.url
    rules = list(rule_list_for_user(request.user))
    for rule in rules:  # never name a camera the user may no longer view
        rule.camera_names = [viewable[c.pk] for c in rule.cameras.all() if c.pk in viewable]
        rule.kind_labels = [_(EVENT_KINDS[k]) for k in rule.kinds if k in EVENT_KINDS]
        rule.problems = []
        if not rule.notify_in_app and not any(c.enabled for c in rule.channels.all()):
            rule.problems.append(_("This rule sends nothing: choose an enabled channel, or show alerts on your open "
                                   "pages."))
        if not rule.all_cameras and not rule.camera_names:
            rule.problems.append(_("You may view none of its cameras any more: it alerts nobody."))
    return render(request, "alerts/my_alerts.html", {
        "channels": channels,
        "rules": rules,
        "email_ok": email_ok,
        "deliveries": list(delivery_list_for_user(request.user)[:RECENT_DELIVERIES]),
    })


@login_required
@require_POST
def channel_send_test(request, channel_id):
    channel = _own_channel(request.user, channel_id)
    delivery = alert_channel_test(channel=channel, by=request.user)
    if delivery.status == Delivery.Status.SENT:
        messages.success(request, _("Test alert sent through %(channel)s.") % {"channel": channel.name})
    else:
        messages.error(request, _("Test alert through %(channel)s failed: %(error)s")
                       % {"channel": channel.name, "error": delivery.error or delivery.get_status_display()})
    return redirect("my-alerts")


class _Page(LoginRequiredMixin, View):
    """A signed-in page; anonymous users go to the sign-in page."""

    raise_exception = False


class ChannelFormPage(_Page):
    """New channel (no ``channel_id``) or one of the user's own."""

    template_name = "alerts/channel_form.html"

    def _channel(self, request, channel_id):
        return _own_channel(request.user, channel_id) if channel_id is not None else None

    def _render(self, request, form, channel):
        return render(request, self.template_name, {
            "form": form, "channel": channel, "kind_help": {k: str(v) for k, v in KIND_HELP.items()},
            "problems": channel_problems(channel, email_ok=email_configured()) if channel else [],
            "email_ok": email_configured(),
        })

    def get(self, request, channel_id=None):
        channel = self._channel(request, channel_id)
        return self._render(request, ChannelForm(channel=channel), channel)

    def post(self, request, channel_id=None):
        channel = self._channel(request, channel_id)
        form = ChannelForm(request.POST, channel=channel)
        if form.is_valid():
            try:
                if channel is None:
                    channel = notification_channel_create(owner=request.user, by=request.user, **form.values())
                    messages.success(request, _("Channel %(channel)s created. Send a test alert to try it.")
                                     % {"channel": channel.name})
                else:
                    channel = notification_channel_update(channel=channel, by=request.user, **form.values())
                    messages.success(request, _("Channel %(channel)s saved.") % {"channel": channel.name})
                return redirect("my-alerts")
            except ValidationError as exc:
                apply_errors(form, exc)
                if channel is not None:
                    channel.refresh_from_db()
        return self._render(request, form, channel)


class _DeletePage(_Page):
    """Confirm, then delete one of the user's own objects through its service."""

    what = consequence = deleted = ""

    def _own(self, user, object_id):
        raise NotImplementedError

    def _delete(self, obj, by):
        raise NotImplementedError

    def get(self, request, **ids):
        return render(request, "alerts/confirm_delete.html", {
            "object": self._own(request.user, *ids.values()), "what": _(self.what), "consequence": _(self.consequence)})

    def post(self, request, **ids):
        obj = self._own(request.user, *ids.values())
        name = obj.name
        self._delete(obj, request.user)
        messages.success(request, _(self.deleted) % {"channel": name, "rule": name})
        return redirect("my-alerts")


class ChannelDeletePage(_DeletePage):
    what = gettext_noop("channel")
    consequence = gettext_noop("Alerts are no longer sent through it; your rules keep their other channels.")
    deleted = gettext_noop("Channel %(channel)s deleted.")

    def _own(self, user, channel_id):
        return _own_channel(user, channel_id)

    def _delete(self, channel, by):
        notification_channel_delete(channel=channel, by=by)


class RuleFormPage(_Page):
    """New rule (no ``rule_id``) or one of the user's own."""

    template_name = "alerts/rule_form.html"

    def _rule(self, request, rule_id):
        return _own_rule(request.user, rule_id) if rule_id is not None else None

    def _render(self, request, form, rule):
        return render(request, self.template_name, {"form": form, "rule": rule,
                                                    "has_channels": channel_list_for_user(request.user).exists()})

    def get(self, request, rule_id=None):
        rule = self._rule(request, rule_id)
        return self._render(request, RuleForm(user=request.user, rule=rule), rule)

    def post(self, request, rule_id=None):
        rule = self._rule(request, rule_id)
        form = RuleForm(request.POST, user=request.user, rule=rule)
        if form.is_valid():
            try:
                if rule is None:
                    rule = alert_rule_create(owner=request.user, by=request.user, **form.values())
                    messages.success(request, _("Rule %(rule)s created.") % {"rule": rule.name})
                else:
                    rule = alert_rule_update(rule=rule, by=request.user, **form.values())
                    messages.success(request, _("Rule %(rule)s saved.") % {"rule": rule.name})
                return redirect("my-alerts")
            except ValidationError as exc:
                apply_errors(form, exc)
                if rule is not None:
                    rule = _own_rule(request.user, rule.pk)
        return self._render(request, form, rule)


class RuleDeletePage(_DeletePage):
    what = gettext_noop("rule")
    consequence = gettext_noop("You are no longer alerted by it (your other rules still apply).")
    deleted = gettext_noop("Rule %(rule)s deleted.")

    def _own(self, user, rule_id):
        return _own_rule(user, rule_id)

    def _delete(self, rule, by):
        alert_rule_delete(rule=rule, by=by)


# -- Web Push: the service worker (docs/alerts.md "Web Push") ---------------------------------------------
@require_GET
def service_worker(request):
    """static/js/sw.js at /sw.js, so that its scope is the whole site ("/"): it shows a pushed alert as a
    notification of the system and opens the event when it is clicked. Public (nothing in it is secret), and
    never cached long, so that browsers pick up a new version."""
    path = finders.find("js/sw.js")
    if not path and staticfiles_storage.exists("js/sw.js"):  # only the collected files are there
        path = staticfiles_storage.path("js/sw.js")
    if not path:
        raise Http404("No service worker.")
    with open(path, "rb") as f:
        body = f.read()
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = "/"
    response["Cache-Control"] = "no-cache"
    return response
