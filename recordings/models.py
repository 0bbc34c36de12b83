"""Recorded footage: one row per finished segment file, and what retention deleted and why."""

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
    has_motion = models.BooleanField(default=False, help_text=_("The detector saw motion or objects in it."))
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
