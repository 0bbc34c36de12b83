"""JWT authentication that honours logout: revoked access tokens are refused before they expire."""

from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken

from .selectors import access_token_revoked


class RevocableJWTAuthentication(JWTAuthentication):
    """simplejwt's authentication plus the revocation list kept by ``accounts.services.tokens_revoke``."""

    def get_validated_token(self, raw_token):
        token = super().get_validated_token(raw_token)
        if access_token_revoked(token):
            raise InvalidToken({"detail": "This token was revoked by a logout. Log in again.", "code": "token_revoked"})
        return token
