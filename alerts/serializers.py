from rest_framework import serializers

from .models import SEVERITY_CHOICES, AlertRule, Delivery, NotificationChannel


class ChannelInputSerializer(serializers.Serializer):
    """Field types only; the channel's own rules (URL per kind, secret) are checked by the model."""

    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(choices=NotificationChannel.Kind.choices)
    email = serializers.EmailField(required=False, allow_blank=True)
    url = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    secret = serializers.CharField(required=False, allow_blank=True, max_length=200, write_only=True,
                                   trim_whitespace=False, help_text="Webhook signing key; never returned.")
    enabled = serializers.BooleanField(required=False)


class ChannelOutputSerializer(serializers.ModelSerializer):
    # A plain string: empty (the owner's address) is not an email address, and the schema must say so.
    email = serializers.CharField(read_only=True, help_text="Email: the address (empty: the owner's address).")
    has_secret = serializers.SerializerMethodField()

    class Meta:
        model = NotificationChannel
        fields = ("id", "name", "kind", "email", "url", "enabled", "has_secret", "created_at", "updated_at")
        read_only_fields = fields

    def get_has_secret(self, channel) -> bool:
        return bool(channel.secret)


class RuleInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    enabled = serializers.BooleanField(required=False)
    all_cameras = serializers.BooleanField(required=False)
    cameras = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), required=False)
    min_severity = serializers.ChoiceField(choices=SEVERITY_CHOICES, required=False)
    quiet_start = serializers.TimeField(required=False, allow_null=True)
    quiet_end = serializers.TimeField(required=False, allow_null=True)
    time_zone = serializers.CharField(required=False, allow_blank=True, max_length=64)
    critical_in_quiet_hours = serializers.BooleanField(required=False)
    notify_in_app = serializers.BooleanField(required=False)
    channels = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), required=False)


class RuleOutputSerializer(serializers.ModelSerializer):
    cameras = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    channels = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = AlertRule
        fields = ("id", "name", "enabled", "all_cameras", "cameras", "min_severity", "quiet_start", "quiet_end",
                  "time_zone", "critical_in_quiet_hours", "notify_in_app", "channels", "created_at", "updated_at")
        read_only_fields = fields


class DeliveryOutputSerializer(serializers.ModelSerializer):
    channel_name = serializers.CharField(source="channel.name", read_only=True, allow_null=True, default=None)
    events = serializers.SerializerMethodField()

    class Meta:
        model = Delivery
        fields = ("id", "channel", "channel_name", "medium", "mode", "status", "events", "attempts", "max_attempts",
                  "next_attempt_at", "error", "sent_at", "suppressed_count", "reported_count", "subject", "body",
                  "created_at", "updated_at")
        read_only_fields = fields

    def get_events(self, delivery) -> list[str]:
        return [str(item.event_id) for item in delivery.items.all()]


class DeliveryFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Delivery.Status.choices, required=False)
    channel = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    mode = serializers.ChoiceField(choices=Delivery.Mode.choices, required=False)
