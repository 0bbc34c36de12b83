"""How a rendered message leaves the building: email, signed webhook, Apprise, in-app.

Each sender raises ``SendError`` with a readable reason on failure; the caller records it
and decides about retries. No database access here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from inference.addresses import AddressNotAllowed, check_host, connections_checked
from siteconfig.selectors import WHERE, smtp_server, webhook_networks

SIGNATURE_HEADER = "X-Alert-Signature"
TIMESTAMP_HEADER = "X-Alert-Timestamp"
DELIVERY_HEADER = "X-Alert-Delivery"
ATTEMPT_HEADER = "X-Alert-Attempt"
SIGNATURE_SCHEME = "sha256"


class SendError(Exception):
    pass


class NotConfigured(SendError):
    """The site cannot send on this channel at all (retrying cannot help): e.g. email with no mail server."""


#: Email backends that deliver nothing: with one of these an email is never reported sent.
NOWHERE_EMAIL_BACKENDS = ("django.core.mail.backends.console.EmailBackend",
                          "django.core.mail.backends.dummy.EmailBackend")


@dataclass
class Message:
    subject: str
    text: str
    payload: dict = field(default_factory=dict)  # the webhook JSON / in-app payload
    #: Email: extra headers (our own ``Message-ID``; a follow-up's ``In-Reply-To`` and ``References``).
    headers: dict = field(default_factory=dict)


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`` (see docs/alerts.md)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_SCHEME}={mac.hexdigest()}"


def _check_destination(url: str) -> None:
    """Refuse at once a host that resolves to an address the policy refuses (a clear message);
    the connection itself is checked again when it is made (``_guarded``)."""
    host = urlsplit(url).hostname
    if host:
        try:
            check_host(host, webhook_networks(), what="alert host", where=WHERE["webhook"])
        except AddressNotAllowed as exc:
            raise SendError(str(exc)) from None


def _guarded():
    """Every connection made while sending goes to an address the webhook policy allows, checked
    on the address actually connected to (a name re-pointed after the check is refused too)."""
    return connections_checked(webhook_networks(), what="alert host", where=WHERE["webhook"])


def send_webhook(*, url: str, secret: str, message: Message, delivery_id: int, attempt: int) -> None:
    import requests

    body = json.dumps(message.payload, separators=(",", ":"), sort_keys=True, default=str).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "surveillance-alerts/1",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        DELIVERY_HEADER: str(delivery_id),
        ATTEMPT_HEADER: str(attempt),
    }
    _check_destination(url)
    try:
        with _guarded():
            response = requests.post(url, data=body, headers=headers, timeout=settings.ALERT_HTTP_TIMEOUT,
                                     allow_redirects=False)
    except requests.RequestException as exc:
        raise SendError(f"{type(exc).__name__}: {exc}"[:1000]) from exc
    if not 200 <= response.status_code < 300:
        raise SendError(f"HTTP {response.status_code} from the webhook: {response.text[:300]}")


SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"

#: Why email cannot go out, for the failure of a delivery and for the warning on the channel's page.
EMAIL_NOT_SET_UP = (
    "Email is not set up on this site: its mail goes to the server's console only. An administrator fills the "
    "SMTP fields (server, port, encryption, user name, password, sender address) in the admin's Site settings "
    "(/admin/siteconfig/sitesettings/, or PATCH /api/v1/site/settings/), or sets EMAIL_BACKEND "
    "(django.core.mail.backends.smtp.EmailBackend) and EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, "
    "EMAIL_HOST_PASSWORD in the environment (docs/alerts.md)."
)


def email_configured() -> bool:
    """Whether this site sends email anywhere: an SMTP server in the site settings, or an EMAIL_BACKEND that is
    not the console's (the default of make run)."""
    return settings.EMAIL_BACKEND not in NOWHERE_EMAIL_BACKENDS or smtp_server() is not None


def email_connection():
    """(connection, from address) of email alerts: the site settings' SMTP server when one is set, else the
    EMAIL_* settings (the default connection and DEFAULT_FROM_EMAIL)."""
    server = smtp_server()
    if server is None:
        return None, settings.DEFAULT_FROM_EMAIL
    connection = get_connection(
        backend=SMTP_BACKEND, host=server["host"], port=server["port"], username=server["username"],
        password=server["password"], use_tls=server["use_tls"], use_ssl=server["use_ssl"],
        timeout=settings.ALERT_HTTP_TIMEOUT, fail_silently=False)
    return connection, server["from_email"] or settings.DEFAULT_FROM_EMAIL


def send_email(*, address: str, message: Message) -> None:
    if not address:
        raise SendError("The channel has no email address.")
    if not email_configured():
        raise NotConfigured(EMAIL_NOT_SET_UP)
    try:
        connection, from_email = email_connection()
        EmailMessage(message.subject, message.text, from_email, [address], connection=connection,
                     headers=dict(message.headers) or None).send(fail_silently=False)
    except Exception as exc:  # SMTP errors, connection refused...
        raise SendError(f"{type(exc).__name__}: {exc}"[:1000]) from exc


def send_apprise(*, url: str, message: Message) -> None:
    import apprise  # its plugins load on first use, not with every process that imports the transports

    _check_destination(url)
    # Sequential delivery: the plugin connects from this thread, inside the connection guard.
    notifier = apprise.Apprise(asset=apprise.AppriseAsset(async_mode=False))
    if not notifier.add(url):
        raise SendError("Apprise does not recognise the channel's URL.")
    with apprise.LogCapture(level=logging.WARNING) as logs, _guarded() as refused:
        ok = notifier.notify(title=message.subject, body=message.text)
    if refused:
        raise SendError(refused[0])
    if not ok:
        detail = (logs.getvalue() or "").strip().splitlines()
        raise SendError(("Apprise: " + " | ".join(detail[-3:]))[:1000] if detail else "Apprise reported a failure.")


def send_in_app(*, group: str, message: Message) -> None:
    """A ``notification`` group message to the user's open WebSockets (cameras/consumers.py)."""
    layer = get_channel_layer()
    if layer is None:
        raise SendError("No channel layer is configured.")
    try:
        async_to_sync(layer.group_send)(group, {"type": "notification", "payload": message.payload})
    except Exception as exc:
        raise SendError(f"{type(exc).__name__}: {exc}"[:1000]) from exc


# -- Web Push (docs/alerts.md "Web Push") ----------------------------------------------------------
class PushGone(SendError):
    """The push service says the subscription no longer exists (404 or 410): forget it."""


#: How soon a push service must deliver, by severity (RFC 8030 "Urgency"): a phone wakes up for "high".
PUSH_URGENCY = {"critical": "high", "high": "high", "medium": "normal", "low": "low"}


def _push_session():
    """A requests session that never follows a redirect (like the webhooks)."""
    import requests

    class NoRedirects(requests.Session):
        def request(self, *args, **kwargs):
            kwargs["allow_redirects"] = False
            return super().request(*args, **kwargs)

    return NoRedirects()


def send_web_push(*, endpoint: str, p256dh: str, auth: str, payload: dict, keys: dict, ttl: int,
                  urgency: str, timeout: float) -> int:
    """One encrypted push (RFC 8291, aes128gcm) signed with the site's VAPID keys (RFC 8292) to one browser's
    push service. Returns the HTTP status (2xx); raises PushGone on 404 or 410, SendError otherwise. The
    endpoint is checked against the webhook networks, and again on the address connected to."""
    from pywebpush import WebPushException, webpush

    _check_destination(endpoint)
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str)
    parts = urlsplit(endpoint)
    claims = {"sub": keys["subject"], "aud": f"{parts.scheme}://{parts.netloc}"}
    session = _push_session()
    try:
        with _guarded() as refused:
            response = webpush(
                subscription_info={"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}},
                data=body, vapid_private_key=keys["private_key"], vapid_claims=claims, ttl=int(ttl),
                headers={"Urgency": urgency}, timeout=timeout, requests_session=session,
                content_encoding="aes128gcm")
    except WebPushException as exc:
        status = exc.status_code
        text = ""
        if exc.response is not None:
            text = (getattr(exc.response, "text", "") or "")[:200]
        if status in (404, 410):
            raise PushGone(f"HTTP {status} from the push service: the subscription is gone.") from None
        raise SendError(f"HTTP {status} from the push service: {text}".strip()[:500] if status else
                        f"Web Push: {exc.message}"[:500]) from None
    except Exception as exc:  # network errors, a refused address (the connection guard), bad keys
        raise SendError(f"{type(exc).__name__}: {exc}"[:500]) from exc
    finally:
        session.close()
    if refused:
        raise SendError(refused[0][:500])
    if not 200 <= response.status_code < 300:  # a redirect (3xx), which is not followed
        raise SendError(f"HTTP {response.status_code} from the push service.")
    return response.status_code
