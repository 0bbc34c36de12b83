"""Operator pages for cameras."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from events.selectors import event_list_for_user

from .selectors import camera_list_for_user


@login_required
def dashboard(request):
    cameras = list(camera_list_for_user(request.user))
    events = list(event_list_for_user(request.user)[:20])
    return render(request, "cameras/dashboard.html", {"cameras": cameras, "events": events})
