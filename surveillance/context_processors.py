"""What every signed-in page shows around its content: the user's open alerts (the badge in the top
navigation, the count in the title, static/js/notify.js; docs/alerts.md, "On open pages").

Registered in settings.TEMPLATES. Lazy: nothing is read unless a page renders it (templates/base.html
for a signed-in user), so fragments, the admin and the API pay nothing.
"""

from __future__ import annotations

from functools import cached_property

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.urls import reverse

from alerts.models import AlertItem, Delivery
from events.models import AnomalyEvent
from events.selectors import event_list_for_user

#: Severities the badge counts (and that sound: notify.js), as the pages' alerts that want attention.
BADGE_SEVERITIES = ("high", "critical")
#: The badge says "99+" above this; at most this many + 1 events are read, whatever the user's backlog.
BADGE_MAX = 99
#: The in-app notifications that reached (or are reaching) the user: not cancelled, not failed.
_LIVE_DELIVERY = (Delivery.Status.PENDING, Delivery.Status.SENDING, Delivery.Status.SENT)


def badge_label(count: int, more: bool) -> str:
    """"3", "99+"; with ``more`` (more open alerts than were read) "12+" (notify.js says the same)."""
    if more:
        return f"{BADGE_MAX}+" if count > BADGE_MAX else f"{count}+"
    return str(count)


class OpenAlerts:
    """The user's unacknowledged events of high or critical severity they were alerted to in-app, on
    cameras they may view now: one query (the events' own selector, so the same permission filtering
    as every events page), newest first, at most BADGE_MAX + 1 of them."""

    def __init__(self, user):
        self.user = user

    @cached_property
    def _rows(self) -> list[tuple[str, int]]:
        alerted = AlertItem.objects.filter(
            event=OuterRef("pk"), recipient=self.user, channel__isnull=True, state=AlertItem.State.DELIVERED,
            delivery__medium=Delivery.Medium.IN_APP, delivery__status__in=_LIVE_DELIVERY)
        events = (event_list_for_user(self.user, severity=list(BADGE_SEVERITIES), status=AnomalyEvent.Status.NEW)
                  .filter(Exists(alerted)))
        return [(str(pk), camera_id) for pk, camera_id in events.values_list("pk", "camera_id")[:BADGE_MAX + 1]]

    @property
    def count(self) -> int:
        return len(self._rows)

    @property
    def more(self) -> bool:
        return len(self._rows) > BADGE_MAX

    @property
    def label(self) -> str:
        return badge_label(self.count, self.more)

    @property
    def data(self) -> dict:
        """For notify.js (json_script): the counted events, so that an acknowledgement takes one off."""
        return {"events": [[pk, camera] for pk, camera in self._rows], "more": self.more,
                "max": BADGE_MAX, "severities": list(BADGE_SEVERITIES),
                "toast_seconds": settings.ALERT_TOAST_SECONDS, "push": self.push}

    @property
    def push(self) -> dict:
        """Web Push for static/js/push.js (docs/alerts.md "Web Push"): where to ask for the key to subscribe with
        (only once the user allowed notifications: no query here), where to post the subscription, and the
        service worker."""
        return {"config": reverse("push-config"), "user": self.user.pk,
                "subscriptions": reverse("push-subscription-list"), "worker": reverse("service-worker")}


def open_alerts(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"open_alerts": OpenAlerts(user)}
