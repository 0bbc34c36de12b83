from datetime import timedelta
from pathlib import Path

from django.core.files.storage import default_storage
from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, OpenApiTypes, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework import status as http_status
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from cameras.apis import ApiErrorSerializer, MediaContentNegotiation
from cameras.selectors import OPERATE, camera_get_for_user, user_has_camera_perm

from .selectors import (
    event_get_for_user,
    event_list_for_user,
    event_notes,
    event_thumbnails,
    incident_for_user,
    score_history,
)
from .serializers import (
    EventFilterSerializer,
    EventNoteInputSerializer,
    EventNoteOutputSerializer,
    EventOutputSerializer,
    EventReopenInputSerializer,
    EventResolveInputSerializer,
    IncidentOutputSerializer,
)
from .services import event_acknowledge, event_keep, event_note_add, event_reopen, event_resolve
from .views import clip_content_type, media_file_response


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


def _out(request, event) -> dict:
    return EventOutputSerializer(event, context={"request": request}).data  # absolute media URLs


class EventDetailApi(APIView):
    @extend_schema(responses=EventOutputSerializer)
    def get(self, request, event_id):
        return Response(_out(request, _event_or_404(request, event_id)))


class IncidentDetailApi(APIView):
    """An incident: events of the cameras of one area within the area's window (docs/alerts.md, "Incidents").

    Only its events of cameras you may view are listed, and its count and severity are theirs; 404
    when it does not exist or you may view none of its events.
    """

    @extend_schema(responses=IncidentOutputSerializer)
    def get(self, request, incident_id):
        incident = incident_for_user(request.user, incident_id)
        if incident is None:
            raise Http404("No incident with that id, or you may view none of its events.")
        return Response(IncidentOutputSerializer(incident, context={"request": request}).data)


class EventAcknowledgeApi(APIView):
    @extend_schema(request=None, responses=EventOutputSerializer)
    def post(self, request, event_id):
        event = event_acknowledge(event=_event_or_404(request, event_id, OPERATE), by=request.user)
        return Response(_out(request, event))


class EventKeepInputSerializer(serializers.Serializer):
    keep = serializers.BooleanField(default=True, help_text="true (the default): keep it as evidence; false: "
                                                            "let retention treat it as any other event.")


class EventKeepApi(APIView):
    @extend_schema(
        request=EventKeepInputSerializer, responses=EventOutputSerializer,
        description=("Keep the event as evidence: retention never deletes its clip, snapshot or recorded footage "
                     "while `keep` is true. Needs operate_camera (403); 404 for those who may not view it."))
    def post(self, request, event_id):
        event = _event_or_404(request, event_id, OPERATE)
        data = EventKeepInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        event = event_keep(event=event, by=request.user, keep=data.validated_data["keep"])
        return Response(_out(request, event))


class EventResolveApi(APIView):
    @extend_schema(
        request=EventResolveInputSerializer, responses=EventOutputSerializer,
        description=("Close the case as resolved, or as a false alarm (`false_alarm: true`), with an optional "
                     "`note`. On a closed event it reclassifies it (resolved <-> false alarm); resolving as it "
                     "already is changes nothing. Needs operate_camera (403); 404 for those who may not view it."))
    def post(self, request, event_id):
        event = _event_or_404(request, event_id, OPERATE)
        data = EventResolveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        event = event_resolve(event=event, by=request.user, **data.validated_data)
        return Response(_out(request, event))


class EventReopenApi(APIView):
    @extend_schema(
        request=EventReopenInputSerializer, responses=EventOutputSerializer,
        description=("Reopen a resolved event or a false alarm: it goes back to acknowledged (resolved_by and "
                     "resolved_at become null; the audit log keeps them), with an optional `note`. 400 naming "
                     "`status` when the event is open. Needs operate_camera (403); 404 for those who may not "
                     "view it."))
    def post(self, request, event_id):
        event = _event_or_404(request, event_id, OPERATE)
        data = EventReopenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        event = event_reopen(event=event, by=request.user, **data.validated_data)
        return Response(_out(request, event))


class EventNotesApi(ListAPIView):
    """An event's notes, oldest first: who wrote what, and when. Operators (operate_camera) add them."""

    serializer_class = EventNoteOutputSerializer

    def get_queryset(self):
        return event_notes(_event_or_404(self.request, self.kwargs["event_id"]))

    @extend_schema(
        request=EventNoteInputSerializer, responses={201: EventNoteOutputSerializer},
        description=("Add a note (`text`, 1 to 2000 characters, trimmed). Needs operate_camera (403); 404 for "
                     "those who may not view the event. The event is pushed again over the WebSocket."))
    def post(self, request, event_id):
        event = _event_or_404(request, event_id, OPERATE)
        data = EventNoteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        note = event_note_add(event=event, by=request.user, text=data.validated_data["text"])
        return Response(EventNoteOutputSerializer(note).data, status=http_status.HTTP_201_CREATED)


# -- an event's files, for clients with a JWT (the pages serve the same files at events/<id>/*.jpg|mp4) ------
_NOT_FOUND = OpenApiResponse(ApiErrorSerializer, description=(
    "No such event, the user may not view its camera, the event has no such file, or the file is gone "
    "(retention)."))
_UNAUTHORIZED = OpenApiResponse(ApiErrorSerializer, description="No or an invalid token.")
_CONDITIONAL = ("ETag and Last-Modified are sent; If-None-Match / If-Modified-Since get 304. "
                "Cache-Control: private, max-age=3600.")


class _EventMediaApi(APIView):
    """Shared: files whatever the Accept header, errors as JSON (404 for outsiders, as for the event itself)."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = MediaContentNegotiation


class EventSnapshotApi(_EventMediaApi):
    @extend_schema(
        summary="The event's snapshot (JPEG)",
        description="The frame with the highest anomaly score. " + _CONDITIONAL,
        responses={(200, "image/jpeg"): OpenApiResponse(OpenApiTypes.BINARY, description="The snapshot."),
                   401: _UNAUTHORIZED, 404: _NOT_FOUND},
    )
    def get(self, request, event_id):
        event = _event_or_404(request, event_id)
        if not event.snapshot:
            raise Http404("This event has no snapshot.")
        return media_file_response(request, event.snapshot.storage, event.snapshot.name, content_type="image/jpeg",
                                   missing="The snapshot file is missing.", filename=f"event-{event.pk}.jpg")


class EventClipApi(_EventMediaApi):
    @extend_schema(
        summary="The event's clip (H.264 MP4; VP8 WebM for older events), with byte ranges",
        description=(
            "A few seconds before the event until it ended. Answers one byte range: `Range: bytes=0-1023`, "
            "`bytes=1024-` or `bytes=-1024` give 206 Partial Content with Content-Range and exactly those "
            "bytes; a range past the end gives 416 with `Content-Range: bytes */<size>`; several ranges, or "
            "an If-Range that no longer matches, give the whole file (200). Accept-Ranges: bytes. "
            + _CONDITIONAL),
        parameters=[OpenApiParameter("Range", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
                                     description="One byte range, e.g. bytes=0-1023.")],
        responses={
            (200, "video/mp4"): OpenApiResponse(OpenApiTypes.BINARY, description="The whole clip."),
            (200, "video/webm"): OpenApiResponse(OpenApiTypes.BINARY, description="The whole clip (older events)."),
            (206, "video/mp4"): OpenApiResponse(OpenApiTypes.BINARY, description="The bytes asked for."),
            (206, "video/webm"): OpenApiResponse(OpenApiTypes.BINARY, description="The bytes asked for."),
            401: _UNAUTHORIZED, 404: _NOT_FOUND,
            416: OpenApiResponse(ApiErrorSerializer, description=(
                "The range starts past the end of the clip; Content-Range gives its size.")),
        },
    )
    def get(self, request, event_id):
        event = _event_or_404(request, event_id)
        if not event.clip:
            raise Http404("This event has no clip (yet: it is written when the event ends).")
        return media_file_response(request, event.clip.storage, event.clip.name, content_type=clip_content_type(event),
                                   missing="The clip file is missing (removed by retention?).", ranges=True,
                                   filename=f"event-{event.pk}{Path(event.clip.name).suffix.lower() or '.mp4'}")


class EventThumbnailApi(_EventMediaApi):
    @extend_schema(
        summary="One object's thumbnail (JPEG)",
        description=("The best crop of an object seen in the event; the event's `thumbnails` list the tracks "
                     "that have one. " + _CONDITIONAL),
        responses={(200, "image/jpeg"): OpenApiResponse(OpenApiTypes.BINARY, description="The thumbnail."),
                   401: _UNAUTHORIZED, 404: _NOT_FOUND},
    )
    def get(self, request, event_id, track):
        event = _event_or_404(request, event_id)
        thumbnail = event_thumbnails(event).get(track)
        if thumbnail is None:
            raise Http404(f"This event has no thumbnail for object {track}.")
        return media_file_response(request, default_storage, thumbnail["thumbnail"], content_type="image/jpeg",
                                   missing="The thumbnail file is missing.",
                                   filename=f"event-{event.pk}-object-{track}.jpg")


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
