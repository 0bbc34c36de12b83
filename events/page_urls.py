from django.urls import path

from . import views

urlpatterns = [
    path("events/<uuid:event_id>/snapshot.jpg", views.event_snapshot, name="event-snapshot"),
]
