"""WebSocket authentication: the session cookie (pages) or ``?token=<JWT access>`` (mobile).

Which one is decided by the query string alone: a socket that carries ``?token=`` is authenticated
by that token and nothing else (its cookies are never read, even when the token is invalid).

The Origin header matters only to cookie sessions. A browser attaches the session cookie to a
WebSocket opened by any site, so a session socket must come from one of ``ALLOWED_HOSTS``
(``AllowedHostsOriginValidator``: no Origin, or a foreign one, is refused with HTTP 403), which
stops cross-site WebSocket hijacking. A token is not ambient: only a client that holds it can send
it, so a token socket needs no Origin (native apps: OkHttp, URLSession send none) and is allowed
from any Origin (a page of another site that was given a token may use it, as it may call the API
with it). See docs/websocket.md, "Connecting".
"""

import logging
from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator
from django.contrib.auth.models import AnonymousUser

log = logging.getLogger(__name__)


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
    except Exception as exc:  # the revocation list (Redis) or the user (database) unreachable: refused
        log.warning("WebSocket token check failed, the socket is refused (the client connects again): %s", exc)
        return AnonymousUser(), None


class JWTOrSessionAuthMiddleware:
    def __init__(self, inner):
        # Cookie sessions: the Origin check first, then the session and its user.
        self.session_inner = AllowedHostsOriginValidator(AuthMiddlewareStack(inner))
        self.token_inner = inner

    async def __call__(self, scope, receive, send):
        token = parse_qs(scope.get("query_string", b"").decode(errors="replace")).get("token", [None])[0]
        if token:
            user, validated = await _user_and_token(token)
            # The consumer re-checks the token while the socket is open: expiry, logout and a
            # deactivated user close it. ``jwt`` in the scope marks a token socket (None: refused).
            scope = dict(scope, user=user, jwt=validated)
            return await self.token_inner(scope, receive, send)
        return await self.session_inner(scope, receive, send)
