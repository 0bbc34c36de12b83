from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from siteconfig.selectors import registration_open

from .selectors import client_address
from .services import (
    REGISTRATION_CLOSED,
    login_failed,
    login_succeeded,
    login_throttle_message,
    login_throttle_wait,
    tokens_revoke,
    user_register,
)


class ClientScopedRateThrottle(ScopedRateThrottle):
    """DRF's scoped throttle, telling clients apart by ``selectors.client_address`` (DRF's own believes
    any X-Forwarded-For, so a client could change its address at will)."""

    def get_ident(self, request):
        return client_address(request)


class RegistrationOpen(BasePermission):
    """Self-registration is allowed only while the site settings open it (checked before the input
    is read and before the registration throttle counts the request)."""

    message = REGISTRATION_CLOSED

    def has_permission(self, request, view):
        return registration_open()


REGISTRATION_CLOSED_SCHEMA = inline_serializer("RegistrationClosed", {"detail": serializers.CharField()})


class UserOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = get_user_model()
        fields = ("id", "username", "email", "is_staff", "language", "time_zone", "alert_sound")


class RegisterApi(APIView):
    """Create an account (anyone), only while self-registration is open in the site settings
    (``registration_open``; off by default: administrators create accounts in the admin)."""

    permission_classes = [RegistrationOpen]
    authentication_classes = []
    throttle_classes = [ClientScopedRateThrottle]
    throttle_scope = "register"

    class InputSerializer(serializers.Serializer):
        username = serializers.RegexField(r"^[\w.@+-]{3,150}$", error_messages={
            "invalid": "Use 3 to 150 letters, digits and @/./+/-/_ only."})
        password = serializers.CharField(write_only=True, max_length=128)
        email = serializers.EmailField(required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses={
        201: UserOutputSerializer,
        403: OpenApiResponse(REGISTRATION_CLOSED_SCHEMA,
                             description=f"Self-registration is closed: {REGISTRATION_CLOSED!r}"),
    })
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = user_register(**data.validated_data)
        return Response(UserOutputSerializer(user).data, status=status.HTTP_201_CREATED)


class MeApi(APIView):
    @extend_schema(responses=UserOutputSerializer)
    def get(self, request):
        return Response(UserOutputSerializer(request.user).data)


class TokenObtainApi(TokenObtainPairView):
    """Username and password -> access and refresh tokens. Failed attempts are throttled per user name
    and client address (site settings: ``login_max_failures``, ``login_lockout_seconds``): 429 with
    Retry-After, the seconds actually left."""

    def post(self, request, *args, **kwargs):
        username = str(request.data.get("username", "")) if hasattr(request.data, "get") else ""
        address = client_address(request)
        wait = login_throttle_wait(username=username, address=address)
        if wait:
            return Response(
                {"detail": login_throttle_message(wait)},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(wait)},
            )
        try:
            response = super().post(request, *args, **kwargs)
        except AuthenticationFailed:
            login_failed(username=username, address=address)
            raise
        login_succeeded(username=username, address=address)
        return response


class TokenRefreshApi(TokenRefreshView):
    pass


class LogoutApi(APIView):
    """Revoke the refresh token given and the access token used for this call (or, with
    ``everywhere``, every token of the user on every device)."""

    class LogoutInputSerializer(serializers.Serializer):
        refresh = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
        everywhere = serializers.BooleanField(required=False, default=False)

    class LogoutOutputSerializer(serializers.Serializer):
        revoked_refresh_tokens = serializers.IntegerField()

    @extend_schema(request=LogoutInputSerializer, responses=LogoutOutputSerializer)
    def post(self, request):
        data = self.LogoutInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        access = request.auth if hasattr(request.auth, "get") else None
        count = tokens_revoke(user=request.user, access=access, **data.validated_data)
        return Response({"revoked_refresh_tokens": count})
