from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self):
        from . import receivers  # noqa: F401  (routes stored events: events.signals.events_stored)
