"""Reads of the audit log (staff only: the admin checks is_staff; callers elsewhere must too)."""

from django.db.models import QuerySet

from .models import AuditEntry


def audit_entries(*, action: str | None = None, actor=None, target=None, camera_id: int | None = None) -> QuerySet:
    """Entries, newest first, narrowed by action, actor, target object or camera."""
    entries = AuditEntry.objects.select_related("actor")
    if action:
        entries = entries.filter(action=action)
    if actor is not None:
        entries = entries.filter(actor=actor)
    if target is not None:
        entries = entries.filter(target_type=target._meta.model_name, target_id=str(target.pk))
    if camera_id is not None:
        entries = entries.filter(camera_id=camera_id)
    return entries
