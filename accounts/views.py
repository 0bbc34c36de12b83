"""Session login and logout pages for operators."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.template.response import TemplateResponse

from .services import client_address, login_failed, login_succeeded, login_throttle_wait


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        wait = login_throttle_wait(username=username, address=client_address(request))
        if wait:
            response = TemplateResponse(
                request, self.template_name, {"form": self.get_form(), "throttled": wait}, status=429
            )
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


