"""Operator page of one's own alerts: channels, rules, recent deliveries, and a test alert per channel."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from cameras.selectors import camera_list_for_user
from events.kinds import EVENT_KINDS

from .models import Delivery
from .selectors import channel_get_for_user, channel_list_for_user, delivery_list_for_user, rule_list_for_user
from .services import alert_channel_test

RECENT_DELIVERIES = 20


@login_required
def my_alerts(request):
    viewable = {c.pk: c.name for c in camera_list_for_user(request.user).only("id", "name")}
    rules = list(rule_list_for_user(request.user))
    for rule in rules:  # never name a camera the user may no longer view
        rule.camera_names = [viewable[c.pk] for c in rule.cameras.all() if c.pk in viewable]
        rule.kind_labels = [_(EVENT_KINDS[k]) for k in rule.kinds if k in EVENT_KINDS]
    return render(request, "alerts/my_alerts.html", {
        "channels": list(channel_list_for_user(request.user)),
        "rules": rules,
        "deliveries": list(delivery_list_for_user(request.user)[:RECENT_DELIVERIES]),
    })


@login_required
@require_POST
def channel_send_test(request, channel_id):
    channel = channel_get_for_user(request.user, channel_id)
    if channel is None:
        raise PermissionDenied(_("You have no notification channel with that id."))
    delivery = alert_channel_test(channel=channel, by=request.user)
    if delivery.status == Delivery.Status.SENT:
        messages.success(request, _("Test alert sent through %(channel)s.") % {"channel": channel.name})
    else:
        messages.error(request, _("Test alert through %(channel)s failed: %(error)s")
                       % {"channel": channel.name, "error": delivery.error})
    return redirect("my-alerts")
