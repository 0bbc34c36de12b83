from django.conf import settings
from django.urls import get_script_prefix, reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import AnomalyEvent, EventNote, Incident
from .kinds import EVENT_KINDS
from .selectors import event_thumbnails


class EventThumbnailSerializer(serializers.Serializer):
    track = serializers.IntegerField(help_text="The object's track number in the event.")
    label = serializers.CharField(help_text="What the object is (person, bicycle, car...).")
    url = serializers.URLField(help_text="Absolute URL of its thumbnail (JPEG): "
                                         "GET /api/v1/events/{id}/objects/{track}/thumbnail/ with the JWT.")


class EventOutputSerializer(serializers.ModelSerializer):
    camera_name = serializers.CharField(source="camera.name", read_only=True)
    acknowledged_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    resolved_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    snapshot = serializers.SerializerMethodField(
        help_text="The operator page's snapshot address (relative, session sign-in); null without a snapshot. "
                  "Clients with a JWT use snapshot_url.")
    clip = serializers.SerializerMethodField(
        help_text="The operator page's clip address (relative, session sign-in); null without a clip. "
                  "Clients with a JWT use clip_url.")
    snapshot_url = serializers.SerializerMethodField(
        help_text="Absolute URL of the snapshot (JPEG) in the API, for a JWT (Authorization: Bearer): "
                  "GET /api/v1/events/{id}/snapshot/. Null without a snapshot.")
    clip_url = serializers.SerializerMethodField(
        help_text="Absolute URL of the clip (H.264 MP4; VP8 WebM for older events) in the API, for a JWT; answers "
                  "byte ranges (206): "
                  "GET /api/v1/events/{id}/clip/. Null without a clip (or before the event ended).")
    thumbnails = serializers.SerializerMethodField(
        help_text="The objects seen that have a thumbnail, each with the absolute API URL of its JPEG.")
    labels = serializers.ListField(source="label_list", child=serializers.CharField(), read_only=True,
                                   help_text="Object labels seen in the event (person, bicycle, car...).")

    class Meta:
        model = AnomalyEvent
        fields = (
            "id", "camera", "camera_name", "started_at", "ended_at", "peak_score", "mean_score", "severity",
            "status", "description", "decision", "snapshot", "clip", "snapshot_url", "clip_url", "thumbnails",
            "labels", "details", "incident", "keep", "acknowledged_by", "acknowledged_at",
            "resolved_by", "resolved_at", "created_at", "updated_at",
        )
        read_only_fields = fields
        extra_kwargs = {"incident": {"help_text": "The incident of the camera's area the event belongs to "
                                                  "(GET /api/v1/incidents/{id}/); null when none."}}

    def get_snapshot(self, event) -> str | None:
        return reverse("event-snapshot", args=[event.pk]) if event.snapshot else None

    def get_clip(self, event) -> str | None:
        return reverse(event.clip_url_name, args=[event.pk]) if event.clip else None

    def _api_events(self) -> str:
        """The absolute URL of /api/v1/events/, once per serializer: the request's host, else SITE_URL
        (events pushed over the WebSocket, alert payloads)."""
        base = getattr(self, "_api_events_base", None)
        if base is None:
            path = reverse("event-list")
            request = self.context.get("request")
            if request is not None:
                base = request.build_absolute_uri(path)
            else:
                base = settings.SITE_URL.rstrip("/") + "/" + path[len(get_script_prefix()):]
            self._api_events_base = base
        return base

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_snapshot_url(self, event) -> str | None:
        return f"{self._api_events()}{event.pk}/snapshot/" if event.snapshot else None

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_clip_url(self, event) -> str | None:
        return f"{self._api_events()}{event.pk}/clip/" if event.clip else None

    @extend_schema_field(EventThumbnailSerializer(many=True))
    def get_thumbnails(self, event) -> list[dict]:
        base = self._api_events()
        return [{"track": t["track"], "label": t["label"], "url": f"{base}{event.pk}/objects/{t['track']}/thumbnail/"}
                for t in event_thumbnails(event).values()]

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
            "snapshot_url": self.get_snapshot_url(event), "clip_url": self.get_clip_url(event),
            "thumbnails": self.get_thumbnails(event),
            "labels": event.label_list, "details": event.details, "incident": event.incident_id, "keep": event.keep,
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
    kind = serializers.ChoiceField(choices=list(EVENT_KINDS.items()), required=False,
                                   help_text="scene: anomalies in the scene; camera_health: the camera covered, "
                                             "blurred, moved, frozen, dark or blinded; camera_offline.")

    def validate(self, attrs):
        if attrs.get("since") and attrs.get("until") and attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": "Must be later than 'since'."})
        return attrs


def _note_field(help_text):
    return serializers.CharField(required=False, allow_blank=True, max_length=EventNote.MAX_LENGTH, default="",
                                 help_text=help_text)


class EventResolveInputSerializer(serializers.Serializer):
    false_alarm = serializers.BooleanField(
        default=False, help_text="true: a false alarm (the camera's detector learns from it). On a closed event "
                                 "this reclassifies it: resolved <-> false alarm.")
    note = _note_field(f"Optional: a note stored with the change (at most {EventNote.MAX_LENGTH} characters).")


class EventReopenInputSerializer(serializers.Serializer):
    note = _note_field(f"Optional: why it is reopened, stored as a note (at most {EventNote.MAX_LENGTH} characters).")


class EventNoteInputSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=EventNote.MAX_LENGTH, help_text=(
        f"What the operator has to say (trimmed; 1 to {EventNote.MAX_LENGTH} characters)."))


class EventNoteOutputSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author_name", read_only=True,
                                   help_text="The username of who wrote it (kept if the account is deleted).")

    class Meta:
        model = EventNote
        fields = ("id", "event", "author", "text", "created_at")
        read_only_fields = fields


class IncidentAreaSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class IncidentOutputSerializer(serializers.Serializer):
    """An incident as ``events.selectors.incident_for_user`` gives it: what the user may see of it."""

    id = serializers.IntegerField(source="incident.pk")
    area = IncidentAreaSerializer(help_text="The area whose cameras' events it groups.")
    opened_at = serializers.DateTimeField(source="incident.opened_at", help_text="When its first event started.")
    last_event_at = serializers.DateTimeField(source="incident.last_event_at",
                                              help_text="When its latest event started.")
    closes_at = serializers.DateTimeField(source="incident.closes_at", help_text=(
        "last_event_at plus the area's incident window: an event of the area starting later opens a new incident."))
    state = serializers.ChoiceField(source="incident.state", choices=Incident.State.choices,
                                    help_text="open until closes_at, then closed.")
    severity = serializers.ChoiceField(choices=AnomalyEvent.Severity.choices,
                                       help_text="The highest severity of the events listed.")
    event_count = serializers.IntegerField(help_text="How many events are listed (those of cameras you may view).")
    events = EventOutputSerializer(many=True, help_text="Its events of cameras you may view, oldest first.")
