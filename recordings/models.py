"""Recorded footage: one row per finished segment file, and what retention deleted and why."""

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Segment(models.Model):
    """One finished segment of a camera's recording (about RECORDING_SEGMENT_SECONDS long).

    Written by the inference worker (``services.segment_index``) once ffmpeg has closed the file; the
    file is ``path`` under the folder of ``tier`` (``storage.tier_root``).
    """

    class Tier(models.TextChoices):
        FAST = "fast", _("Fast")
        ARCHIVE = "archive", _("Archive")

    camera = models.ForeignKey("cameras.Camera", on_delete=models.CASCADE, related_name="segments")
    start = models.DateTimeField()
    end = models.DateTimeField()
    path = models.CharField(max_length=500, help_text=_("The file, relative to its tier's folder."))
    size = models.BigIntegerField(default=0, help_text=_("Bytes."))
    tier = models.CharField(max_length=10, choices=Tier.choices, default=Tier.FAST)
    mode = models.CharField(max_length=12, default="continuous",
                            help_text=_("The camera's record mode when it was recorded (decides its retention)."))
    codec = models.CharField(max_length=20, blank=True, default="")
    encoded = models.BooleanField(default=False, help_text=_("Encoded from decoded frames (else copied)."))
    has_motion = models.BooleanField(default=False, help_text=_("The detector saw motion in it."))
    has_objects = models.BooleanField(default=False, help_text=_("The object detector saw objects in it."))
    has_event = models.BooleanField(default=False, help_text=_("An event overlapped it when it was indexed."))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("recording segment")
        verbose_name_plural = _("recording segments")
        ordering = ["camera", "start"]
        indexes = [models.Index(fields=["camera", "start"]), models.Index(fields=["tier", "start"]),
                   models.Index(fields=["start"])]
        constraints = [models.UniqueConstraint(fields=["tier", "path"], name="recording_segment_file")]

    def __str__(self):
        return f"{self.camera_id} {self.start:%Y-%m-%d %H:%M:%S}"

    @property
    def duration(self) -> float:
        return (self.end - self.start).total_seconds()


class DeletionCount(models.Model):
    """What retention deleted, per reason: segments and bytes (for the admin and /metrics)."""
    class Meta:
        verbose_name = _("deletion count")
        verbose_name_plural = _("deletion counts")


    class Reason(models.TextChoices):
        AGE = "age", _("Older than its mode's retention")
        NO_MOTION = "no_motion", _("No motion (motion mode)")
        NO_EVENT = "no_event", _("No event (events mode)")
        SIZE = "size", _("Folder over its size cap")
        FREE_SPACE = "free_space", _("Disk under its free-space floor")

    reason = models.CharField(max_length=20, choices=Reason.choices, unique=True)
    segments = models.BigIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.reason}: {self.segments}"


class Export(models.Model):
    """A time range of one or several cameras exported to one MP4 per camera (``services.export_run``, a Celery
    task on the default queue). ``files`` lists what was written under RECORDING_EXPORT_DIR/<id>/; the row and
    its files go at ``expires_at`` (``services.exports_expire``, beat)."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recording_exports",
                             help_text=_("Who asked for it: only they see its progress."))
    cameras = models.ManyToManyField("cameras.Camera", related_name="recording_exports")
    since = models.DateTimeField()
    until = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0, help_text=_("0 to 1."))
    message = models.TextField(blank=True, default="")
    files = models.JSONField(default=list, blank=True, help_text=_(
        "One entry per camera with footage: camera, name (under the export's folder), size, duration, copied."))
    size = models.BigIntegerField(default=0, help_text=_("Bytes, all files together."))
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("recording export")
        verbose_name_plural = _("recording exports")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["expires_at"]), models.Index(fields=["user", "status"])]

    def __str__(self):
        return f"{self.pk} {self.status}"

    def file_for(self, camera_id: int) -> dict | None:
        return next((f for f in self.files or [] if f.get("camera") == int(camera_id)), None)
