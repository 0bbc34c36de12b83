from django.contrib import admin

from .models import AnomalyEvent, EventNote


class EventNoteInline(admin.TabularInline):
    """The operators' notes, read-only: they are written on the event page or through the API (audited)."""

    model = EventNote
    fields = ("created_at", "author_name", "text")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(AnomalyEvent)
class AnomalyEventAdmin(admin.ModelAdmin):
    list_display = ("started_at", "camera", "severity", "status", "peak_score", "description")
    list_filter = ("severity", "status", "camera")
    date_hierarchy = "started_at"
    list_select_related = ("camera",)
    readonly_fields = [f.name for f in AnomalyEvent._meta.fields]
    search_fields = ("description",)
    inlines = [EventNoteInline]

    def has_add_permission(self, request):
        return False  # events are made by the cameras' workers, never typed in


@admin.register(EventNote)
class EventNoteAdmin(admin.ModelAdmin):
    list_display = ("created_at", "author_name", "event", "text")
    list_select_related = ("event", "event__camera")
    readonly_fields = [f.name for f in EventNote._meta.fields]
    search_fields = ("text", "author_name")
    raw_id_fields = ("event", "author")

    def has_add_permission(self, request):
        return False  # written by operators on the event page or through the API (audited)

    def has_change_permission(self, request, obj=None):
        return False
