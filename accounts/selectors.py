"""Account reads."""

from django.core.cache import cache
from rest_framework_simplejwt.settings import api_settings

from .services import revoked_before_key, revoked_jti_key


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
