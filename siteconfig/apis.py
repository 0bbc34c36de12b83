from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from inference.openai_chat import mask_secrets

from .models import SiteSettings
from .selectors import site_settings
from .services import EDITABLE, SERVER_FIELDS, site_settings_update, site_vapid_keys_generate


class SiteSettingsSerializer(serializers.ModelSerializer):
    """The site's settings; a model server's api_key reads ``***`` (send it back unchanged to keep it); the SMTP
    password is write-only (``has_smtp_password`` says whether one is stored)."""

    smtp_password = serializers.CharField(
        write_only=True, required=False, allow_blank=True, allow_null=True, max_length=255, trim_whitespace=False,
        help_text="The mail server's password; never returned. Empty or left out: the stored one is kept; null: "
                  "cleared.")
    has_smtp_password = serializers.SerializerMethodField(help_text="Whether an SMTP password is stored.")
    vapid_private_key = serializers.CharField(
        write_only=True, required=False, allow_blank=True, allow_null=True, max_length=100,
        help_text="Web Push: the VAPID private key (base64url, 32 bytes); never returned. Empty or left out: the "
                  "stored one is kept; null: cleared (with its public key). A new one without vapid_public_key: "
                  "the public key is derived.")
    has_vapid_private_key = serializers.SerializerMethodField(help_text="Whether a VAPID private key is stored.")
    generate_vapid_keys = serializers.BooleanField(
        write_only=True, required=False, default=False,
        help_text="true: store a new VAPID key pair (Web Push); browsers subscribe again on their next page.")

    class Meta:
        model = SiteSettings
        fields = (*EDITABLE, "has_smtp_password", "has_vapid_private_key", "generate_vapid_keys", "updated_at")
        read_only_fields = ("updated_at",)

    def get_has_smtp_password(self, row) -> bool:
        return bool(row.smtp_password)

    def get_has_vapid_private_key(self, row) -> bool:
        return bool(row.vapid_private_key)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for name in SERVER_FIELDS:
            data[name] = mask_secrets(data.get(name))
        return data


class SiteSettingsApi(APIView):
    """The site's settings (staff only): networks, registration, sign-in limits, trusted proxies, model servers,
    the mail server of email alerts, the VAPID keys of Web Push, the retention of recorded footage."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses=SiteSettingsSerializer)
    def get(self, request):
        return Response(SiteSettingsSerializer(site_settings()).data)

    @extend_schema(request=SiteSettingsSerializer, responses=SiteSettingsSerializer)
    def patch(self, request):
        data = SiteSettingsSerializer(site_settings(), data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        generate = changes.pop("generate_vapid_keys", False)
        with transaction.atomic():
            row = site_settings_update(**changes)
            if generate:
                row = site_vapid_keys_generate()
        return Response(SiteSettingsSerializer(row).data)
