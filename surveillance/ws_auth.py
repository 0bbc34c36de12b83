"""WebSocket authentication: the session cookie (pages) or ``?token=<JWT access>`` (mobile)."""

from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser


@database_sync_to_async
def _user_and_token(raw: str):
    from rest_framework.exceptions import AuthenticationFailed
    from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

    from accounts.authentication import RevocableJWTAuthentication

    auth = RevocableJWTAuthentication()
    try:
        token = auth.get_validated_token(raw)
        return auth.get_user(token), token
    except (InvalidToken, TokenError, AuthenticationFailed):
        return AnonymousUser(), None


class JWTOrSessionAuthMiddleware:
    def __init__(self, inner):
        self.inner = AuthMiddlewareStack(inner)
        self.token_inner = inner

    async def __call__(self, scope, receive, send):
        token = parse_qs(scope.get("query_string", b"").decode(errors="replace")).get("token", [None])[0]
        if token:
            user, validated = await _user_and_token(token)
            # The consumer re-checks the token while the socket is open: a logout closes it.
            scope = dict(scope, user=user, jwt=validated)
            return await self.token_inner(scope, receive, send)
        return await self.inner(scope, receive, send)
