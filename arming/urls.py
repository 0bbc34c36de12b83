from django.urls import path

from . import apis

urlpatterns = [
    path("cameras/<int:camera_id>/arming/", apis.CameraArmingApi.as_view(), name="camera-arming"),
    path("areas/<int:area_id>/arming/", apis.AreaArmingApi.as_view(), name="area-arming"),
]
