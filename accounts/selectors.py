"""Account reads: the client's address, and whether an access token was revoked."""

from __future__ import annotations

import ipaddress
from importlib import import_module

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.core.cache import cache
from django.utils.crypto import constant_time_compare
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.utils import aware_utcnow

from siteconfig.selectors import trusted_proxies

from .services import revoked_before_key, revoked_jti_key

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(value: str) -> Address | None:
    """An address as a proxy or server writes it ("1.2.3.4", "1.2.3.4:5678", "[::1]:80", "::ffff:1.2.3.4");
    None when it is none (e.g. "unknown")."""
    value = value.strip().strip('"')
    if value.startswith("[") and "]" in value:
        value = value[1:value.index("]")]
    elif value.count(":") == 1:  # IPv4 with a port
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(request) -> str:
    """The address of the client that made ``request``: the one function for it (sign-in throttling,
    API throttles, anything that tells clients apart).

    REMOTE_ADDR, unless it is one of the site settings' trusted proxies: then X-Forwarded-For is
    believed, read from the right, and the first address that is not itself a trusted proxy is the
    client (each trusted proxy appended the address it saw; whatever is left of that was written by
    the client and is never believed). A request that came only through trusted proxies (the proxy's
    own health check) is the left-most of them. An X-Forwarded-For hop that is not an address stops
    the walk at the last trusted proxy.
    """
    remote_raw = request.META.get("REMOTE_ADDR", "") or ""
    remote = _address(remote_raw)
    if remote is None:
        return remote_raw[:64] or "unknown"
    proxies = trusted_proxies()
    if not proxies or not any(remote in network for network in proxies):
        return str(remote)
    client = remote
    for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        if not hop.strip():
            continue
        address = _address(hop)
        if address is None:
            break
        client = address
        if not any(address in network for network in proxies):
            break
    return str(client)


def access_token_revoked(token) -> bool:
    """True when ``token`` (a validated access token) was revoked by a logout, or by a logout
    everywhere of its user issued after it."""
    jti = token.get(api_settings.JTI_CLAIM)
    user_id = token.get(api_settings.USER_ID_CLAIM)
    keys = [revoked_jti_key(jti), revoked_before_key(user_id)]
    found = cache.get_many(keys)
    if found.get(keys[0]):
        return True
    before = found.get(keys[1])
    return before is not None and float(token.get("iat", 0)) <= float(before)


def token_user(token):
    """``(user, "")`` while a socket's JWT access token still authenticates its user, reloaded from the
    database; else ``(None, why)``: the token expired, was revoked (logout, logout everywhere), or its
    user was deactivated or removed. A database or Redis error is raised, never taken as an answer."""
    try:
        token.check_exp(current_time=aware_utcnow())
    except TokenError:
        return None, "Your token expired. Connect again with a fresh access token."
    if access_token_revoked(token):
        return None, "Your token was revoked (logged out). Log in again."
    try:
        return JWTAuthentication().get_user(token), ""
    except AuthenticationFailed as exc:
        return None, f"You can no longer sign in with this token ({exc.detail}). Log in again."


def session_user(session_key, user_id):
    """``(user, "")`` while the session still signs in user ``user_id``, reloaded from the database; else
    ``(None, why)``: logged out or expired (no such session), the password changed (the session's auth
    hash no longer matches, as ``django.contrib.auth.get_user`` checks it), or the user was deactivated or
    removed. Read-only: unlike ``get_user`` it never flushes or cycles the session."""
    if not session_key:
        return None, "You are not signed in. Sign in again."
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    if str(session.get(SESSION_KEY)) != str(user_id):
        return None, "You were signed out. Sign in again."
    backend = session.get(BACKEND_SESSION_KEY)
    user = load_backend(backend).get_user(user_id) if backend in settings.AUTHENTICATION_BACKENDS else None
    if user is None:  # ModelBackend gives no inactive user
        return None, "Your account was deactivated. Sign in again."
    stored = session.get(HASH_SESSION_KEY) or ""
    hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    if not stored or not any(constant_time_compare(stored, h) for h in hashes):
        return None, "Your password was changed. Sign in again."
    return user, ""
