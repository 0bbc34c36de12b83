"""VAPID keys of Web Push (RFC 8292): a P-256 key pair the site signs its pushes with.

Stored in the site settings as browsers and py_vapid spell them: the public key as base64url (no padding) of
its 65-byte uncompressed point (the ``applicationServerKey`` a browser subscribes with), the private key as
base64url of its 32-byte secret number.
"""

from __future__ import annotations

import base64
import re

from django.utils.translation import gettext as _

#: What a contact looks like (RFC 8292 "sub"): a mailto: address or an https: URL.
#: As py_vapid checks it when signing: a mail domain with a dot (or localhost); an https origin whose host has a
#: dot (or is localhost), without a port or a path.
_SUBJECT = re.compile(r"^(mailto:[^@\s]+@(localhost|[%\w-]+(\.[%\w-]+)+)|https://(localhost|[\w-]+\.[\w.-]+))$",
                      re.IGNORECASE)


class VapidKeyError(ValueError):
    pass


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    text = (text or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))


def _private_key(private: str):
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        raw = b64url_decode(private)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise VapidKeyError(_("A VAPID private key is the base64url text of 32 bytes (43 characters): use "
                              "\"Generate VAPID keys\"."))
    try:
        return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except ValueError:
        raise VapidKeyError(_("This is not a P-256 private key: use \"Generate VAPID keys\".")) from None


def _public_text(key) -> str:
    from cryptography.hazmat.primitives import serialization

    return b64url(key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))


def public_key_of(private: str) -> str:
    """The base64url public key of a base64url private key; VapidKeyError when it is not one."""
    return _public_text(_private_key(private).public_key())


def generate() -> tuple[str, str]:
    """A new (public, private) pair, as stored."""
    from py_vapid import Vapid

    vapid = Vapid()
    vapid.generate_keys()
    number = vapid.private_key.private_numbers().private_value
    return _public_text(vapid.public_key), b64url(number.to_bytes(32, "big"))


def check_subject(subject: str) -> None:
    if not _SUBJECT.match(subject or ""):
        raise VapidKeyError(_("Give a mailto: address (mailto:admin@example.com) or the site's https:// address "
                              "without a path (https://cameras.example.com)."))
