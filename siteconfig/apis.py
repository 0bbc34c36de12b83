from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import SiteSettings
from .selectors import site_settings
from .services import EDITABLE, site_settings_update


class SiteSettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = SiteSettings
        fields = (*EDITABLE, "updated_at")
        read_only_fields = ("updated_at",)


class SiteSettingsApi(APIView):
    """The site's settings (staff only): networks, registration, sign-in limits, trusted proxies."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses=SiteSettingsSerializer)
    def get(self, request):
        return Response(SiteSettingsSerializer(site_settings()).data)

    @extend_schema(request=SiteSettingsSerializer, responses=SiteSettingsSerializer)
    def patch(self, request):
        data = SiteSettingsSerializer(site_settings(), data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        row = site_settings_update(**data.validated_data)
        return Response(SiteSettingsSerializer(row).data)
