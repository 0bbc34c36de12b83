"""Writing the audit log. Called inside the acting service's transaction, so an entry exists
exactly when the action happened."""

from __future__ import annotations

from .models import AuditEntry

#: Fields whose values are secret: their names may be listed in ``changes``, their values never
#: appear anywhere in an entry (``details`` keys with these names are refused).
SECRET_KEYS = frozenset({"secret", "password", "source_url", "url", "token", "email"})


def audit_record(*, actor, action: str, target, changes=None, details=None, camera_id=None) -> AuditEntry:
    """Record that ``actor`` (a user, or None for the system) did ``action`` to ``target`` (a model instance).

    ``changes``: the names of the fields changed. ``details``: small facts that are not secret
    (booleans, numbers, short labels). ``camera_id`` defaults to the target's camera.
    """
    details = dict(details or {})
    leaked = SECRET_KEYS.intersection(details)
    if leaked:
        raise ValueError(f"audit details must not carry secret values ({sorted(leaked)})")
    if camera_id is None:
        camera_id = _camera_id_of(target)
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEntry.objects.create(
        actor=user,
        actor_name=(user.get_username() if user else "")[:150],
        action=action[:64],
        target_type=target._meta.model_name[:64],
        target_id=str(target.pk)[:64],
        target_repr=str(target)[:200],
        camera_id=camera_id,
        changes=sorted(set(changes or ())),
        details=details,
    )


def _camera_id_of(target) -> int | None:
    if target._meta.model_name == "camera":
        return target.pk
    return getattr(target, "camera_id", None)
