"""Account workflows: registration, sign-in throttling, and logout that revokes tokens."""

import hashlib
import math
import time

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from siteconfig.selectors import registration_open, site_settings

from . import signals

REGISTRATION_CLOSED = "Self-registration is turned off on this site; an administrator creates accounts."


def user_register(*, username: str, password: str, email: str = "") -> "get_user_model()":
    """Self-registration: PermissionDenied unless the site settings open it."""
    if not registration_open():
        raise PermissionDenied(REGISTRATION_CLOSED)
    User = get_user_model()
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": ["A user with that username already exists."]})
    user = User(username=username, email=email)
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    user.set_password(password)
    with transaction.atomic():
        user.full_clean()
        user.save()
    return user


def user_update_preferences(*, user, language: str, time_zone: str, alert_sound: bool | None = None):
    """The user's page language (empty: the browser's), time zone and, when given, whether open pages play
    a sound for high and critical alerts (``alert_sound``)."""
    user.language = language
    user.time_zone = time_zone
    fields = ["language", "time_zone"]
    if alert_sound is not None:
        user.alert_sound = bool(alert_sound)
        fields.append("alert_sound")
    user.save(update_fields=fields)
    return user


# --- sign-in throttling -----------------------------------------------------------------------------
# Failed sign-ins are counted per (user name, client address) pair, never per user name alone (anyone
# could then pause ``admin`` on purpose) nor per address alone (every user behind one proxy would be
# paused together). The limits are the site settings' ``login_max_failures`` within
# ``login_lockout_seconds`` (counted from the pair's first failure), then a pause of
# ``login_lockout_seconds``. The pause's expiry is stored, so a refusal names the real time left.
# Clearing a user's pauses bumps the user name's generation, which every key of the user carries:
# all its pairs are forgotten at once, whatever the addresses.

def _now() -> float:
    return time.time()


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _user_part(username: str) -> str:
    return _digest((username or "").lower()[:150])


def _generation_key(username: str) -> str:
    return f"signin-gen:{_user_part(username)}"


def _pair_keys(username: str, address: str) -> tuple[str, str, str]:
    """(failure counter, pause, the user's list of paused addresses) for this pair, in the user's
    current generation."""
    user = _user_part(username)
    generation = cache.get(_generation_key(username)) or 0
    pair = f"{user}:{generation}:{_digest(address)}"
    return f"signin-fail:{pair}", f"signin-pause:{pair}", f"signin-paused:{user}:{generation}"


def login_throttle_wait(*, username: str, address: str) -> int:
    """Seconds this user name must wait before trying again from this address (0: may try now)."""
    _fail, pause, _paused = _pair_keys(username, address)
    until = cache.get(pause)
    if until is None:
        return 0
    remaining = float(until) - _now()
    return max(1, math.ceil(remaining)) if remaining > 0 else 0


def login_throttle_message(wait: int) -> str:
    """What a refused sign-in is told (the API's 429 and the sign-in page)."""
    return gettext("Too many failed sign-ins. Try again in %(throttled)s seconds.") % {"throttled": wait}


def login_failed(*, username: str, address: str) -> None:
    """Count a failed sign-in of the pair; at the site's limit, pause the pair."""
    config = site_settings()
    limit, seconds = config.login_max_failures, config.login_lockout_seconds
    fail, pause, paused = _pair_keys(username, address)
    cache.add(fail, 0, timeout=seconds)
    try:
        count = cache.incr(fail)
    except ValueError:  # expired between add and incr
        cache.set(fail, 1, timeout=seconds)
        count = 1
    if count < limit:
        return
    until = _now() + seconds
    if cache.add(pause, until, timeout=seconds):  # parallel failures never extend a pause
        # For the admin's list of pauses only (clearing does not rely on it).
        listed = {a: u for a, u in (cache.get(paused) or {}).items() if u > _now()}
        listed[address[:64]] = until
        cache.set(paused, listed, timeout=max(1, math.ceil(max(listed.values()) - _now())))
    cache.delete(fail)


def login_succeeded(*, username: str, address: str) -> None:
    """A correct password: the pair starts again from no failures."""
    fail, pause, _paused = _pair_keys(username, address)
    cache.delete_many([fail, pause])


def signin_lockouts(username: str) -> dict[str, float]:
    """The client addresses this user name is paused for now -> when each pause ends (a Unix time)."""
    _fail, _pause, paused = _pair_keys(username, "")
    now = _now()
    return {address: until for address, until in (cache.get(paused) or {}).items() if until > now}


def signin_lockouts_clear(*, user, by=None, address: str = "") -> int:
    """Forget the failed sign-ins of ``user`` (every address, or only ``address``): a paused user may
    sign in again at once. Returns how many pauses were in force. Announced as
    ``accounts.signals.signin_lockouts_cleared`` (the audit log records it)."""
    username = user.get_username()
    active = signin_lockouts(username)
    if address:
        fail, pause, paused = _pair_keys(username, address)
        cache.delete_many([fail, pause])
        cleared = int(active.pop(address[:64], None) is not None)
        if active:
            cache.set(paused, active, timeout=max(1, math.ceil(max(active.values()) - _now())))
        else:
            cache.delete(paused)
    else:
        cleared = len(active)
        key = _generation_key(username)
        cache.add(key, 0, timeout=None)
        try:
            cache.incr(key)
        except ValueError:  # evicted between add and incr
            cache.set(key, 1, timeout=None)
    signals.signin_lockouts_cleared.send(sender=user.__class__, user=user, by=by, address=address,
                                         cleared=cleared)
    return cleared


def revoked_jti_key(jti) -> str:
    return f"jwt-revoked:{jti}"


def revoked_before_key(user_id) -> str:
    return f"jwt-revoked-before:{user_id}"


def tokens_revoke(*, user, refresh: str = "", access=None, everywhere: bool = False) -> int:
    """Log out: blacklist the refresh token and refuse the access token from now on.

    ``everywhere`` blacklists every refresh token of the user and refuses every access token
    issued until now (all devices). Returns the number of refresh tokens blacklisted. A refresh
    token that is not the user's, or not valid, is a ValidationError naming the problem.
    """
    count = 0
    if refresh:
        try:
            token = RefreshToken(refresh)
        except TokenError as exc:
            raise ValidationError({"refresh": [f"Not a valid refresh token: {exc}"]}) from exc
        if str(token.get(api_settings.USER_ID_CLAIM)) != str(user.pk):
            raise ValidationError({"refresh": ["This refresh token belongs to another user."]})
        token.blacklist()
        count += 1
    access_lifetime = api_settings.ACCESS_TOKEN_LIFETIME.total_seconds()
    if access is not None:
        remaining = max(1, int(float(access.get("exp", 0)) - time.time()) + 1)
        cache.set(revoked_jti_key(access.get(api_settings.JTI_CLAIM)), True, timeout=remaining)
    if everywhere:
        with transaction.atomic():
            for outstanding in OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True):
                BlacklistedToken.objects.get_or_create(token=outstanding)
                count += 1
        cache.set(revoked_before_key(user.pk), time.time(), timeout=int(access_lifetime) + 60)
    return count
