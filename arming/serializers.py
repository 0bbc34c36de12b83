"""The arming API's shapes (arming/apis.py)."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from .models import Mode

#: Where a camera's effective mode comes from (the schema names this choice set ArmingSourceEnum).
SOURCES = ["camera", "area", "schedule", "default"]


class ArmingInputSerializer(serializers.Serializer):
    mode = serializers.CharField(
        allow_null=True, allow_blank=True, max_length=32,
        help_text=_("armed, home, away or disarmed; null (or \"auto\") clears the hand-set mode: the camera follows "
                    "its area, then the schedules, then armed."))


class ArmingScheduleRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ArmingModeChoiceSerializer(serializers.Serializer):
    value = serializers.ChoiceField(choices=Mode.choices)
    label = serializers.CharField()


class _EffectiveSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=Mode.choices, help_text=_("The effective mode now."))
    mode_label = serializers.CharField()
    source = serializers.ChoiceField(choices=SOURCES,
                                     help_text=_("Where the mode comes from."))
    source_label = serializers.CharField(help_text=_("Where the mode comes from, in words."))
    set_by = serializers.CharField(allow_null=True)
    set_at = serializers.DateTimeField(allow_null=True)
    schedule = ArmingScheduleRefSerializer(allow_null=True)


class CameraArmingSerializer(_EffectiveSerializer):
    camera = serializers.IntegerField()
    area = serializers.IntegerField(allow_null=True)
    override = serializers.ChoiceField(choices=Mode.choices, allow_null=True,
                                       help_text=_("The camera's own hand-set mode (null: automatic)."))
    can_switch = serializers.BooleanField()
    modes = ArmingModeChoiceSerializer(many=True)


class AreaCameraArmingSerializer(_EffectiveSerializer):
    camera = serializers.IntegerField()
    name = serializers.CharField()


class AreaArmingSerializer(serializers.Serializer):
    area = serializers.IntegerField()
    mode = serializers.ChoiceField(choices=Mode.choices, allow_null=True,
                                   help_text=_("The area's hand-set mode (null: automatic)."))
    mode_label = serializers.CharField(allow_null=True)
    set_by = serializers.CharField(allow_null=True)
    set_at = serializers.DateTimeField(allow_null=True)
    can_switch = serializers.BooleanField()
    cameras = AreaCameraArmingSerializer(many=True)
    modes = ArmingModeChoiceSerializer(many=True)
