from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("cameras/<int:camera_id>/", views.camera_page, name="camera-page"),
    path("events/", views.event_list_page, name="event-list-page"),
    path("events/acknowledge/", views.event_bulk_acknowledge, name="event-bulk-acknowledge"),
    path("events/resolve/", views.event_bulk_resolve, name="event-bulk-resolve"),
    path("events/<uuid:event_id>/", views.event_page, name="event-page"),
    path("events/<uuid:event_id>/acknowledge/", views.event_page_acknowledge, name="event-page-acknowledge"),
    path("events/<uuid:event_id>/keep/", views.event_page_keep, name="event-page-keep"),
    path("events/<uuid:event_id>/resolve/", views.event_page_resolve, name="event-page-resolve"),
    path("events/<uuid:event_id>/reopen/", views.event_page_reopen, name="event-page-reopen"),
    path("events/<uuid:event_id>/notes/", views.event_page_note, name="event-page-note"),
    path("events/<uuid:event_id>/fragment/<slug:kind>/", views.event_fragment, name="event-fragment"),
    path("events/<uuid:event_id>/snapshot.jpg", views.event_snapshot, name="event-snapshot"),
    path("events/<uuid:event_id>/objects/<int:track>.jpg", views.event_object, name="event-object"),
    path("events/<uuid:event_id>/clip.mp4", views.event_clip, name="event-clip"),
    # Clips were VP8 WebM before they were H.264 MP4: the old address keeps working (both serve the file's real type).
    path("events/<uuid:event_id>/clip.webm", views.event_clip, name="event-clip-webm"),
]
