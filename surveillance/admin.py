"""Admin additions that read across the apps: each camera's live figures (workers, alerts, viewers).

The camera admin itself is cameras/admin.py; this subclass adds the figures that surveillance/metrics.py
gathers from the workers (Redis), the alerts and the live subscriptions, as /metrics does.
"""

import time

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from cameras.admin import CameraAdmin
from cameras.models import Camera

from .metrics import camera_live_figures, stats_overview


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
