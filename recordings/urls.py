from django.urls import path

from . import apis

urlpatterns = [
    path("cameras/<int:camera_id>/recordings/", apis.CameraRecordingsApi.as_view(), name="camera-recordings"),
    path("recordings/<int:segment_id>/video/", apis.RecordingVideoApi.as_view(), name="recording-video"),
    path("exports/", apis.ExportCreateApi.as_view(), name="recording-exports"),
    path("exports/<uuid:export_id>/", apis.ExportDetailApi.as_view(), name="recording-export"),
    path("exports/<uuid:export_id>/files/<int:camera_id>/", apis.ExportFileApi.as_view(), name="recording-export-file"),
]
