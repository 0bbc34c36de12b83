from django.urls import path

from . import views

urlpatterns = [
    path("alerts/", views.my_alerts, name="my-alerts"),
    path("alerts/channels/new/", views.ChannelFormPage.as_view(), name="my-alerts-channel-new"),
    path("alerts/channels/<int:channel_id>/", views.ChannelFormPage.as_view(), name="my-alerts-channel"),
    path("alerts/channels/<int:channel_id>/delete/", views.ChannelDeletePage.as_view(),
         name="my-alerts-channel-delete"),
    path("alerts/channels/<int:channel_id>/test/", views.channel_send_test, name="my-alerts-test"),
    path("alerts/rules/new/", views.RuleFormPage.as_view(), name="my-alerts-rule-new"),
    path("alerts/rules/<int:rule_id>/", views.RuleFormPage.as_view(), name="my-alerts-rule"),
    path("alerts/rules/<int:rule_id>/delete/", views.RuleDeletePage.as_view(), name="my-alerts-rule-delete"),
    # Web Push's service worker, at the root so that its scope is the whole site.
    path("sw.js", views.service_worker, name="service-worker"),
]
