"""Camera actions; the dashboard and the camera page are routed by events/page_urls.py."""

from django.urls import path

from . import views

urlpatterns = [
    path("cameras/<int:camera_id>/start/", views.camera_page_start, name="camera-page-start"),
    path("cameras/<int:camera_id>/stop/", views.camera_page_stop, name="camera-page-stop"),
    path("cameras/<int:camera_id>/learn/", views.camera_page_learn, name="camera-page-learn"),
    path("cameras/<int:camera_id>/zones/", views.camera_page_zones, name="camera-page-zones"),
    path("cameras/<int:camera_id>/detector-versions/<int:number>/restore/", views.camera_page_restore,
         name="camera-page-restore"),
]
