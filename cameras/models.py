from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from inference.addresses import check_host
from inference.agent import check_allowed_actions
from inference.modelfiles import ModelPathNotAllowed, check_model_root
from inference.openai_chat import check_params
from inference.source_urls import validate_source_url as check_source_url
from inference.zone_specs import validate_zones as check_zones
from siteconfig.selectors import WHERE, camera_networks, model_server_networks, site_settings

from .backends import backend_names, make_detector, resolve
from .zone_text import zone_error_text


def validate_source_url(value: str) -> None:
    try:
        check_source_url(value, allowed_networks=camera_networks(), file_roots=settings.CAMERA_FILE_ROOTS,
                         networks_where=WHERE["camera"])
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc


def _check_registered(value: str, kind: str, what: str) -> None:
    names = backend_names(kind)
    if value not in names:
        raise ValidationError(f"Unknown {what} '{value}'. Choose one of: {', '.join(sorted(names))}.")


def validate_detector(value: str) -> None:
    _check_registered(value, "detector", "detector")


def validate_health_params(value) -> None:
    """A JSON object: ``enabled`` (true or false) and the health monitor's parameters
    (inference/camera_health.py HEALTH_DEFAULTS), each checked as the worker will use it."""
    validate_json_object(value)
    params = dict(value)
    enabled = params.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise ValidationError("'enabled' must be true or false.")
    # Imported here: it loads OpenCV, which a web process needs only when a camera's settings are checked.
    from inference.camera_health import CameraHealth

    try:
        CameraHealth(**params)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def validate_vlm_backend(value: str) -> None:
    _check_registered(value, "vlm", "VLM backend")


def validate_agent_policy(value: str) -> None:
    _check_registered(value, "agent", "agent policy")


def validate_json_object(value) -> None:
    if not isinstance(value, dict):
        raise ValidationError("Must be a JSON object.")


#: Keys of a camera's detector and agent parameters that name a model folder (at any depth: the fused
#: detector's "semantic" holds the semantic detector's own parameters).
MODEL_PATH_KEYS = ("model_path", "model_dir")


def validate_model_path(value) -> None:
    """A model folder must be an absolute path in one of ``MODEL_ROOTS`` (symlinks and ``..`` resolved).

    Nothing on disk is looked at beyond resolving the path (the folder is on the workers' disks, checked
    again before each load), and the message for a path outside the roots is the same whether it exists.
    """
    if value in ("", None):
        return
    try:
        check_model_root(value, settings.MODEL_ROOTS, "model folder")
    except ModelPathNotAllowed as exc:
        raise ValidationError(str(exc)) from None


def validate_model_paths_in(value) -> None:
    """Every model folder named in a JSON object of parameters (``model_path``, ``model_dir``, nested)."""
    problems = []

    def walk(node, where):
        if isinstance(node, dict):
            for key, item in node.items():
                here = f"{where}.{key}" if where else str(key)
                if key in MODEL_PATH_KEYS and item not in ("", None):
                    if not isinstance(item, str):
                        problems.append(f"{here}: a model folder must be given as a string path")
                        continue
                    try:
                        check_model_root(item, settings.MODEL_ROOTS, here)
                    except ModelPathNotAllowed as exc:
                        problems.append(str(exc))
                else:
                    walk(item, here)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{where}[{i}]")

    walk(value, "")
    if problems:
        raise ValidationError(problems)


def validate_zones(value) -> None:
    try:
        check_zones(value)
    except ValueError as exc:
        raise ValidationError(zone_error_text(exc)) from exc  # in the reader's language


def default_analysis_fps():
    return settings.CAMERA_DEFAULTS["analysis_fps"]


def default_stream_fps():
    return settings.CAMERA_DEFAULTS["stream_fps"]


def default_threshold():
    return settings.CAMERA_DEFAULTS["threshold"]


def default_detector():
    return settings.CAMERA_DEFAULTS["detector"]


def default_event_close_seconds():
    return settings.CAMERA_DEFAULTS["event_close_seconds"]


def default_incident_window_seconds():
    return settings.INCIDENT_WINDOW_SECONDS


#: The longest incident window an area may have (a day).
MAX_INCIDENT_WINDOW_SECONDS = 24 * 3600


class Area(models.Model):
    """Cameras a site groups together (a yard, a floor): their events within the window make one incident.

    Events of the area's cameras that start within ``incident_window_seconds`` of the incident's
    events become one ``events.Incident``, with one alert thread per recipient (docs/alerts.md,
    "Incidents"). A camera belongs to at most one area.
    """

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, default="", max_length=2000)
    incident_window_seconds = models.PositiveIntegerField(
        default=default_incident_window_seconds,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_INCIDENT_WINDOW_SECONDS)],
        help_text="Events of the area's cameras that start within this many seconds of the last one of an "
                  "incident join it.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("area")
        verbose_name_plural = _("areas")
        ordering = ["name", "id"]

    def __str__(self):
        return self.name


DEFAULT_VLM_PROMPT = (
    "You are watching a fixed security camera. Describe what is happening in this frame, "
    "especially anything unusual or dangerous."
)


class Camera(models.Model):
    class State(models.TextChoices):
        STOPPED = "stopped"
        STARTING = "starting"
        RUNNING = "running"
        RECONNECTING = "reconnecting"
        ERROR = "error"

    STREAM_FPS_CHOICES = [(1, "1 fps"), (5, "5 fps"), (10, "10 fps"), (30, "30 fps")]

    name = models.CharField(max_length=100)
    source_url = models.CharField(
        max_length=1024,
        validators=[validate_source_url],
        help_text="rtsp://, http(s)://, a file path or file://, device://N, or demo://",
    )
    enabled = models.BooleanField(default=False, help_text="Should be running: set by start, cleared by stop.")
    analysis_fps = models.FloatField(
        default=default_analysis_fps, validators=[MinValueValidator(0.2), MaxValueValidator(30)]
    )
    stream_fps = models.PositiveSmallIntegerField(
        default=default_stream_fps, choices=STREAM_FPS_CHOICES, help_text="Default live frame rate for viewers."
    )
    detector = models.CharField(max_length=50, default=default_detector, validators=[validate_detector])
    detector_params = models.JSONField(default=dict, blank=True, validators=[validate_json_object])
    threshold = models.FloatField(default=default_threshold, validators=[MinValueValidator(0.0001), MaxValueValidator(100)])
    event_close_seconds = models.FloatField(
        default=default_event_close_seconds,
        validators=[MinValueValidator(0), MaxValueValidator(600)],
        help_text="An event closes once the score stays below the threshold this long.",
    )
    zones = models.JSONField(
        default=list, blank=True, validators=[validate_zones],
        help_text="Polygons in frame fractions (0..1): areas to ignore, forbidden areas, loitering areas. "
                  "See docs/detection.md.",
    )
    vlm_backend = models.CharField(max_length=50, default="none", validators=[validate_vlm_backend])
    vlm_model_path = models.CharField(max_length=500, blank=True, default="",
                                      help_text="The local model folder of the \"transformers\" VLM backend.")
    vlm_params = models.JSONField(
        default=dict, blank=True, validators=[validate_json_object],
        help_text="The \"openai\" VLM backend's model server: base_url, model, api_key, timeout, max_image_px, "
                  "max_tokens. Missing keys come from the site's default VLM server (Site settings).")
    vlm_prompt = models.TextField(blank=True, default=DEFAULT_VLM_PROMPT, max_length=4000)
    agent_policy = models.CharField(max_length=50, default="rules", validators=[validate_agent_policy])
    agent_params = models.JSONField(default=dict, blank=True, validators=[validate_json_object])
    health_params = models.JSONField(
        default=dict, blank=True, validators=[validate_health_params],
        help_text="Camera health (tamper: covered, blurred, moved, frozen, dark, blinded): on by default; "
                  "{\"enabled\": false} turns it off, other keys tune it (docs/detection.md, \"Camera health\").")
    class RecordMode(models.TextChoices):
        OFF = "off", _("Off")
        CONTINUOUS = "continuous", _("Continuous")
        MOTION = "motion", _("Motion")
        EVENTS = "events", _("Events only")

    record_mode = models.CharField(
        max_length=12, choices=RecordMode.choices, default=RecordMode.OFF,
        help_text=_("Recording: off; continuous; motion (footage with motion or objects is kept); events only "
                    "(footage around events is kept). Each mode has its own retention (docs/recordings.md)."))
    area = models.ForeignKey(
        Area, on_delete=models.SET_NULL, null=True, blank=True, related_name="cameras",
        help_text="The area the camera belongs to: its events and those of the area's other cameras within the "
                  "area's window make one incident.")
    active_detector_version = models.ForeignKey(
        "DetectorVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False,
        help_text="The learned detector state the camera runs with (set by learning and restore).",
    )

    # Live state, written by the worker that runs the camera.
    state = models.CharField(max_length=16, choices=State.choices, default=State.STOPPED)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    last_frame_at = models.DateTimeField(null=True, blank=True)
    measured_fps = models.FloatField(default=0)
    last_error = models.CharField(max_length=500, blank=True, default="")
    worker = models.CharField(max_length=200, blank=True, default="")
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("camera")
        verbose_name_plural = _("cameras")
        ordering = ["name", "id"]
        permissions = [("operate_camera", "Can start/stop the camera and handle its events")]
        indexes = [models.Index(fields=["enabled", "heartbeat_at"])]

    def __str__(self):
        return self.name

    def clean(self):
        if self.vlm_backend not in ("none", "openai") and not self.vlm_model_path:
            raise ValidationError({"vlm_model_path": "A model path is needed for this VLM backend."})
        self._check_model_paths()
        self._check_backend_params()
        self._check_model_servers()

    def _check_model_servers(self):
        """The "openai" backends' parameters, with the site's defaults filled in, name a server (not contacted)
        on a network the site allows for model servers."""
        errors = {}
        for field, backend, what, extra in (("vlm_params", self.vlm_backend, "VLM", ()),
                                            ("agent_params", self.agent_policy, "agent",
                                             ("rules", "allowed_actions"))):
            if backend != "openai":
                continue
            params = self.model_server_params(field)
            try:
                check_params(getattr(self, field), what=what, extra=extra, complete=False)
                check_params(params, what=what, extra=extra)
                check_host(urlsplit(params["base_url"]).hostname or "", model_server_networks(),
                           what=f"{what} model server", where=WHERE["model server"])
            except (ValueError, KeyError) as exc:
                message = str(exc).strip("'")
                if "is required" in message:
                    message += "; or set the site's default server in Site settings"
                errors[field] = message
        if errors:
            raise ValidationError(errors)

    def model_server_params(self, field: str) -> dict:
        """``vlm_params`` or ``agent_params`` over the site's default server (the camera's keys win)."""
        site = site_settings()
        default = site.vlm_server if field == "vlm_params" else site.agent_server
        own = getattr(self, field) if isinstance(getattr(self, field), dict) else {}
        return {**(default if isinstance(default, dict) else {}),
                **{k: v for k, v in own.items() if v not in (None, "")}}

    def _check_model_paths(self):
        """Model folders (``vlm_model_path``, ``model_path``/``model_dir`` in the parameters) lie in MODEL_ROOTS."""
        errors = {}
        for field, check in (("vlm_model_path", validate_model_path), ("detector_params", validate_model_paths_in),
                             ("agent_params", validate_model_paths_in)):
            try:
                check(getattr(self, field))
            except ValidationError as exc:
                errors[field] = exc.messages
        if errors:
            raise ValidationError(errors)

    def _check_backend_params(self):
        """Parameters must be ones the chosen backend accepts (weightless backends are built to check).

        Detectors with models (``needs_pool``: CLIP, the learned network, objects) are not built here:
        that would load a model in the web process on every save; those with ``check_params`` check
        their parameters without it. The worker builds them, and a bad model
        folder shows as the camera's error naming it.
        """
        if isinstance(self.detector_params, dict) and self.detector in backend_names("detector"):
            cls = resolve("detector", self.detector)
            try:
                if hasattr(cls, "check_params"):  # checks without loading its model
                    cls.check_params(**{"threshold": self.threshold, **self.detector_params})
                elif not getattr(cls, "needs_pool", False):
                    make_detector({"detector": self.detector, "detector_params": self.detector_params,
                                   "threshold": self.threshold})
            except (TypeError, ValueError) as exc:
                raise ValidationError({"detector_params": f"Not accepted by '{self.detector}': {exc}"}) from exc
        if isinstance(self.agent_params, dict) and self.agent_policy in ("llm", "openai"):
            try:
                check_allowed_actions(self.agent_params.get("allowed_actions"))
            except ValueError as exc:
                raise ValidationError({"agent_params": str(exc)}) from exc
        if isinstance(self.agent_params, dict) and self.agent_policy == "rules":
            try:
                resolve("agent", "rules")(**self.agent_params)
            except (TypeError, ValueError) as exc:
                raise ValidationError({"agent_params": f"Not accepted by the rule policy: {exc}"}) from exc

    #: Fields whose change makes a running camera restart with the new settings.
    RUNTIME_FIELDS = (
        "source_url", "analysis_fps", "detector", "detector_params", "zones", "threshold", "event_close_seconds",
        "vlm_backend", "vlm_model_path", "vlm_params", "vlm_prompt", "agent_policy", "agent_params",
        "health_params", "record_mode",
    )

    def runtime_config(self) -> dict:
        """The plain settings the inference worker needs (no model instance crosses to it). A model
        server's parameters come with the site's defaults filled in, so a changed default restarts
        the cameras that use it."""
        config = {name: getattr(self, name) for name in self.RUNTIME_FIELDS}
        if self.vlm_backend == "openai":
            config["vlm_params"] = self.model_server_params("vlm_params")
        if self.agent_policy == "openai":
            config["agent_params"] = self.model_server_params("agent_params")
        config["health"] = dict(config.pop("health_params") or {})  # inference.e2e.make_health
        config["id"] = self.pk
        config["name"] = self.name
        config["analysis_width"] = settings.CAMERA_DEFAULTS["analysis_width"]
        state_path = self.active_detector_state_path()
        if state_path:
            config["detector_state_path"] = state_path
        health_path = self.active_health_state_path()
        if health_path:
            config["health"]["state_path"] = health_path
        return config

    def active_detector_state_path(self) -> str:
        """The active learned state's file (absolute) when it is for the camera's detector and present."""
        version = self.active_detector_version if self.active_detector_version_id else None
        if version is None or version.detector != self.detector:
            return ""
        path = version.state_file
        return str(path) if path.is_file() else ""

    def active_health_state_path(self) -> str:
        """The camera health reference learned with the active version (whatever its detector: the
        reference is the camera's picture, not the detector's), when present."""
        version = self.active_detector_version if self.active_detector_version_id else None
        path = version.health_file if version is not None else None
        return str(path) if path is not None and path.is_file() else ""


def health_state_file(state_file) -> Path:
    """Where the camera health reference learned with a detector state lies: ``v3.json`` -> ``v3.health.json``."""
    return Path(state_file).with_suffix(".health.json")


def detector_state_root():
    """Where learned detector states live: ``DATA_DIR/detectors/<camera id>/``."""
    return settings.DATA_DIR / "detectors"


class DetectorVersion(models.Model):
    """One learned state of a camera's detector (a JSON file of ``state_dict()``), numbered per camera.

    State files are written once and never changed; a restore records a new version that
    points at the restored one's file.
    """

    class Source(models.TextChoices):
        LEARN_LIVE = "learn-live", "Learned from the camera's footage"
        UPLOAD = "upload", "Learned from uploaded clips"
        FEEDBACK = "feedback", "Operator feedback (false alarm)"
        RESTORE = "restore", "Restored"

    camera = models.ForeignKey(Camera, on_delete=models.CASCADE, related_name="detector_versions")
    number = models.PositiveIntegerField()
    detector = models.CharField(max_length=50)
    params = models.JSONField(default=dict, blank=True, help_text="The camera's detector parameters when learned.")
    state_path = models.CharField(max_length=500, help_text="The state file, relative to DATA_DIR.")
    source = models.CharField(max_length=16, choices=Source.choices)
    based_on = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                 help_text="The version this one refined or restored.")
    frames = models.PositiveIntegerField(default=0, help_text="Analysis frames learned from.")
    note = models.CharField(max_length=500, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("detector version")
        verbose_name_plural = _("detector versions")
        ordering = ["camera", "-number"]
        constraints = [models.UniqueConstraint(fields=["camera", "number"], name="detector_version_number_per_camera")]

    def __str__(self):
        return f"{self.camera_id} v{self.number} ({self.detector})"

    @property
    def state_file(self):
        return settings.DATA_DIR / self.state_path

    @property
    def health_file(self):
        """The camera health reference learned with this version (inference/camera_health.py), beside
        its state; absent when the camera's health monitor was off or the version came from feedback
        before any was learned."""
        return health_state_file(self.state_file)


class LearningJob(models.Model):
    """A "learn what is normal now" run (live footage or uploaded clips), or an operator's false-alarm feedback."""

    class Kind(models.TextChoices):
        LIVE = "live", "Live footage"
        UPLOAD = "upload", "Uploaded clips"
        FEEDBACK = "feedback", "False-alarm feedback"

    class Mode(models.TextChoices):
        FRESH = "fresh", "Learn afresh"
        REFIT = "refit", "Refine the active version"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    camera = models.ForeignKey(Camera, on_delete=models.CASCADE, related_name="learning_jobs")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.FRESH)
    minutes = models.FloatField(null=True, blank=True, help_text="Live: minutes of the camera's footage.")
    clips = models.JSONField(default=list, blank=True, help_text="Uploads: clip files, relative to DATA_DIR.")
    event = models.ForeignKey("events.AnomalyEvent", on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+", help_text="Feedback: the event marked false alarm.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=500, blank=True, default="")
    version = models.ForeignKey(DetectorVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("learning job")
        verbose_name_plural = _("learning jobs")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["camera", "status"])]

    def __str__(self):
        return f"{self.get_kind_display()} for camera {self.camera_id}: {self.status}"
