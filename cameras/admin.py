from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from .models import Camera
from .services import camera_create, camera_start, camera_stop, camera_update


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
        ("Analysis", {"fields": ("analysis_fps", "stream_fps", "detector", "detector_params", "zones", "threshold",
                                 "event_close_seconds")}),
        ("Description and decision", {"fields": ("vlm_backend", "vlm_model_path", "vlm_prompt", "agent_policy",
                                                 "agent_params")}),
        ("Live state", {"fields": readonly_fields}),
    )
    actions = ["start_cameras", "stop_cameras"]

    def save_model(self, request, obj, form, change):
        """Through the services, so that starting here reaches a worker like the API does."""
        fields = {name: form.cleaned_data[name] for name in form.changed_data if name != "enabled"}
        enabled = form.cleaned_data.get("enabled")
        if not change:
            obj.enabled = False
            camera = camera_create(by=request.user, **{f.name: getattr(obj, f.name) for f in obj._meta.concrete_fields
                                                      if f.name not in ("id", "enabled")})
            obj.pk = camera.pk
        else:
            camera = camera_update(camera=Camera.objects.get(pk=obj.pk), by=request.user, **fields)
        if enabled and not camera.enabled:
            camera_start(camera=camera, by=request.user)
        elif not enabled and camera.enabled:
            camera_stop(camera=camera, by=request.user)

    @admin.action(description="Start the selected cameras", permissions=["change"])
    def start_cameras(self, request, queryset):
        for camera in queryset:
            camera_start(camera=camera, by=request.user)

    @admin.action(description="Stop the selected cameras", permissions=["change"])
    def stop_cameras(self, request, queryset):
        for camera in queryset:
            camera_stop(camera=camera, by=request.user)
