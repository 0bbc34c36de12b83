"""/api/v1/notification-channels/, /api/v1/alert-rules/, /api/v1/alerts/ and /api/v1/push-subscriptions/: a
user's own only.

Another user's channel, rule or delivery answers 404, exactly like one that does not exist.
"""

from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from siteconfig.selectors import web_push_public_key

from .push import push_subscription_delete, push_subscription_save
from .selectors import (
    channel_get_for_user,
    channel_list_for_user,
    delivery_get_for_user,
    delivery_list_for_user,
    push_subscription_get_for_user,
    push_subscription_list_for_user,
    rule_get_for_user,
    rule_list_for_user,
)
from .serializers import (
    ChannelInputSerializer,
    ChannelOutputSerializer,
    DeliveryFilterSerializer,
    DeliveryOutputSerializer,
    PushConfigSerializer,
    PushSubscriptionInputSerializer,
    PushSubscriptionOutputSerializer,
    RuleInputSerializer,
    RuleOutputSerializer,
)
from .services import (
    alert_channel_test,
    alert_rule_create,
    alert_rule_delete,
    alert_rule_update,
    notification_channel_create,
    notification_channel_delete,
    notification_channel_update,
)


def _own_or_404(getter, request, pk, what):
    obj = getter(request.user, pk)
    if obj is None:
        raise Http404(f"You have no {what} with that id.")
    return obj


class ChannelListCreateApi(ListAPIView):
    """Your notification channels (email, webhook, Apprise)."""

    serializer_class = ChannelOutputSerializer

    def get_queryset(self):
        return channel_list_for_user(self.request.user)

    @extend_schema(request=ChannelInputSerializer, responses={201: ChannelOutputSerializer})
    def post(self, request):
        data = ChannelInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        channel = notification_channel_create(owner=request.user, by=request.user, **data.validated_data)
        return Response(ChannelOutputSerializer(channel).data, status=status.HTTP_201_CREATED)


class ChannelDetailApi(APIView):
    serializer_class = ChannelOutputSerializer

    def get(self, request, channel_id):
        channel = _own_or_404(channel_get_for_user, request, channel_id, "notification channel")
        return Response(ChannelOutputSerializer(channel).data)

    @extend_schema(request=ChannelInputSerializer, responses=ChannelOutputSerializer)
    def put(self, request, channel_id):
        return self._update(request, channel_id, partial=False)

    @extend_schema(request=ChannelInputSerializer, responses=ChannelOutputSerializer)
    def patch(self, request, channel_id):
        return self._update(request, channel_id, partial=True)

    def _update(self, request, channel_id, partial):
        channel = _own_or_404(channel_get_for_user, request, channel_id, "notification channel")
        data = ChannelInputSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        channel = notification_channel_update(channel=channel, by=request.user, **data.validated_data)
        return Response(ChannelOutputSerializer(channel).data)

    def delete(self, request, channel_id):
        channel = _own_or_404(channel_get_for_user, request, channel_id, "notification channel")
        notification_channel_delete(channel=channel, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChannelTestApi(APIView):
    """Send a test alert through the channel now; the answer is its delivery record (status sent or failed)."""

    @extend_schema(request=None, responses=DeliveryOutputSerializer)
    def post(self, request, channel_id):
        channel = _own_or_404(channel_get_for_user, request, channel_id, "notification channel")
        delivery = alert_channel_test(channel=channel, by=request.user)
        return Response(DeliveryOutputSerializer(delivery).data)


class RuleListCreateApi(ListAPIView):
    """Your alert rules: cameras, minimum severity, quiet hours, channels and escalation steps."""

    serializer_class = RuleOutputSerializer

    def get_queryset(self):
        return rule_list_for_user(self.request.user)

    @extend_schema(request=RuleInputSerializer, responses={201: RuleOutputSerializer})
    def post(self, request):
        data = RuleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rule = alert_rule_create(owner=request.user, by=request.user, **data.validated_data)
        return Response(RuleOutputSerializer(rule).data, status=status.HTTP_201_CREATED)


class RuleDetailApi(APIView):
    serializer_class = RuleOutputSerializer

    def get(self, request, rule_id):
        return Response(RuleOutputSerializer(_own_or_404(rule_get_for_user, request, rule_id, "alert rule")).data)

    @extend_schema(request=RuleInputSerializer, responses=RuleOutputSerializer)
    def put(self, request, rule_id):
        return self._update(request, rule_id, partial=False)

    @extend_schema(request=RuleInputSerializer, responses=RuleOutputSerializer)
    def patch(self, request, rule_id):
        return self._update(request, rule_id, partial=True)

    def _update(self, request, rule_id, partial):
        rule = _own_or_404(rule_get_for_user, request, rule_id, "alert rule")
        data = RuleInputSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        rule = alert_rule_update(rule=rule, by=request.user, **data.validated_data)
        return Response(RuleOutputSerializer(rule).data)

    def delete(self, request, rule_id):
        rule = _own_or_404(rule_get_for_user, request, rule_id, "alert rule")
        alert_rule_delete(rule=rule, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(parameters=[DeliveryFilterSerializer])
class DeliveryListApi(ListAPIView):
    """Alerts delivered (or being delivered, or failed) to you, newest first."""

    serializer_class = DeliveryOutputSerializer

    def get_queryset(self):
        filters = DeliveryFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return delivery_list_for_user(self.request.user, **filters.validated_data)


class DeliveryDetailApi(APIView):
    @extend_schema(responses=DeliveryOutputSerializer)
    def get(self, request, delivery_id):
        delivery = _own_or_404(delivery_get_for_user, request, delivery_id, "alert")
        return Response(DeliveryOutputSerializer(delivery).data)


# -- Web Push (docs/alerts.md "Web Push", docs/mobile.md) ----------------------------------------------
class PushConfigApi(APIView):
    """Whether the site sends Web Push, and the VAPID public key (applicationServerKey) to subscribe with."""

    @extend_schema(responses=PushConfigSerializer)
    def get(self, request):
        key = web_push_public_key()
        return Response(PushConfigSerializer({
            "enabled": bool(key), "public_key": key or None,
            "subscriptions": reverse("push-subscription-list"), "service_worker": reverse("service-worker"),
        }).data)


class PushSubscriptionListCreateApi(ListAPIView):
    """Your browsers' (and apps') Web Push subscriptions. POST the browser's PushSubscription JSON: the same
    endpoint again updates it (and makes it yours, if another user had it on that browser)."""

    serializer_class = PushSubscriptionOutputSerializer

    def get_queryset(self):
        return push_subscription_list_for_user(self.request.user)

    @extend_schema(request=PushSubscriptionInputSerializer, responses={201: PushSubscriptionOutputSerializer})
    def post(self, request):
        data = PushSubscriptionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        subscription = push_subscription_save(
            user=request.user, endpoint=fields["endpoint"].strip(), p256dh=fields["keys"]["p256dh"],
            auth=fields["keys"]["auth"],
            user_agent=fields.get("user_agent") or request.headers.get("User-Agent", ""))
        return Response(PushSubscriptionOutputSerializer(subscription).data, status=status.HTTP_201_CREATED)


class PushSubscriptionDetailApi(APIView):
    serializer_class = PushSubscriptionOutputSerializer

    def get(self, request, subscription_id):
        subscription = _own_or_404(push_subscription_get_for_user, request, subscription_id, "push subscription")
        return Response(PushSubscriptionOutputSerializer(subscription).data)

    def delete(self, request, subscription_id):
        subscription = _own_or_404(push_subscription_get_for_user, request, subscription_id, "push subscription")
        push_subscription_delete(subscription=subscription)
        return Response(status=status.HTTP_204_NO_CONTENT)
