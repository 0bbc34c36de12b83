from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.urls import reverse
from guardian.admin import GuardedModelAdmin

from siteconfig.forms import secret_params_form

from .backends import backend_names
from .models import Area, Camera, DetectorVersion, LearningJob
from .learning import detector_version_restore
from .services import (
    AREA_FIELDS,
    area_create,
    area_update,
    camera_create,
    camera_delete,
    camera_model_test,
    camera_start,
    camera_stop,
    camera_update,
)
from .widgets import ZonesWidget


@admin.register(Area)
class AreaAdmin(admin.ModelAdmin):
    """Areas: cameras grouped together; their events within the window make one incident (docs/alerts.md)."""

    list_display = ("name", "camera_count", "incident_window_seconds", "description")
    search_fields = ("name", "description")
    fields = AREA_FIELDS

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(camera_count=Count("cameras"))

    @admin.display(description="Cameras", ordering="camera_count")
    def camera_count(self, area):
        return area.camera_count

    def save_model(self, request, obj, form, change):
        """Through the services (audited)."""
        if change:
            area_update(area=Area.objects.get(pk=obj.pk), by=request.user,
                        **{name: form.cleaned_data[name] for name in form.changed_data if name in AREA_FIELDS})
        else:
            obj.pk = area_create(by=request.user, **{name: form.cleaned_data[name] for name in AREA_FIELDS
                                                      if name in form.cleaned_data}).pk


@admin.register(Camera)
class CameraAdmin(GuardedModelAdmin):
    """Cameras, their settings and live state; surveillance/admin.py adds the workers' live figures."""

    form = secret_params_form(Camera, ("vlm_params", "agent_params"))
    #: Fields naming a backend: a choice list of the backends this site knows (cameras/backends.py), not free text.
    BACKEND_FIELDS = {"detector": "detector", "vlm_backend": "vlm", "agent_policy": "agent"}
    list_display = ("name", "area", "enabled", "state", "last_frame_at", "detector", "vlm_backend", "worker")
    list_filter = ("enabled", "state", "area", "detector", "vlm_backend")
    list_select_related = ("area",)
    search_fields = ("name",)
    readonly_fields = (
        "state", "state_changed_at", "last_frame_at", "measured_fps", "last_error", "worker", "heartbeat_at",
        "created_at", "updated_at", "active_detector_version",
    )
    fieldsets = (
        (None, {"fields": ("name", "source_url", "enabled", "area")}),
        ("Analysis", {"fields": ("analysis_fps", "stream_fps", "detector", "detector_params", "zones", "threshold",
                                 "event_close_seconds", "health_params")}),
        ("Description and decision", {"fields": ("vlm_backend", "vlm_model_path", "vlm_params", "vlm_prompt",
                                                 "agent_policy", "agent_params"),
                                      "description": "The \"openai\" backends use a model server (Ollama, llama.cpp "
                                                     "server, vLLM): its parameters, or the site's default server "
                                                     "(Site settings). An API key shows as ***: leave it so to keep it."}),
        ("Recording", {"fields": ("record_mode",),
                       "description": "Footage kept per the mode's retention (docs/recordings.md)."}),
        ("Live state", {"fields": readonly_fields}),
    )
    actions = ["start_cameras", "stop_cameras", "test_vlm", "test_agent"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "zones":  # drawn over the camera's picture; the JSON stays below, as the value
            kwargs["widget"] = ZonesWidget()
        kind = self.BACKEND_FIELDS.get(db_field.name)
        if kind is None:
            return super().formfield_for_dbfield(db_field, request, **kwargs)
        names = list(backend_names(kind))
        return forms.ChoiceField(choices=[(n, n) for n in names], initial=db_field.get_default(),
                                 label=db_field.verbose_name.capitalize(), help_text=db_field.help_text,
                                 required=True)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is not None and "zones" in form.base_fields:  # a class made for this request: its own widget
            form.base_fields["zones"].widget.picture_url = reverse("camera-picture", args=[obj.pk])
        return form

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

    def delete_model(self, request, obj):
        """Through the service too: its learned states go, and the deletion is audited."""
        camera_delete(camera=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for camera in queryset:
            camera_delete(camera=camera, by=request.user)

    def _model_test(self, request, queryset, which):
        for camera in queryset:
            try:
                result = camera_model_test(camera=camera, which=which, by=request.user)
            except ValidationError as exc:
                self.message_user(request, f"{camera}: {' '.join(exc.messages)}", messages.ERROR)
                continue
            said = (f'"{result["summary"]}" (threat {result["threat_level"]})' if which == "vlm"
                    else f'{result["severity"]}, {", ".join(result["actions"])}: {"; ".join(result["reasons"])}')
            if result["ok"]:
                self.message_user(request, f"{camera}: {result['model']} at {result['base_url']} answered in "
                                           f"{result['seconds']:.1f} s: {said}", messages.SUCCESS)
            else:
                self.message_user(request, f"{camera}: no usable answer from {result['model']} at "
                                           f"{result['base_url']} after {result['seconds']:.1f} s: {result['error']}",
                                  messages.ERROR)

    @admin.action(description="Test the VLM server on the current picture", permissions=["change"])
    def test_vlm(self, request, queryset):
        self._model_test(request, queryset, "vlm")

    @admin.action(description="Test the agent server on a sample episode", permissions=["change"])
    def test_agent(self, request, queryset):
        self._model_test(request, queryset, "agent")

    @admin.action(description="Start the selected cameras", permissions=["change"])
    def start_cameras(self, request, queryset):
        for camera in queryset:
            camera_start(camera=camera, by=request.user)

    @admin.action(description="Stop the selected cameras", permissions=["change"])
    def stop_cameras(self, request, queryset):
        for camera in queryset:
            camera_stop(camera=camera, by=request.user)


@admin.register(DetectorVersion)
class DetectorVersionAdmin(admin.ModelAdmin):
    """Learned detector states per camera; "restore" makes one active again (through the service)."""

    list_display = ("camera", "number", "detector", "source", "frames", "is_active", "created_by", "created_at")
    list_filter = ("source", "detector")
    search_fields = ("camera__name", "note")
    list_select_related = ("camera", "created_by")
    readonly_fields = ("camera", "number", "detector", "params", "state_path", "source", "based_on", "frames", "note",
                       "created_by", "created_at")
    actions = ["restore_versions"]

    def has_add_permission(self, request):
        return False  # versions come from learning jobs and restores

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(boolean=True, description="Active")
    def is_active(self, version):
        return version.camera.active_detector_version_id == version.pk

    @admin.action(description="Restore the selected version (makes it the camera's active one)",
                  permissions=["view"])
    def restore_versions(self, request, queryset):
        for version in queryset.select_related("camera"):
            if not (request.user.is_superuser or request.user.has_perm("cameras.operate_camera", version.camera)
                    or request.user.has_perm("cameras.operate_camera")):
                self.message_user(request, f"You may not operate {version.camera}.", messages.ERROR)
                continue
            try:
                restored = detector_version_restore(camera=version.camera, version=version, by=request.user)
            except ValidationError as exc:
                self.message_user(request, f"{version}: {' '.join(exc.messages)}", messages.ERROR)
            else:
                self.message_user(request, f"{version.camera}: version {version.number} restored as "
                                           f"version {restored.number}.", messages.SUCCESS)


@admin.register(LearningJob)
class LearningJobAdmin(admin.ModelAdmin):
    list_display = ("id", "camera", "kind", "mode", "status", "progress", "version", "created_by", "created_at")
    list_filter = ("status", "kind")
    search_fields = ("camera__name", "message")
    list_select_related = ("camera", "version", "created_by")
    readonly_fields = [f.name for f in LearningJob._meta.fields]

    def has_add_permission(self, request):
        return False  # jobs are started from the camera page, the API or a false alarm

    def has_change_permission(self, request, obj=None):
        return False
