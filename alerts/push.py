"""Web Push (docs/alerts.md "Web Push"): browsers' subscriptions, and the push that follows each in-app alert.

An in-app notification reaches the user's open pages through the WebSocket (``transports.send_in_app``). Once
the site settings hold VAPID keys, the same notification is also pushed to each browser (or app) the user
subscribed, so that a background tab, a closed browser or a phone hears of it too:

- ``push_subscription_save`` / ``push_subscription_delete``: the API's writes (``/api/v1/push-subscriptions/``);
- ``push_queue``: called by the in-app delivery once its message went out; queues ``alerts.tasks.alert_push``
  (default queue) only when there is something to push to, so the delivery never waits for a push service;
- ``push_send``: the task's work: one encrypted push per subscription of that user (never anyone else's: the
  delivery's recipient, whose access to the event's camera the delivery attempt has just checked again).
  404 or 410 forgets the subscription; other failures are recorded on it (``failures``, ``last_error``), and a
  subscription that failed ``PUSH_MAX_FAILURES`` times in a row is dropped. A failure never touches the delivery.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from siteconfig.selectors import web_push_keys

from . import transports
from .messages import SEVERITY_LABELS
from .models import PushSubscription
from .selectors import push_subscriptions_of

log = logging.getLogger(__name__)

#: A push carries at most 4096 bytes once encrypted (RFC 8291): the JSON is kept well under it.
PUSH_PAYLOAD_MAX_BYTES = 3000
LOUD = ("high", "critical")


# -- subscriptions (the API) -------------------------------------------------------------------------
def push_subscription_save(*, user, endpoint: str, p256dh: str, auth: str, user_agent: str = "") -> PushSubscription:
    """Store the browser's subscription for ``user`` (the same endpoint again: updated, and now ``user``'s).

    Checked like a webhook's URL (the webhook networks of the site settings): a 400 naming ``endpoint``.
    A user keeps at most ``PUSH_MAX_SUBSCRIPTIONS``: the least recently made go.
    """
    keys = web_push_keys()
    if keys is None:
        raise ValidationError({"endpoint": _("Web Push is not set up on this site: an administrator generates the "
                                             "VAPID keys in the admin's Site settings.")})
    fields = {"user": user, "p256dh": p256dh, "auth": auth, "user_agent": (user_agent or "")[:300],
              "application_server_key": keys["public_key"], "failures": 0, "last_error": ""}
    with transaction.atomic():
        subscription = PushSubscription.objects.select_for_update().filter(endpoint=endpoint).first()
        if subscription is None:
            subscription = PushSubscription(endpoint=endpoint, **fields)
        else:
            for name, value in fields.items():
                setattr(subscription, name, value)
        subscription.full_clean(validate_unique=False)
        try:
            with transaction.atomic():
                subscription.save()
        except IntegrityError:  # the same endpoint posted twice at once: the other one stored it
            raise ValidationError({"endpoint": _("This subscription is being stored already; try again.")}) from None
        stale = list(PushSubscription.objects.filter(user=user).order_by("-created_at", "-id")
                     .values_list("id", flat=True)[settings.PUSH_MAX_SUBSCRIPTIONS:])
        if stale:
            PushSubscription.objects.filter(pk__in=stale).delete()
    return subscription


def push_subscription_delete(*, subscription: PushSubscription) -> None:
    subscription.delete()


# -- sending ----------------------------------------------------------------------------------------------
def push_queue(*, user_id: int | None, payload: dict) -> bool:
    """After an in-app notification went out to ``user_id``: queue its push, when the site has VAPID keys and
    the user a subscription. Never raises (the in-app delivery is done whatever happens here)."""
    try:
        if not user_id or web_push_keys() is None or not PushSubscription.objects.filter(user_id=user_id).exists():
            return False
        from .tasks import alert_push

        transaction.on_commit(lambda: alert_push.delay(user_id, payload), robust=True)
        return True
    except Exception:
        log.exception("Web Push for user %s could not be queued", user_id)
        return False


def push_payload(notification: dict) -> dict:
    """The push's JSON, from the in-app notification (messages.render_in_app, render_follow_up): the system
    notification's title ("Critical · Gate", in the recipient's language) and body, and what the service
    worker needs (static/js/sw.js)."""
    severity = notification.get("severity") or ""
    label = SEVERITY_LABELS.get(severity)
    with translation.override(notification.get("language") or settings.LANGUAGE_CODE):
        severity_label = _(label) if label else severity
    delivery = notification.get("delivery")
    payload = {
        "type": "alert",
        "title": f"{severity_label} · {notification.get('camera_name') or ''}".strip(" ·"),
        "body": notification.get("title") or "",
        "url": notification.get("url") or "",
        "event": notification.get("event"),
        "camera": notification.get("camera"),
        "severity": severity,
        "delivery": delivery,
        "tag": f"alert-{delivery}",
        "update": bool(notification.get("update")),
        "lang": notification.get("language") or "",
    }
    while len(_encoded(payload)) > PUSH_PAYLOAD_MAX_BYTES and len(payload["body"]) > 1:
        payload["body"] = payload["body"][: len(payload["body"]) // 2].rstrip() + "…"  # a long description
    return payload


def _encoded(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def push_send(*, user_id: int, notification: dict) -> dict:
    """Push ``notification`` (an in-app notification's payload) to each of ``user_id``'s subscriptions.

    Returns counts: ``sent``, ``failed``, ``removed``. One request per subscription, each bounded by
    ``PUSH_HTTP_TIMEOUT``; at most ``PUSH_MAX_SUBSCRIPTIONS`` subscriptions.
    """
    counts = {"sent": 0, "failed": 0, "removed": 0}
    keys = web_push_keys()
    if keys is None:
        return counts
    payload = push_payload(notification)
    severity = payload["severity"]
    ttl = settings.PUSH_TTL_SECONDS if severity in LOUD else settings.PUSH_TTL_MINOR_SECONDS
    urgency = transports.PUSH_URGENCY.get(severity, "normal")
    for subscription in push_subscriptions_of(user_id=user_id)[: settings.PUSH_MAX_SUBSCRIPTIONS]:
        if subscription.application_server_key and subscription.application_server_key != keys["public_key"]:
            # made with keys the site no longer has: the push service would refuse it; the browser subscribes again
            subscription.delete()
            counts["removed"] += 1
            continue
        try:
            transports.send_web_push(endpoint=subscription.endpoint, p256dh=subscription.p256dh,
                                     auth=subscription.auth, payload=payload, keys=keys, ttl=ttl, urgency=urgency,
                                     timeout=settings.PUSH_HTTP_TIMEOUT)
        except transports.PushGone as exc:
            log.info("Web Push subscription %s removed: %s", subscription.pk, exc)
            subscription.delete()
            counts["removed"] += 1
        except Exception as exc:  # SendError, or anything unexpected: recorded, never raised
            if not isinstance(exc, transports.SendError):
                log.exception("Web Push to subscription %s failed unexpectedly", subscription.pk)
            _failed(subscription, str(exc) or type(exc).__name__)
            counts["failed"] += 1
        else:
            PushSubscription.objects.filter(pk=subscription.pk).update(
                last_success_at=timezone.now(), failures=0, last_error="")
            counts["sent"] += 1
    return counts


def _failed(subscription: PushSubscription, error: str) -> None:
    now = timezone.now()
    PushSubscription.objects.filter(pk=subscription.pk).update(
        last_failure_at=now, last_error=error[:500], failures=F("failures") + 1)
    if subscription.failures + 1 >= settings.PUSH_MAX_FAILURES:
        PushSubscription.objects.filter(pk=subscription.pk, failures__gte=settings.PUSH_MAX_FAILURES).delete()
        log.info("Web Push subscription %s removed after %d failures in a row", subscription.pk,
                 settings.PUSH_MAX_FAILURES)
    else:
        log.info("Web Push to subscription %s failed: %s", subscription.pk, error)
