"""The signed-in user's language and time zone, for pages and the times they show.

Runs after AuthenticationMiddleware and LocaleMiddleware: a user with a ``language`` setting
gets it whatever the browser asks for; without one, LocaleMiddleware's choice (this browser's
language cookie, else Accept-Language) stands. Times are shown in ``User.time_zone``.
"""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.utils import timezone, translation


class UserPreferencesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.languages = {code for code, _ in settings.LANGUAGES}

    def __call__(self, request):
        user = getattr(request, "user", None)
        tz = None
        if user is not None and user.is_authenticated:
            if user.language in self.languages:
                translation.activate(user.language)
                request.LANGUAGE_CODE = user.language
            try:
                tz = ZoneInfo(user.time_zone) if user.time_zone else None
            except (ZoneInfoNotFoundError, ValueError):
                tz = None
        if tz is not None:
            timezone.activate(tz)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
