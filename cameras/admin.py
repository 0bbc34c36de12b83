from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from .models import Camera


@admin.register(Camera)
class CameraAdmin(GuardedModelAdmin):
    list_display = ("name", "enabled", "state", "measured_fps", "last_frame_at", "detector", "vlm_backend", "worker")
    list_filter = ("enabled", "state", "detector", "vlm_backend")
    search_fields = ("name",)
    readonly_fields = (
        "state", "state_changed_at", "last_frame_at", "measured_fps", "last_error", "worker", "heartbeat_at",
        "created_at", "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("name", "source_url", "enabled")}),
        ("Analysis", {"fields": ("analysis_fps", "stream_fps", "detector", "detector_params", "threshold",
                                 "event_close_seconds")}),
        ("Description and decision", {"fields": ("vlm_backend", "vlm_model_path", "vlm_prompt", "agent_policy",
                                                 "agent_params")}),
        ("Live state", {"fields": readonly_fields}),
    )
