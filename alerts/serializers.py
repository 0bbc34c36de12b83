from rest_framework import serializers

from events.kinds import EVENT_KINDS

from .models import MAX_ESCALATION_MINUTES, SEVERITY_CHOICES, AlertRule, Delivery, EscalationStep, NotificationChannel

ID = {"min_value": 1, "max_value": 2**63 - 1}


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


class EscalationStepInputSerializer(serializers.Serializer):
    """One step; its order is its place in the list. The recipients are checked by the service."""

    after_minutes = serializers.IntegerField(
        min_value=1, max_value=MAX_ESCALATION_MINUTES,
        help_text="Minutes unacknowledged before this step: after the event started (step 1) or the previous step.")
    channels = serializers.ListField(child=serializers.IntegerField(**ID), required=False,
                                     help_text="Your own notification channels.")
    users = serializers.ListField(child=serializers.IntegerField(**ID), required=False,
                                  help_text="Users (email at their address and in-app); they must share a camera with "
                                            "you, and each alert still needs their access to the event's camera.")
    group = serializers.IntegerField(required=False, allow_null=True, help_text="A group you belong to.", **ID)


class RuleInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    enabled = serializers.BooleanField(required=False)
    all_cameras = serializers.BooleanField(required=False)
    cameras = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), required=False)
    min_severity = serializers.ChoiceField(choices=SEVERITY_CHOICES, required=False)
    kinds = serializers.ListField(child=serializers.ChoiceField(choices=list(EVENT_KINDS)), required=False,
                                  max_length=len(EVENT_KINDS),
                                  help_text="Which kinds of events the rule takes (scene, camera_health, "
                                            "camera_offline); empty or left out on create: every kind.")
    quiet_start = serializers.TimeField(required=False, allow_null=True)
    quiet_end = serializers.TimeField(required=False, allow_null=True)
    time_zone = serializers.CharField(required=False, allow_blank=True, max_length=64)
    critical_in_quiet_hours = serializers.BooleanField(required=False)
    notify_in_app = serializers.BooleanField(required=False)
    channels = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), required=False)
    escalation_steps = EscalationStepInputSerializer(
        many=True, required=False,
        help_text="Critical and high events nobody acknowledged go to these recipients, step after step. "
                  "Given: replaces the rule's steps (an empty list removes them); left out: keeps them.")


class EscalationStepOutputSerializer(serializers.ModelSerializer):
    channels = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    users = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = EscalationStep
        fields = ("id", "order", "after_minutes", "channels", "users", "group")
        read_only_fields = fields


class RuleOutputSerializer(serializers.ModelSerializer):
    cameras = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    kinds = serializers.ListField(child=serializers.ChoiceField(choices=list(EVENT_KINDS)), read_only=True,
                                  help_text="The kinds of events the rule takes; empty: every kind.")
    channels = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    escalation_steps = EscalationStepOutputSerializer(many=True, read_only=True)

    class Meta:
        model = AlertRule
        fields = ("id", "name", "enabled", "all_cameras", "cameras", "min_severity", "kinds", "quiet_start", "quiet_end",
                  "time_zone", "critical_in_quiet_hours", "notify_in_app", "channels", "escalation_steps",
                  "created_at", "updated_at")
        read_only_fields = fields


class DeliveryOutputSerializer(serializers.ModelSerializer):
    channel_name = serializers.CharField(source="channel.name", read_only=True, allow_null=True, default=None)
    events = serializers.SerializerMethodField()
    # Blank for everything but follow-ups: the schema's enum must say so.
    follow_up_kind = serializers.ChoiceField(choices=Delivery.FollowUpKind.choices, allow_blank=True, read_only=True,
                                             help_text="Follow-ups: what it tells (description, severity, or "
                                                       "incident: another event of the same incident); empty "
                                                       "for other deliveries.")

    class Meta:
        model = Delivery
        fields = ("id", "channel", "channel_name", "medium", "mode", "status", "events", "attempts", "max_attempts",
                  "next_attempt_at", "error", "sent_at", "suppressed_count", "reported_count", "subject", "body",
                  "follow_up_of", "follow_up_kind", "created_at", "updated_at")
        read_only_fields = fields

    def get_events(self, delivery) -> list[str]:
        return [str(item.event_id) for item in delivery.items.all()]


class DeliveryFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Delivery.Status.choices, required=False)
    channel = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    mode = serializers.ChoiceField(choices=Delivery.Mode.choices, required=False)
