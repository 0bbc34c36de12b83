from django.urls import path

from . import apis

urlpatterns = [
    path("cameras/<int:camera_id>/recordings/", apis.CameraRecordingsApi.as_view(), name="camera-recordings"),
    path("recordings/<int:segment_id>/video/", apis.RecordingVideoApi.as_view(), name="recording-video"),
]
