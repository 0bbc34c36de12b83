from django.core.files.uploadedfile import UploadedFile
from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from inference.openai_chat import mask_secrets
from inference.source_urls import mask_credentials

from .models import MAX_INCIDENT_WINDOW_SECONDS, Area, Camera, DetectorVersion, LearningJob
from .selectors import area_get_for_user

CONFIG_FIELDS = (
    "name", "source_url", "analysis_fps", "stream_fps", "detector", "detector_params", "zones", "threshold",
    "event_close_seconds", "vlm_backend", "vlm_model_path", "vlm_params", "vlm_prompt", "agent_policy",
    "agent_params", "health_params", "record_mode",
)
LIVE_FIELDS = ("enabled", "state", "state_changed_at", "last_frame_at", "measured_fps", "last_error", "heartbeat_at")


class JSONValueField(serializers.JSONField):
    """A model JSONField's input: null only where the column allows it, in JSON and in a form.

    DRF refuses a JSON ``null`` for a non-null field, but a form (multipart or urlencoded) carries
    the field's JSON text and DRF parses ``"null"`` after that check: ``zones=null`` reached the
    database (IntegrityError). In a form the value must be the JSON text (``[]``, ``{}``...), not
    blank and not a file; each refusal is a 400 naming the field.
    """

    default_error_messages = {
        "null": "May not be null: give the JSON value ([] or {{}} for none).",
        "invalid": "Must be valid JSON (in a form: the field's JSON text, such as [] or {{}}).",
        "file": "Must be JSON text, not a file.",
    }

    def get_value(self, dictionary):
        value = super().get_value(dictionary)
        if isinstance(dictionary.get(self.field_name), UploadedFile):
            return _FileGiven()
        return value

    def to_internal_value(self, data):
        if isinstance(data, _FileGiven):
            self.fail("file")
        value = super().to_internal_value(data)
        if value is None and not self.allow_null:
            self.fail("null")
        return value


class _FileGiven:
    """A file where a JSON field's text was expected (multipart)."""


class CameraInputSerializer(serializers.ModelSerializer):
    """Validates input against the model's own field validators (URL scheme, backend names...)."""

    serializer_field_mapping = {**serializers.ModelSerializer.serializer_field_mapping,
                                models.JSONField: JSONValueField}
    area = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2**63 - 1,
        help_text="The area the camera belongs to (GET /api/v1/areas/: one you may see), or null for none.")

    class Meta:
        model = Camera
        fields = CONFIG_FIELDS + ("enabled", "area")

    def validate_area(self, value) -> Area | None:
        """An area the user may see (``context["user"]``): any for staff, else one holding a camera they may
        view. Any other id is answered as if it did not exist."""
        if value is None:
            return None
        area = area_get_for_user(self.context.get("user"), value)
        if area is None:
            raise serializers.ValidationError(f"No area with id {value}.")
        return area


class CameraOutputSerializer(serializers.ModelSerializer):
    """``source_url`` keeps its password only for users who may change the camera.

    The view passes ``context["changeable"]``: the ids of the cameras the user may change.
    """

    source_url = serializers.SerializerMethodField()
    vlm_params = serializers.SerializerMethodField(
        help_text="The \"openai\" VLM backend's server parameters; an api_key reads *** (send it back so to keep it).")
    agent_params = serializers.SerializerMethodField(
        help_text="The agent policy's parameters; a model server's api_key reads ***.")

    def get_source_url(self, camera) -> str:
        if camera.pk in self.context.get("changeable", ()):
            return camera.source_url
        return mask_credentials(camera.source_url)

    def get_vlm_params(self, camera) -> dict:
        return mask_secrets(camera.vlm_params)

    def get_agent_params(self, camera) -> dict:
        return mask_secrets(camera.agent_params)

    class Meta:
        model = Camera
        fields = ("id",) + CONFIG_FIELDS + ("area",) + LIVE_FIELDS + ("created_at", "updated_at")
        read_only_fields = fields


# -- areas -------------------------------------------------------------------------------------------------
class AreaInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    incident_window_seconds = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_INCIDENT_WINDOW_SECONDS,
        help_text="Events of the area's cameras that start within this many seconds of an incident's events "
                  "join it (default: the INCIDENT_WINDOW_SECONDS setting).")


class AreaOutputSerializer(serializers.ModelSerializer):
    """The view passes ``context["cameras"]``: {area id: the ids of its cameras the user may view}."""

    cameras = serializers.SerializerMethodField(help_text="The area's cameras you may view, by id.")

    def get_cameras(self, area) -> list[int]:
        return self.context.get("cameras", {}).get(area.pk, [])

    class Meta:
        model = Area
        fields = ("id", "name", "description", "incident_window_seconds", "cameras", "created_at", "updated_at")
        read_only_fields = fields


class TrackedObjectSerializer(serializers.Serializer):
    track = serializers.IntegerField(help_text="The tracker's id of the object (stable while it is followed).")
    label = serializers.CharField(help_text="What it is: person, bicycle, car...")
    confidence = serializers.FloatField()
    box = serializers.ListField(child=serializers.FloatField(), min_length=4, max_length=4,
                                help_text="x1, y1, x2, y2 as fractions of the frame's width and height.")
    since = serializers.FloatField(help_text="When it was first seen (Unix time, seconds).")


class CameraStatusSerializer(serializers.ModelSerializer):
    objects = serializers.SerializerMethodField(help_text="The objects the worker follows in view now.")

    class Meta:
        model = Camera
        fields = ("id", "name") + LIVE_FIELDS + ("objects",)
        read_only_fields = fields

    @extend_schema_field(TrackedObjectSerializer(many=True))
    def get_objects(self, camera) -> list:
        return self.context.get("objects", [])


# -- learning what is normal ------------------------------------------------------------------------------
class LearnInputSerializer(serializers.Serializer):
    """JSON ``{"minutes": N}``, or multipart with one or more ``clips`` files. Ranges and caps are checked
    by the service (settings LEARN_*)."""

    minutes = serializers.FloatField(required=False, help_text="Minutes of the camera's own footage to learn from.")
    clips = serializers.ListField(child=serializers.FileField(), required=False, allow_empty=False,
                                  help_text="Normal footage of this camera (multipart), each a video OpenCV reads.")
    mode = serializers.ChoiceField(choices=LearningJob.Mode.choices, default=LearningJob.Mode.FRESH,
                                   help_text="fresh: learn anew; refit: refine the active learned state.")


class LearnJsonSerializer(serializers.Serializer):
    """The JSON form of the learn request (for the schema)."""

    minutes = serializers.FloatField()
    mode = serializers.ChoiceField(choices=LearningJob.Mode.choices, default=LearningJob.Mode.FRESH)


class LearnUploadSerializer(serializers.Serializer):
    """The multipart form of the learn request (for the schema)."""

    clips = serializers.ListField(child=serializers.FileField())
    mode = serializers.ChoiceField(choices=LearningJob.Mode.choices, default=LearningJob.Mode.FRESH)


class DetectorVersionSerializer(serializers.ModelSerializer):
    """The view passes ``context["active_id"]``: the camera's active version."""

    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    based_on = serializers.SlugRelatedField(slug_field="number", read_only=True, allow_null=True)
    active = serializers.SerializerMethodField()

    def get_active(self, version) -> bool:
        return version.pk == self.context.get("active_id")

    class Meta:
        model = DetectorVersion
        fields = ("number", "detector", "params", "source", "based_on", "frames", "note", "created_by", "created_at",
                  "active")
        read_only_fields = fields


class LearningJobSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    version = serializers.SlugRelatedField(slug_field="number", read_only=True, allow_null=True)
    clips = serializers.SerializerMethodField()

    def get_clips(self, job) -> list[str]:
        """The uploaded clips' names (not where the server kept them)."""
        return [name.rsplit("/", 1)[-1].split("-", 1)[-1] for name in job.clips or []]

    class Meta:
        model = LearningJob
        fields = ("id", "camera", "kind", "mode", "minutes", "clips", "event", "status", "progress", "message",
                  "version", "created_by", "created_at", "started_at", "finished_at")
        read_only_fields = fields
