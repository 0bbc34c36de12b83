"""Every beat schedule, defined here once and stored in the database (django-celery-beat).

``ensure_beat_schedules()`` creates missing entries and leaves existing ones alone, so an
administrator's changes in the admin survive restarts.
"""

from django.conf import settings


def beat_schedules() -> dict[str, dict]:
    return {
        "cameras-redispatch": {
            "task": "cameras.tasks.cameras_redispatch",
            "every": settings.CAMERA_REDISPATCH_SECONDS,
        },
        "alerts-digest": {
            "task": "alerts.tasks.alerts_digest",
            "every": settings.ALERT_DIGEST_SECONDS,
        },
        "alerts-escalation": {
            "task": "alerts.tasks.alerts_escalation",
            "every": settings.ALERT_ESCALATION_CHECK_SECONDS,
        },
        "events-clips-retention": {
            "task": "events.tasks.events_clips_retention",
            "every": settings.CLIP_RETENTION_CHECK_SECONDS,
        },
        "events-close-stale": {
            "task": "events.tasks.events_close_stale",
            "every": settings.EVENT_STALE_CHECK_SECONDS,
        },
        "recordings-retention": {
            "task": "recordings.tasks.recordings_retention",
            "every": settings.RECORDING_RETENTION_CHECK_SECONDS,
        },
        "recordings-exports-expire": {
            "task": "recordings.tasks.recordings_exports_expire",
            "every": settings.RECORDING_EXPORT_CLEANUP_SECONDS,
        },
        "events-score-history-prune": {
            "task": "events.tasks.events_score_history_prune",
            "every": settings.SCORE_HISTORY_PRUNE_SECONDS,
        },
    }


def ensure_beat_schedules() -> list[str]:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    created = []
    for name, spec in beat_schedules().items():
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        interval, _ = IntervalSchedule.objects.get_or_create(every=spec["every"], period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.create(name=name, task=spec["task"], interval=interval)
        created.append(name)
    return created
