from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ArmingConfig(AppConfig):
    name = "arming"
    verbose_name = _("Arming")
    default_auto_field = "django.db.models.BigAutoField"
