from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    name = "runtime"
    verbose_name = "Inference runtime"

    def ready(self):
        from . import signals  # noqa: F401  (connects the Celery worker start and shutdown hooks)
