"""Operator pages and files of events."""

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404

from .selectors import event_get_for_user


@login_required
def event_snapshot(request, event_id):
    """The event's key frame, for users who may view its camera (no public media URLs)."""
    event = event_get_for_user(request.user, event_id)
    if event is None or not event.snapshot:
        raise Http404("No snapshot for that event, or you may not view its camera.")
    try:
        return FileResponse(event.snapshot.open("rb"), content_type="image/jpeg")
    except FileNotFoundError:
        raise Http404("The snapshot file is missing.") from None
