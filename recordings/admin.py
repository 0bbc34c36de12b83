from django.contrib import admin

from .models import DeletionCount, Export, Segment


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    """Read-only: the worker indexes segments, retention deletes them (deleting here removes the file)."""

    list_display = ("camera", "start", "end", "size", "tier", "mode", "codec", "has_motion", "has_objects",
                    "has_event")
    list_filter = ("tier", "mode", "has_motion", "has_objects", "has_event", "encoded")
    date_hierarchy = "start"
    list_select_related = ("camera",)
    readonly_fields = [f.name for f in Segment._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DeletionCount)
class DeletionCountAdmin(admin.ModelAdmin):
    list_display = ("reason", "segments", "bytes", "updated_at")
    readonly_fields = ("reason", "segments", "bytes", "updated_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    """Read-only: users ask for exports through the API; deleting one here removes its files."""

    list_display = ("id", "user", "since", "until", "status", "progress", "size", "expires_at", "created_at")
    list_filter = ("status",)
    list_select_related = ("user",)
    readonly_fields = [f.name for f in Export._meta.fields] + ["cameras"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
