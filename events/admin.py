from django.contrib import admin

from .models import AnomalyEvent


@admin.register(AnomalyEvent)
class AnomalyEventAdmin(admin.ModelAdmin):
    list_display = ("started_at", "camera", "severity", "status", "peak_score", "description")
    list_filter = ("severity", "status", "camera")
    date_hierarchy = "started_at"
    list_select_related = ("camera",)
    readonly_fields = [f.name for f in AnomalyEvent._meta.fields]
    search_fields = ("description",)

    def has_add_permission(self, request):
        return False  # events are made by the cameras' workers, never typed in
