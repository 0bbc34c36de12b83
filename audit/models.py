"""The audit log: who started, stopped, changed, acknowledged or resolved what, and when.

Entries are written only by ``audit.services.audit_record`` (called by the write services of
cameras, events and alerts) and never changed. They name the changed *fields*, never their
values, so no secret (a webhook secret, a camera URL's password) can end up here.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils import timezone


class AuditEntry(models.Model):
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", help_text="Empty for the system, or when the user was deleted.")
    actor_name = models.CharField(max_length=150, blank=True, default="",
                                  help_text="The actor's username when it acted (kept if the user is deleted).")
    action = models.CharField(max_length=64, db_index=True, help_text='What was done, e.g. "camera.start".')
    target_type = models.CharField(max_length=64, db_index=True, help_text='The kind of object, e.g. "camera".')
    target_id = models.CharField(max_length=64, db_index=True)
    target_repr = models.CharField(max_length=200, blank=True, default="",
                                   help_text="The object as it was named when it was acted on.")
    camera_id = models.IntegerField(null=True, blank=True, db_index=True,
                                    help_text="The camera concerned (kept after the camera is deleted).")
    changes = models.JSONField(default=list, blank=True, help_text="Names of the fields changed (never values).")
    details = models.JSONField(default=dict, blank=True, help_text="Small non-secret facts, e.g. false_alarm.")

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        ordering = ("-at", "-id")
        indexes = [models.Index(fields=["target_type", "target_id", "at"], name="audit_target_at")]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or 'system'} {self.action} {self.target_repr}"
