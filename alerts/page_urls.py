from django.urls import path

from . import views

urlpatterns = [
    path("alerts/", views.my_alerts, name="my-alerts"),
    path("alerts/channels/<int:channel_id>/test/", views.channel_send_test, name="my-alerts-test"),
]
