from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RuntimeConfig(AppConfig):
    name = "runtime"
    verbose_name = _("Inference runtime")

    def ready(self):
        from . import signals  # noqa: F401  (connects the Celery worker start and shutdown hooks)
