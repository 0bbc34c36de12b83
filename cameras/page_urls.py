from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("cameras/<int:camera_id>/", views.camera_page, name="camera-page"),
    path("cameras/<int:camera_id>/start/", views.camera_page_start, name="camera-page-start"),
    path("cameras/<int:camera_id>/stop/", views.camera_page_stop, name="camera-page-stop"),
]
