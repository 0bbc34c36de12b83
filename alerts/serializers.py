from django.utils.translation import gettext as _
from rest_framework import serializers

from events.kinds import EVENT_KINDS

from .models import (
    MAX_ESCALATION_MINUTES,
    SEVERITY_CHOICES,
    AlertRule,
    Delivery,
    EscalationStep,
    NotificationChannel,
    PushSubscription,
)

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


# -- Web Push ---------------------------------------------------------------------------------------------
def _b64url_bytes(value: str, field: str, size: int) -> bytes:
    import base64
    import re

    text = (value or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9_\-+/]+={0,2}", text):
        raise serializers.ValidationError(_("Give the browser's %(field)s key, base64url-encoded.") % {"field": field})
    text = text.rstrip("=").replace("+", "-").replace("/", "_")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:  # binascii.Error: a length no base64 text has
        raw = b""
    if len(raw) != size:
        raise serializers.ValidationError(
            _("The browser's %(field)s key is %(size)d bytes, not %(got)d.") % {"field": field, "size": size,
                                                                                 "got": len(raw)})
    return raw


class PushKeysSerializer(serializers.Serializer):
    p256dh = serializers.CharField(max_length=200, help_text="The browser's P-256 public key (base64url, 65 bytes).")
    auth = serializers.CharField(max_length=100, help_text="The browser's authentication secret (base64url, 16 bytes).")

    def validate_p256dh(self, value):
        from cryptography.hazmat.primitives.asymmetric import ec

        raw = _b64url_bytes(value, "p256dh", 65)
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError:
            raise serializers.ValidationError(_("The browser's p256dh key is not a P-256 public key.")) from None
        return value.strip().rstrip("=").replace("+", "-").replace("/", "_")

    def validate_auth(self, value):
        _b64url_bytes(value, "auth", 16)
        return value.strip().rstrip("=").replace("+", "-").replace("/", "_")


class PushSubscriptionInputSerializer(serializers.Serializer):
    """The browser's ``PushSubscription.toJSON()``: ``{"endpoint", "expirationTime", "keys": {"p256dh", "auth"}}``."""

    endpoint = serializers.CharField(max_length=2000, help_text="The push service's URL for this browser.")
    expirationTime = serializers.IntegerField(required=False, allow_null=True,  # noqa: N815 (the browser's name)
                                              help_text="Ignored (the browser's own).")
    keys = PushKeysSerializer()
    user_agent = serializers.CharField(required=False, allow_blank=True, max_length=300,
                                       help_text="What to call this device (default: the request's User-Agent).")


class PushSubscriptionOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = PushSubscription
        fields = ("id", "endpoint", "user_agent", "created_at", "last_success_at", "last_failure_at", "last_error",
                  "failures")
        read_only_fields = fields


class PushConfigSerializer(serializers.Serializer):
    enabled = serializers.BooleanField(help_text="Whether the site sends Web Push (it has VAPID keys).")
    public_key = serializers.CharField(allow_null=True,
                                       help_text="The applicationServerKey to subscribe with (base64url); null while "
                                                 "Web Push is not set up.")
    subscriptions = serializers.CharField(help_text="Where to post the subscription.")
    service_worker = serializers.CharField(help_text="The service worker's URL (scope /).")
