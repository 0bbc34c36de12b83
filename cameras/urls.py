from django.urls import path

from . import apis

urlpatterns = [
    path("cameras/", apis.CameraListCreateApi.as_view(), name="camera-list"),
    path("cameras/<int:camera_id>/", apis.CameraDetailApi.as_view(), name="camera-detail"),
    path("cameras/<int:camera_id>/start/", apis.CameraStartApi.as_view(), name="camera-start"),
    path("cameras/<int:camera_id>/stop/", apis.CameraStopApi.as_view(), name="camera-stop"),
    path("cameras/<int:camera_id>/status/", apis.CameraStatusApi.as_view(), name="camera-status"),
]
