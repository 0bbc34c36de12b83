from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """The project's user, custom from the first migration so it can grow safely."""

    language = models.CharField(
        max_length=8, blank=True, default="", help_text="Preferred language (empty: the browser's)."
    )
    time_zone = models.CharField(max_length=64, default="UTC")
    alert_sound = models.BooleanField(
        default=True, help_text="Play a sound on open pages for high and critical in-app alerts (docs/alerts.md)."
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
