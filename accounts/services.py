"""Account workflows: registration, login throttling, and logout that revokes tokens."""

import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken


def user_register(*, username: str, password: str, email: str = "") -> "get_user_model()":
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


def user_update_preferences(*, user, language: str, time_zone: str):
    """The user's page language (empty: the browser's) and time zone."""
    user.language = language
    user.time_zone = time_zone
    user.save(update_fields=["language", "time_zone"])
    return user


def _throttle_keys(username: str, address: str) -> list[str]:
    return [f"login-fail:user:{(username or '').lower()[:150]}", f"login-fail:addr:{address}"]


def login_throttle_wait(*, username: str, address: str) -> int:
    """Seconds the caller must wait before trying again (0: may try now)."""
    for key in _throttle_keys(username, address):
        if (cache.get(key) or 0) >= settings.LOGIN_THROTTLE_ATTEMPTS:
            return settings.LOGIN_THROTTLE_WINDOW
    return 0


def login_failed(*, username: str, address: str) -> None:
    for key in _throttle_keys(username, address):
        cache.add(key, 0, timeout=settings.LOGIN_THROTTLE_WINDOW)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=settings.LOGIN_THROTTLE_WINDOW)


def login_succeeded(*, username: str, address: str) -> None:
    cache.delete(_throttle_keys(username, address)[0])


def client_address(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


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
