from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from cameras.selectors import OPERATE, user_has_camera_perm

from .selectors import event_get_for_user, event_list_for_user
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
