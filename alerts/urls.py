from django.urls import path

from . import apis

urlpatterns = [
    path("notification-channels/", apis.ChannelListCreateApi.as_view(), name="notification-channel-list"),
    path("notification-channels/<int:channel_id>/", apis.ChannelDetailApi.as_view(),
         name="notification-channel-detail"),
    path("notification-channels/<int:channel_id>/test/", apis.ChannelTestApi.as_view(),
         name="notification-channel-test"),
    path("alert-rules/", apis.RuleListCreateApi.as_view(), name="alert-rule-list"),
    path("alert-rules/<int:rule_id>/", apis.RuleDetailApi.as_view(), name="alert-rule-detail"),
    path("alerts/", apis.DeliveryListApi.as_view(), name="alert-list"),
    path("alerts/<int:delivery_id>/", apis.DeliveryDetailApi.as_view(), name="alert-detail"),
    path("push/vapid-public-key/", apis.PushConfigApi.as_view(), name="push-config"),
    path("push-subscriptions/", apis.PushSubscriptionListCreateApi.as_view(), name="push-subscription-list"),
    path("push-subscriptions/<int:subscription_id>/", apis.PushSubscriptionDetailApi.as_view(),
         name="push-subscription-detail"),
]
