from datetime import timedelta

from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from cameras.selectors import OPERATE, camera_get_for_user, user_has_camera_perm

from .selectors import event_get_for_user, event_list_for_user, score_history
from .serializers import EventFilterSerializer, EventOutputSerializer, EventResolveInputSerializer
from .services import event_acknowledge, event_resolve


class EventPagination(CursorPagination):
    """Keyset pagination: a page costs the same at event 10 as at event 1,000,000."""

    ordering = ("-started_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def _event_or_404(request, event_id, perm=None):
    event = event_get_for_user(request.user, event_id)
    if event is None:
        raise Http404("No event with that id, or you may not view its camera.")
    if perm and not user_has_camera_perm(request.user, perm, event.camera):
        raise PermissionDenied(f"You need the '{perm.split('.')[1]}' permission on camera '{event.camera.name}'.")
    return event


@extend_schema(parameters=[EventFilterSerializer])
class EventListApi(ListAPIView):
    """Events of the cameras the user may view, newest first, filtered by the query."""

    serializer_class = EventOutputSerializer
    pagination_class = EventPagination

    def get_queryset(self):
        filters = EventFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return event_list_for_user(self.request.user, **filters.validated_data)


class EventDetailApi(APIView):
    @extend_schema(responses=EventOutputSerializer)
    def get(self, request, event_id):
        return Response(EventOutputSerializer(_event_or_404(request, event_id)).data)


class EventAcknowledgeApi(APIView):
    @extend_schema(request=None, responses=EventOutputSerializer)
    def post(self, request, event_id):
        event = event_acknowledge(event=_event_or_404(request, event_id, OPERATE), by=request.user)
        return Response(EventOutputSerializer(event).data)


class EventResolveApi(APIView):
    @extend_schema(request=EventResolveInputSerializer, responses=EventOutputSerializer)
    def post(self, request, event_id):
        event = _event_or_404(request, event_id, OPERATE)
        data = EventResolveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        event = event_resolve(event=event, by=request.user, **data.validated_data)
        return Response(EventOutputSerializer(event).data)


class CameraScoreHistoryApi(APIView):
    """A camera's anomaly-score history (default: the last 24 hours), at most SCORE_HISTORY_MAX_POINTS points."""

    DEFAULT_SPAN = timedelta(hours=24)

    class ScoreHistoryFilterSerializer(serializers.Serializer):
        since = serializers.DateTimeField(required=False, help_text="Start (ISO 8601); default: 24 h before 'until'.")
        until = serializers.DateTimeField(required=False, help_text="End (ISO 8601), exclusive; default: now.")

        def validate(self, attrs):
            if attrs.get("since") and attrs.get("until") and attrs["since"] >= attrs["until"]:
                raise serializers.ValidationError({"until": "Must be later than 'since'."})
            return attrs

    class ScoreHistoryOutputSerializer(serializers.Serializer):
        camera = serializers.IntegerField()
        since = serializers.DateTimeField()
        until = serializers.DateTimeField()
        bucket_seconds = serializers.IntegerField(help_text="How long each stored bucket is.")
        step_seconds = serializers.IntegerField(help_text="How long each point is (whole buckets, merged to fit).")
        t = serializers.ListField(child=serializers.IntegerField(),
                                  help_text="Each point's start, epoch seconds (UTC).")
        max = serializers.ListField(child=serializers.FloatField(), help_text="The highest score in each point.")
        mean = serializers.ListField(child=serializers.FloatField(), help_text="The mean score in each point.")
        count = serializers.ListField(child=serializers.IntegerField(), help_text="Frames scored in each point.")

    @extend_schema(
        parameters=[
            OpenApiParameter("since", OpenApiTypes.DATETIME,
                             description="Start (ISO 8601); default: 24 h before 'until'."),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="End (ISO 8601), exclusive; default: now."),
        ],
        responses=ScoreHistoryOutputSerializer,
    )
    def get(self, request, camera_id):
        camera = camera_get_for_user(request.user, camera_id)
        if camera is None:
            raise Http404("No camera with that id, or you may not view it.")
        filters = self.ScoreHistoryFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        until = filters.validated_data.get("until") or timezone.now()
        since = filters.validated_data.get("since") or until - self.DEFAULT_SPAN
        if since >= until:  # only 'since' given, and in the future
            raise serializers.ValidationError({"since": "Must be earlier than 'until' (default: now)."})
        history = score_history(camera_id=camera.pk, since=since, until=until)
        return Response(self.ScoreHistoryOutputSerializer({"camera": camera.pk, **history}).data)
