"""Account workflows: registration and login throttling."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction


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
