from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """The project's user, custom from the first migration so it can grow safely."""

    language = models.CharField(
        max_length=8, blank=True, default="", help_text="Preferred language (empty: the browser's)."
    )
    time_zone = models.CharField(max_length=64, default="UTC")

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
