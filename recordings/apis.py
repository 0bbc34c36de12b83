"""The recordings API: a camera's segments in a time range, each segment's file with byte ranges, and exports of a
time range (POST /api/v1/exports/, its progress, its files with byte ranges)."""

from datetime import timedelta

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, OpenApiTypes, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import Throttled
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from cameras.apis import ApiErrorSerializer, MediaContentNegotiation
from cameras.selectors import camera_get_for_user
from events.views import media_file_response

from .selectors import (export_file_for_user, export_get_for_user, exports_active_count, segment_get_for_user,
                        segments_in_range)
from .serializers import (CameraRecordingsOutputSerializer, ExportInputSerializer, ExportOutputSerializer,
                          RecordingsFilterSerializer)
from .services import export_create
from .storage import export_folder, tier_root

DEFAULT_SPAN = timedelta(hours=24)


#: The schema of the MP4 files served with byte ranges (segments, exports).
RANGES = ("Answers one byte range: `Range: bytes=0-1023` gives 206 Partial Content with Content-Range; a range "
          "past the end gives 416. Accept-Ranges: bytes.")
RANGE_HEADER = OpenApiParameter("Range", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
                                description="One byte range, e.g. bytes=0-1023.")


def mp4_responses(whole: str) -> dict:
    return {(200, "video/mp4"): OpenApiResponse(OpenApiTypes.BINARY, description=whole),
            (206, "video/mp4"): OpenApiResponse(OpenApiTypes.BINARY, description="The bytes asked for."),
            401: ApiErrorSerializer, 404: ApiErrorSerializer, 416: ApiErrorSerializer}


class CameraRecordingsApi(APIView):
    @extend_schema(
        summary="A camera's recorded segments in a time range",
        parameters=[
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="Start (ISO 8601); default: 24 h before 'until'."),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="End (ISO 8601), exclusive; default: now."),
        ],
        responses={200: CameraRecordingsOutputSerializer, 404: ApiErrorSerializer},  # a 400 names the field
    )
    def get(self, request, camera_id):
        camera = camera_get_for_user(request.user, camera_id)
        if camera is None:
            raise Http404(_("No camera with that id, or you may not view it."))
        filters = RecordingsFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        until = filters.validated_data.get("until") or timezone.now()
        since = filters.validated_data.get("since") or until - DEFAULT_SPAN
        if since >= until:  # only 'since' given, and in the future
            raise serializers.ValidationError({"since": _("Must be earlier than 'until' (default: now).")})
        limit = settings.RECORDING_API_MAX_SEGMENTS
        segments = segments_in_range(camera_id=camera.pk, since=since, until=until, limit=limit + 1)
        data = {"camera": camera.pk, "record_mode": camera.record_mode, "since": since, "until": until,
                "truncated": len(segments) > limit, "segments": segments[:limit]}
        return Response(CameraRecordingsOutputSerializer(data, context={"request": request}).data)


class RecordingVideoApi(APIView):
    """Files whatever the Accept header, errors as JSON (404 for outsiders, as for the camera itself)."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = MediaContentNegotiation

    @extend_schema(
        summary="One recorded segment (MP4, H.264), with byte ranges",
        description=f"{RANGES} ETag and Last-Modified are sent.",
        parameters=[RANGE_HEADER], responses=mp4_responses("The whole segment."),
    )
    def get(self, request, segment_id):
        segment = segment_get_for_user(request.user, segment_id)
        if segment is None:
            raise Http404(_("No recording with that id, or you may not view its camera."))
        root = tier_root(segment.tier)
        if root is None:
            raise Http404(_("The folder of this recording's tier is not configured."))
        return media_file_response(request, FileSystemStorage(location=root), segment.path, content_type="video/mp4",
                                   missing=_("The recording's file is missing (removed by retention?)."), ranges=True,
                                   filename=f"camera-{segment.camera_id}-{segment.start:%Y%m%dT%H%M%SZ}.mp4")


class ExportCreateApi(APIView):
    @extend_schema(
        summary="Export a time range of cameras to MP4 (a task: follow its progress)",
        description=("Queues an export of each camera's footage between `since` and `until` into one MP4 per camera "
                     "(copied from the segments without re-encoding where they allow). Answers 202 with the export; "
                     "`GET /api/v1/exports/{id}/` gives its progress and, once done, the files' URLs. Progress is also "
                     "pushed on the WebSocket (`export`). A camera the user may not view is a 400 naming it."),
        request=ExportInputSerializer,
        responses={202: ExportOutputSerializer, 401: ApiErrorSerializer,
                   429: ApiErrorSerializer},
    )
    def post(self, request):
        data = ExportInputSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        if exports_active_count(request.user) >= settings.RECORDING_EXPORT_MAX_ACTIVE:
            raise Throttled(detail=_("You have %(n)d exports under way already (RECORDING_EXPORT_MAX_ACTIVE): "
                                     "wait for one to finish.") % {"n": settings.RECORDING_EXPORT_MAX_ACTIVE})
        export = export_create(user=request.user, camera_ids=data.validated_data["cameras"],
                               since=data.validated_data["since"], until=data.validated_data["until"])
        body = ExportOutputSerializer(export, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": request.build_absolute_uri(
            f"{request.path.rstrip('/')}/{export.pk}/")})


class ExportDetailApi(APIView):
    @extend_schema(
        summary="An export's progress, then its files",
        description="Your own exports only (any other id is a 404). `files` is filled once `status` is `done`.",
        responses={200: ExportOutputSerializer, 401: ApiErrorSerializer, 404: ApiErrorSerializer},
    )
    def get(self, request, export_id):
        export = export_get_for_user(request.user, export_id)
        if export is None:
            raise Http404(_("No export with that id of yours."))
        return Response(ExportOutputSerializer(export, context={"request": request}).data)


class ExportFileApi(APIView):
    """Files whatever the Accept header, errors as JSON (404 for those who may not view the camera)."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = MediaContentNegotiation

    @extend_schema(
        summary="One camera's file of an export (MP4), with byte ranges",
        description=f"For anyone who may view the camera. {RANGES}",
        parameters=[RANGE_HEADER], responses=mp4_responses("The whole file."),
    )
    def get(self, request, export_id, camera_id):
        found = export_file_for_user(request.user, export_id, camera_id)
        if found is None:
            raise Http404(_("No such export file (not done, expired, or you may not view its camera)."))
        export, entry = found
        return media_file_response(request, FileSystemStorage(location=export_folder(export.pk)), entry["name"],
                                   content_type="video/mp4", ranges=True, filename=entry["name"],
                                   missing=_("The export's file is missing (expired?)."))
