from zoneinfo import available_timezones

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.utils import timezone
from django.utils.html import format_html_join

from .models import User
from .services import signin_lockouts, signin_lockouts_clear


class UserForm(UserChangeForm):
    """The time zone is chosen from the list the server knows, not typed."""

    time_zone = forms.ChoiceField(choices=(), initial="UTC")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [(tz, tz) for tz in sorted(available_timezones())]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = UserForm
    fieldsets = BaseUserAdmin.fieldsets + (
        ("Preferences", {"fields": ("language", "time_zone", "alert_sound")}),
        ("Sign-in", {"fields": ("signin_pauses",)}),
    )
    readonly_fields = ("signin_pauses",)
    actions = ["clear_signin_lockouts"]

    @admin.display(description="sign-in pauses")
    def signin_pauses(self, user):
        """The client addresses this user is paused for after too many failed sign-ins."""
        pauses = signin_lockouts(user.get_username()) if user.pk else {}
        if not pauses:
            return "None"
        now = timezone.now().timestamp()
        return format_html_join(
            ", ", "{} ({} s left)", ((address, max(1, int(until - now))) for address, until in sorted(pauses.items())))

    @admin.action(description="Clear sign-in lockouts")
    def clear_signin_lockouts(self, request, queryset):
        """Forget the failed sign-ins of the selected users from every address: they may sign in at once."""
        cleared = {user.get_username(): signin_lockouts_clear(user=user, by=request.user) for user in queryset}
        paused = sorted(name for name, count in cleared.items() if count)
        message = f"Sign-in lockouts cleared for {len(cleared)} user(s)"
        message += f"; paused until now: {', '.join(paused)}." if paused else "; none was paused."
        self.message_user(request, message, messages.SUCCESS)
