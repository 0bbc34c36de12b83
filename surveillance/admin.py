"""Admin additions that read across the apps: each camera's live figures (workers, alerts, viewers).

The camera admin itself is cameras/admin.py; this subclass adds the figures that surveillance/metrics.py
gathers from the workers (Redis), the alerts and the live subscriptions, as /metrics does.
"""

import time

from django import forms
from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule

from cameras.admin import CameraAdmin
from cameras.models import Camera

from .metrics import camera_live_figures, stats_overview
from .schedules import beat_schedules


class CameraFiguresAdmin(CameraAdmin):
    list_display = (*CameraAdmin.list_display[:3], "live_figures_short", *CameraAdmin.list_display[3:])
    readonly_fields = (*CameraAdmin.readonly_fields, "live_figures")
    fieldsets = tuple(
        (name, {**options, "fields": (*options["fields"], "live_figures")}) if name == "Live state" else (name, options)
        for name, options in CameraAdmin.fieldsets
    )

    # -- live figures from the workers (the same as /metrics; docs/metrics.md) --------------------------------
    FIGURES_MAX_AGE = 2.0

    def _figures(self) -> dict:
        """Every camera's figures, read at most every FIGURES_MAX_AGE s (2 queries and 2 Redis calls)."""
        cached = getattr(self, "_figures_cache", None)
        if cached is None or time.monotonic() - cached[0] > self.FIGURES_MAX_AGE:
            cached = (time.monotonic(), {c["id"]: c for c in stats_overview()["cameras"]})
            self._figures_cache = cached
        return cached[1]

    @admin.display(description="Live: fps · lag · detector p95")
    def live_figures_short(self, obj):
        f = self._figures().get(obj.pk) or {}
        if not f.get("worker") or f.get("fps") is None:
            return "—"
        lag = f"{f['lag_s'] * 1000:.0f} ms" if f.get("lag_s") is not None else "—"
        p95 = f"{f['detector_ms_p95']:.1f} ms" if f.get("detector_ms_p95") is not None else "—"
        return f"{f['fps']:.1f} · {lag} · {p95}"

    @admin.display(description="Live figures")
    def live_figures(self, obj):
        if obj.pk is None:
            return "—"
        f = camera_live_figures(camera=obj)
        rows = [("Worker", f.get("worker") or "—"), ("Analysis fps", f.get("fps")), ("Frames", f.get("frames")),
                ("Frame lag (s, last / p95)", f"{f.get('lag_s')} / {f.get('lag_s_p95')}"),
                ("Detector ms (p50 / p95)", f"{f.get('detector_ms_p50')} / {f.get('detector_ms_p95')}"),
                ("Events", f.get("events")), ("Alerts sent / failed", f"{f.get('alerts_sent')} / {f.get('alerts_failed')}"),
                ("Live viewers", f.get("subscribers"))]
        return format_html("<table>{}</table>", format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>", ((k, "—" if v is None else v) for k, v in rows)))


admin.site.unregister(Camera)
admin.site.register(Camera, CameraFiguresAdmin)


# -- the product's maintenance schedules (surveillance/schedules.py), not Celery's machinery ---------------------
class MaintenanceScheduleForm(forms.ModelForm):
    every_seconds = forms.IntegerField(min_value=1, max_value=7 * 24 * 3600, label="Runs every (seconds)")

    class Meta:
        model = PeriodicTask
        fields = ("enabled",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        interval = self.instance.interval if self.instance.pk and self.instance.interval_id else None
        if interval is not None:
            self.fields["every_seconds"].initial = interval.every * _PERIOD_SECONDS.get(interval.period, 1)

    def save(self, commit=True):
        task = super().save(commit=False)
        every = self.cleaned_data["every_seconds"]
        task.interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
        if commit:
            task.save()  # django-celery-beat tells the beat process that its schedule changed
        return task


_PERIOD_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


class MaintenanceScheduleAdmin(admin.ModelAdmin):
    """The product's own maintenance jobs (surveillance/schedules.py: digests, escalation, clip retention...):
    how often each runs and whether it runs. Celery's internal entries and its schedule tables (intervals,
    crontabs, solar and clocked schedules) are not listed: they are machinery, not settings."""

    form = MaintenanceScheduleForm
    list_display = ("name", "task", "runs_every", "enabled", "last_run_at", "total_run_count")
    list_editable = ("enabled",)
    fields = ("name", "task", "every_seconds", "enabled", "last_run_at", "total_run_count")
    readonly_fields = ("name", "task", "last_run_at", "total_run_count")

    def get_queryset(self, request):
        return super().get_queryset(request).filter(name__in=list(beat_schedules())).select_related("interval")

    def has_add_permission(self, request):
        return False  # the product defines its jobs (surveillance/schedules.py)

    def has_delete_permission(self, request, obj=None):
        return False  # a deleted job would come back at the next start: disable it instead

    @admin.display(description="runs every")
    def runs_every(self, task):
        interval = task.interval
        if interval is None:
            return "—"
        seconds = interval.every * _PERIOD_SECONDS.get(interval.period, 1)
        return f"{seconds // 60} min" if seconds % 60 == 0 and seconds >= 60 else f"{seconds} s"


for _model in (ClockedSchedule, CrontabSchedule, IntervalSchedule, SolarSchedule, PeriodicTask):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
admin.site.register(PeriodicTask, MaintenanceScheduleAdmin)
