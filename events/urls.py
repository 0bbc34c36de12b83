from django.urls import path

from . import apis

urlpatterns = [
    path("events/", apis.EventListApi.as_view(), name="event-list"),
    path("events/<uuid:event_id>/", apis.EventDetailApi.as_view(), name="event-detail"),
    path("events/<uuid:event_id>/acknowledge/", apis.EventAcknowledgeApi.as_view(), name="event-acknowledge"),
    path("events/<uuid:event_id>/resolve/", apis.EventResolveApi.as_view(), name="event-resolve"),
    path("cameras/<int:camera_id>/scores/", apis.CameraScoreHistoryApi.as_view(), name="camera-scores"),
]
