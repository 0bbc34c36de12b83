from rest_framework import serializers

from inference.sources import mask_credentials

from .models import Camera

CONFIG_FIELDS = (
    "name", "source_url", "analysis_fps", "stream_fps", "detector", "detector_params", "zones", "threshold",
    "event_close_seconds", "vlm_backend", "vlm_model_path", "vlm_prompt", "agent_policy", "agent_params",
)
LIVE_FIELDS = ("enabled", "state", "state_changed_at", "last_frame_at", "measured_fps", "last_error", "heartbeat_at")


class CameraInputSerializer(serializers.ModelSerializer):
    """Validates input against the model's own field validators (URL scheme, backend names...)."""

    class Meta:
        model = Camera
        fields = CONFIG_FIELDS + ("enabled",)


class CameraOutputSerializer(serializers.ModelSerializer):
    """``source_url`` keeps its password only for users who may change the camera.

    The view passes ``context["changeable"]``: the ids of the cameras the user may change.
    """

    source_url = serializers.SerializerMethodField()

    def get_source_url(self, camera) -> str:
        if camera.pk in self.context.get("changeable", ()):
            return camera.source_url
        return mask_credentials(camera.source_url)

    class Meta:
        model = Camera
        fields = ("id",) + CONFIG_FIELDS + LIVE_FIELDS + ("created_at", "updated_at")
        read_only_fields = fields


class CameraStatusSerializer(serializers.ModelSerializer):
    class Meta:
        model = Camera
        fields = ("id", "name") + LIVE_FIELDS
        read_only_fields = fields
