from django.urls import path

from . import apis

urlpatterns = [
    path("events/", apis.EventListApi.as_view(), name="event-list"),
    path("events/<uuid:event_id>/", apis.EventDetailApi.as_view(), name="event-detail"),
    path("events/<uuid:event_id>/acknowledge/", apis.EventAcknowledgeApi.as_view(), name="event-acknowledge"),
    path("events/<uuid:event_id>/keep/", apis.EventKeepApi.as_view(), name="event-keep"),
    path("events/<uuid:event_id>/resolve/", apis.EventResolveApi.as_view(), name="event-resolve"),
    path("events/<uuid:event_id>/reopen/", apis.EventReopenApi.as_view(), name="event-reopen"),
    path("events/<uuid:event_id>/notes/", apis.EventNotesApi.as_view(), name="event-notes"),
    path("events/<uuid:event_id>/snapshot/", apis.EventSnapshotApi.as_view(), name="api-event-snapshot"),
    path("events/<uuid:event_id>/clip/", apis.EventClipApi.as_view(), name="api-event-clip"),
    path("events/<uuid:event_id>/objects/<int:track>/thumbnail/", apis.EventThumbnailApi.as_view(),
         name="api-event-thumbnail"),
    path("incidents/<int:incident_id>/", apis.IncidentDetailApi.as_view(), name="incident-detail"),
    path("cameras/<int:camera_id>/scores/", apis.CameraScoreHistoryApi.as_view(), name="camera-scores"),
]
