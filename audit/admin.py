from django.contrib import admin

from .models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: entries are written by the services and never edited or deleted here.

    Every staff member may read it (no separate model permission needed)."""

    list_display = ("at", "actor_name", "action", "target_type", "target_repr", "camera_id", "changed_fields")
    list_filter = ("action", "target_type", ("at", admin.DateFieldListFilter))
    search_fields = ("actor_name", "target_repr", "target_id", "action")
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]
    list_select_related = ("actor",)

    @admin.display(description="Changed fields")
    def changed_fields(self, entry):
        return ", ".join(entry.changes or ())

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
