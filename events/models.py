import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.urls import reverse
from django.utils import timezone

from .describe import event_sentence
from .kinds import event_kind
from .severity import SEVERITIES


class AnomalyEvent(models.Model):
    """One anomaly episode of one camera: opened when the score crosses the threshold."""

    class Severity(models.TextChoices):
        LOW = "low"
        MEDIUM = "medium"
        HIGH = "high"
        CRITICAL = "critical"

    class Status(models.TextChoices):
        NEW = "new"
        ACKNOWLEDGED = "acknowledged"
        RESOLVED = "resolved"
        FALSE_ALARM = "false_alarm"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    camera = models.ForeignKey("cameras.Camera", on_delete=models.CASCADE, related_name="events")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    peak_score = models.FloatField(default=0)
    mean_score = models.FloatField(default=0)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.LOW)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    description = models.TextField(blank=True, default="")
    decision = models.JSONField(default=dict, blank=True)
    snapshot = models.ImageField(upload_to="events/snapshots/", blank=True, default="")
    #: A few seconds before the episode until it ended (capped): H.264 MP4 written by the worker (VP8 WebM for
    #: events stored before, or where the worker has no ffmpeg).
    clip = models.FileField(upload_to="events/clips/", blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    #: Kept as evidence by an operator: retention never deletes its clip, snapshot or recorded footage.
    keep = models.BooleanField(default=False, help_text=_(
        "Kept as evidence: retention never deletes its clip, snapshot or recorded footage."))
    #: Set when the event is stored (events.services): the incident of its camera's area it belongs to.
    incident = models.ForeignKey("Incident", null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    #: The object labels seen in the episode, as ",bicycle,person," (filterable on every database; ``label_list``).
    labels = models.CharField(max_length=300, blank=True, default="")
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    #: Fields the worker writes (insert, then update when the episode closes).
    #: Operator fields (status, acknowledged_*, resolved_*) are never overwritten by it.
    WORKER_FIELDS = (
        "camera_id", "started_at", "ended_at", "peak_score", "mean_score", "severity", "description",
        "decision", "snapshot", "clip", "details", "labels",
    )

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["camera", "-started_at"]),
            models.Index(fields=["-started_at"]),
            models.Index(fields=["severity", "-started_at"]),
            models.Index(fields=["status", "-started_at"]),
        ]

    @property
    def clip_url_name(self) -> str:
        """The page URL of the clip: ``event-clip`` (clip.mp4), or ``event-clip-webm`` for a WebM clip."""
        return "event-clip-webm" if self.clip and self.clip.name.lower().endswith(".webm") else "event-clip"

    def __str__(self):
        return f"{self.severity} on {self.camera_id} at {self.started_at:%Y-%m-%d %H:%M:%S}"

    def get_absolute_url(self):
        """The event's operator page (the admin's "view on site" too)."""
        return reverse("event-page", args=[self.pk])

    @property
    def sentence(self) -> str:
        """What was seen, in one sentence in the active language ("" without objects): events/describe.py."""
        return event_sentence(self.details)

    @property
    def kind(self) -> str:
        """What the event is about: "scene", "camera_health" or "camera_offline" (events/kinds.py)."""
        return event_kind(self.details)

    @property
    def label_list(self) -> list[str]:
        return [label for label in self.labels.split(",") if label]

    @staticmethod
    def labels_field(labels) -> str:
        """The stored form of a list of labels: sorted, unique, between commas; "" for none."""
        clean = sorted({str(x).strip().lower()[:40] for x in labels or () if str(x).strip()} - {""})
        text = "," + ",".join(x.replace(",", " ") for x in clean) + "," if clean else ""
        while len(text) > 300:  # keep whole labels
            clean.pop()
            text = "," + ",".join(clean) + "," if clean else ""
        return text

    @property
    def is_open(self) -> bool:
        return self.ended_at is None

    #: Open cases (being handled) and closed ones (resolved, or a false alarm).
    OPEN_STATUSES = (Status.NEW, Status.ACKNOWLEDGED)
    CLOSED_STATUSES = (Status.RESOLVED, Status.FALSE_ALARM)

    @property
    def is_closed(self) -> bool:
        return self.status in self.CLOSED_STATUSES

    def can_transition_to(self, status: str, *, reopen: bool = False) -> bool:
        """Single-row rule of the operators' workflow (events/services.py):

        * acknowledge: new -> acknowledged (a closed case is not re-acknowledged: it is reopened);
        * resolve / false alarm: from an open case, or reclassifying a closed one (resolved <-> false alarm);
        * reopen (``reopen=True``): a closed case goes back to acknowledged (someone already looked at it:
          it is not announced again as new).
        """
        if reopen:
            return status == self.Status.ACKNOWLEDGED and self.status in self.CLOSED_STATUSES
        if status == self.Status.ACKNOWLEDGED:
            return self.status == self.Status.NEW
        if status in self.CLOSED_STATUSES:
            return self.status != status
        return False


assert tuple(AnomalyEvent.Severity.values) == SEVERITIES


class EventNote(models.Model):
    """What an operator wrote about an event (events.services.event_note_add): who, when, what.

    ``author_name`` keeps the writer's username when the account is deleted later.
    """

    #: The longest note, in characters (the API and the page's form say so).
    MAX_LENGTH = 2000

    event = models.ForeignKey(AnomalyEvent, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    author_name = models.CharField(max_length=150, blank=True, default="")
    text = models.TextField(max_length=MAX_LENGTH)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("event note")
        verbose_name_plural = _("event notes")
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["event", "created_at"], name="events_note_event_created")]

    def __str__(self):
        return f"Note by {self.author_name or '?'} on {self.event_id} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class Incident(models.Model):
    """Events of the cameras of one area (``cameras.Area``) that started within the area's window of each other.

    Made and kept up to date by ``events.services.event_records_store`` (``incidents_attach``): an
    event of a camera in an area joins the area's incident whose events started within
    ``incident_window_seconds`` of it, or opens a new one. ``opened_at`` and ``last_event_at`` are
    the first and the latest start of its events, ``severity`` the highest of their severities and
    ``event_count`` how many there are, all recomputed from the events whenever one of them is
    stored. It is open until ``last_event_at`` plus the window has passed (``state``).
    """

    class State(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"

    area = models.ForeignKey("cameras.Area", on_delete=models.CASCADE, related_name="incidents")
    opened_at = models.DateTimeField(help_text="When its first event started.")
    last_event_at = models.DateTimeField(help_text="When its latest event started.")
    severity = models.CharField(max_length=10, choices=AnomalyEvent.Severity.choices,
                                default=AnomalyEvent.Severity.LOW, help_text="The highest of its events'.")
    event_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        ordering = ["-last_event_at", "-id"]
        indexes = [models.Index(fields=["area", "-last_event_at"], name="events_incident_area_last")]

    def __str__(self):
        return f"Incident #{self.pk} in {self.area_id} ({self.severity}, {self.event_count} events)"

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.area.incident_window_seconds)

    @property
    def closes_at(self):
        """When it closes: an event of the area starting later opens a new incident."""
        return self.last_event_at + self.window

    def state_at(self, now=None) -> str:
        return self.State.OPEN if (now or timezone.now()) < self.closes_at else self.State.CLOSED

    @property
    def state(self) -> str:
        return self.state_at()


class ScoreBucket(models.Model):
    """A camera's anomaly scores over one short span (``SCORE_HISTORY_BUCKET_SECONDS``): max, mean, count.

    Written in batches by the inference worker (one insert for all its cameras every few
    seconds), read by the camera page's 24-hour timeline and ``GET /api/v1/cameras/{id}/scores/``,
    and deleted after ``SCORE_HISTORY_DAYS`` by a beat task. A camera that moved between
    workers may have two rows for one span; readers merge them.
    """

    camera = models.ForeignKey("cameras.Camera", on_delete=models.CASCADE, related_name="score_buckets")
    start = models.DateTimeField()
    seconds = models.PositiveIntegerField(default=10)
    max_score = models.FloatField()
    mean_score = models.FloatField()
    count = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["camera", "start"], name="events_score_camera_start")]

    def __str__(self):
        return f"camera {self.camera_id} at {self.start:%Y-%m-%d %H:%M:%S}: max {self.max_score:.3f}"
