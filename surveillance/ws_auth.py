"""WebSocket authentication: the session cookie (pages) or ``?token=<JWT access>`` (mobile)."""

from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser


@database_sync_to_async
def _user_from_token(raw: str):
    from rest_framework.exceptions import AuthenticationFailed
    from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

    from accounts.authentication import RevocableJWTAuthentication

    auth = RevocableJWTAuthentication()
    try:
        return auth.get_user(auth.get_validated_token(raw))
    except (InvalidToken, TokenError, AuthenticationFailed):
        return AnonymousUser()


class JWTOrSessionAuthMiddleware:
    def __init__(self, inner):
        self.inner = AuthMiddlewareStack(inner)
        self.token_inner = inner

    async def __call__(self, scope, receive, send):
        token = parse_qs(scope.get("query_string", b"").decode(errors="replace")).get("token", [None])[0]
        if token:
            scope = dict(scope, user=await _user_from_token(token))
            return await self.token_inner(scope, receive, send)
        return await self.inner(scope, receive, send)
