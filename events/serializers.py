from django.urls import reverse
from rest_framework import serializers

from .models import AnomalyEvent


class EventOutputSerializer(serializers.ModelSerializer):
    camera_name = serializers.CharField(source="camera.name", read_only=True)
    acknowledged_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    resolved_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    snapshot = serializers.SerializerMethodField()
    clip = serializers.SerializerMethodField()
    labels = serializers.ListField(source="label_list", child=serializers.CharField(), read_only=True,
                                   help_text="Object labels seen in the event (person, bicycle, car...).")

    class Meta:
        model = AnomalyEvent
        fields = (
            "id", "camera", "camera_name", "started_at", "ended_at", "peak_score", "mean_score", "severity",
            "status", "description", "decision", "snapshot", "clip", "labels", "details", "acknowledged_by",
            "acknowledged_at",
            "resolved_by", "resolved_at", "created_at", "updated_at",
        )
        read_only_fields = fields

    def get_snapshot(self, event) -> str | None:
        return reverse("event-snapshot", args=[event.pk]) if event.snapshot else None

    def get_clip(self, event) -> str | None:
        return reverse("event-clip", args=[event.pk]) if event.clip else None

    def to_representation(self, event):
        """The fields above, written out: DRF's generic walk over them cost a tenth of an events API page.

        It gives exactly what the generic walk gives (tests/events/test_events_api.py compares them).
        """
        when = _DATETIME.to_representation  # in the current time zone, as DRF writes it
        return {
            "id": str(event.pk), "camera": event.camera_id, "camera_name": event.camera.name,
            "started_at": when(event.started_at), "ended_at": when(event.ended_at),
            "peak_score": float(event.peak_score), "mean_score": float(event.mean_score),
            "severity": event.severity, "status": event.status, "description": event.description,
            "decision": event.decision, "snapshot": self.get_snapshot(event), "clip": self.get_clip(event),
            "labels": event.label_list, "details": event.details,
            "acknowledged_by": event.acknowledged_by.username if event.acknowledged_by_id else None,
            "acknowledged_at": when(event.acknowledged_at),
            "resolved_by": event.resolved_by.username if event.resolved_by_id else None,
            "resolved_at": when(event.resolved_at), "created_at": when(event.created_at),
            "updated_at": when(event.updated_at),
        }


_DATETIME = serializers.DateTimeField()


class EventFilterSerializer(serializers.Serializer):
    camera = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    severity = serializers.ChoiceField(choices=AnomalyEvent.Severity.choices, required=False)
    status = serializers.ChoiceField(choices=AnomalyEvent.Status.choices, required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    label = serializers.RegexField(r"^[A-Za-z][A-Za-z ]{0,39}$", required=False,
                                   help_text="Only events where this object was seen (person, bicycle, car...).")

    def validate(self, attrs):
        if attrs.get("since") and attrs.get("until") and attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": "Must be later than 'since'."})
        return attrs


class EventResolveInputSerializer(serializers.Serializer):
    false_alarm = serializers.BooleanField(default=False)
