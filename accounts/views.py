"""Session login and logout pages for operators, and their preferences (language, time zone, alert sound)."""

from zoneinfo import available_timezones

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.utils import translation
from django.utils.translation import gettext_lazy

from .selectors import client_address
from .services import (
    login_failed,
    login_succeeded,
    login_throttle_message,
    login_throttle_wait,
    user_update_preferences,
)


class LoginView(auth_views.LoginView):
    """The sign-in page, throttled like the API (``TokenObtainApi``): per user name and client address."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        wait = login_throttle_wait(username=username, address=client_address(request))
        if wait:
            context = self.get_context_data(form=self.get_form(), throttled=wait,
                                            throttled_message=login_throttle_message(wait))
            response = TemplateResponse(request, self.template_name, context, status=429)
            response["Retry-After"] = str(wait)
            return response
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        login_succeeded(username=form.get_user().get_username(), address=client_address(self.request))
        return super().form_valid(form)

    def form_invalid(self, form):
        login_failed(username=self.request.POST.get("username", ""), address=client_address(self.request))
        return super().form_invalid(form)


class LogoutView(auth_views.LogoutView):
    def post(self, request, *args, **kwargs):
        messages.info(request, "You are signed out.")
        return super().post(request, *args, **kwargs)




class PreferencesForm(forms.ModelForm):
    """The user's language (empty: the browser's) and time zone for pages and times, and the alert sound."""

    language = forms.ChoiceField(label=gettext_lazy("Language"), required=False)
    time_zone = forms.ChoiceField(label=gettext_lazy("Time zone"))
    alert_sound = forms.BooleanField(label=gettext_lazy("Play a sound for high and critical alerts"), required=False)

    class Meta:
        model = get_user_model()
        fields = ("language", "time_zone", "alert_sound")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = [("", gettext_lazy("The browser's language"))] + [
            (code, name) for code, name in settings.LANGUAGES]
        self.fields["time_zone"].choices = [(tz, tz) for tz in sorted(available_timezones())]


@login_required
def preferences(request):
    form = PreferencesForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        user = user_update_preferences(user=request.user, language=form.cleaned_data["language"],
                                       time_zone=form.cleaned_data["time_zone"],
                                       alert_sound=form.cleaned_data["alert_sound"])
        translation.activate(user.language or translation.get_language_from_request(request))
        messages.success(request, translation.gettext("Your preferences are saved."))
        return redirect("preferences")
    return render(request, "accounts/preferences.html", {"form": form})
