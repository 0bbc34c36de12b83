"""The audit log hears what lower apps announce (accounts cannot call audit: it lies below it)."""

from django.dispatch import receiver

from accounts.signals import signin_lockouts_cleared

from .services import audit_record


@receiver(signin_lockouts_cleared)
def _signin_lockouts_cleared(sender, *, user, by, address, cleared, **kwargs):
    audit_record(actor=by, action="user.signin_lockouts_clear", target=user,
                 details={"address": address or "all", "cleared": cleared})
