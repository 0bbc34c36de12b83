import logging

import redis
from django.conf import settings
from django.http import Http404, HttpResponse
from django.utils.http import http_date
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, PermissionDenied
from rest_framework.generics import ListAPIView
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from .learning import LearningBusy, detector_version_restore, learning_start
from .live import tracked_objects
from .models import Camera
from .selectors import (
    camera_current_picture,
    CHANGE,
    OPERATE,
    area_camera_ids_for_user,
    area_get_for_user,
    area_list_for_user,
    camera_get_for_user,
    camera_ids_for_user,
    camera_list_for_user,
    detector_versions_for_camera,
    learning_jobs_for_camera,
    user_has_camera_perm,
)
from .serializers import (
    AreaInputSerializer,
    AreaOutputSerializer,
    CameraInputSerializer,
    CameraOutputSerializer,
    CameraStatusSerializer,
    DetectorVersionSerializer,
    LearningJobSerializer,
    LearnInputSerializer,
    LearnJsonSerializer,
    LearnUploadSerializer,
)
from .services import (
    area_create,
    area_update,
    camera_create,
    camera_delete,
    camera_model_test,
    camera_start,
    camera_stop,
    camera_update,
)

log = logging.getLogger(__name__)


def _camera_or_404(request, camera_id, perm=None):
    camera = camera_get_for_user(request.user, camera_id)
    if camera is None:
        raise Http404("No camera with that id, or you may not view it.")
    if perm and not user_has_camera_perm(request.user, perm, camera):
        raise PermissionDenied(f"You need the '{perm.split('.')[1]}' permission on this camera.")
    return camera


def _out(request, camera) -> dict:
    changeable = {camera.pk} if user_has_camera_perm(request.user, CHANGE, camera) else set()
    return CameraOutputSerializer(camera, context={"changeable": changeable}).data


class CameraListCreateApi(ListAPIView):
    """Cameras the user may view; creating one needs the global 'add_camera' permission."""

    serializer_class = CameraOutputSerializer

    def get_queryset(self):
        return camera_list_for_user(self.request.user)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "changeable": camera_ids_for_user(self.request.user, CHANGE)}

    @extend_schema(request=CameraInputSerializer, responses={201: CameraOutputSerializer})
    def post(self, request):
        if not (request.user.is_staff or request.user.has_perm("cameras.add_camera")):
            raise PermissionDenied("You need the 'add_camera' permission to create cameras.")
        data = CameraInputSerializer(data=request.data, context={"user": request.user})
        data.is_valid(raise_exception=True)
        camera = camera_create(by=request.user, **data.validated_data)
        return Response(_out(request, camera), status=status.HTTP_201_CREATED)


class CameraDetailApi(APIView):
    serializer_class = CameraOutputSerializer

    def get(self, request, camera_id):
        return Response(_out(request, _camera_or_404(request, camera_id)))

    @extend_schema(request=CameraInputSerializer, responses=CameraOutputSerializer)
    def put(self, request, camera_id):
        return self._update(request, camera_id, partial=False)

    @extend_schema(request=CameraInputSerializer, responses=CameraOutputSerializer)
    def patch(self, request, camera_id):
        return self._update(request, camera_id, partial=True)

    def _update(self, request, camera_id, partial):
        camera = _camera_or_404(request, camera_id, CHANGE)
        data = CameraInputSerializer(camera, data=request.data, partial=partial, context={"user": request.user})
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        enabled = fields.pop("enabled", None)
        camera = camera_update(camera=camera, by=request.user, **fields)
        if enabled is True and not camera.enabled:
            camera = camera_start(camera=camera, by=request.user)
        elif enabled is False and camera.enabled:
            camera = camera_stop(camera=camera, by=request.user)
        return Response(_out(request, camera))

    def delete(self, request, camera_id):
        camera = _camera_or_404(request, camera_id, CHANGE)
        camera_delete(camera=camera, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CameraStartApi(APIView):
    @extend_schema(request=None, responses={202: CameraStatusSerializer})
    def post(self, request, camera_id):
        camera = camera_start(camera=_camera_or_404(request, camera_id, OPERATE), by=request.user)
        return Response(CameraStatusSerializer(camera).data, status=status.HTTP_202_ACCEPTED)


class ModelTestOutputSerializer(serializers.Serializer):
    which = serializers.CharField()
    ok = serializers.BooleanField(help_text="The server answered usably.")
    seconds = serializers.FloatField(help_text="How long the request took.")
    base_url = serializers.CharField()
    model = serializers.CharField()
    error = serializers.CharField(help_text="Why there was no usable answer (empty when ok).")
    summary = serializers.CharField(required=False, help_text="VLM: the description.")
    threat_level = serializers.CharField(required=False, allow_null=True)
    objects = serializers.ListField(child=serializers.CharField(), required=False)
    severity = serializers.CharField(required=False, help_text="Agent: its decision on a sample episode.")
    actions = serializers.ListField(child=serializers.CharField(), required=False)
    reasons = serializers.ListField(child=serializers.CharField(), required=False)


class CameraModelTestApi(APIView):
    """Send one real request to the camera's model server ("openai" backends): the VLM describes the
    camera's current picture, or the agent decides about a sample episode (a person down). For users
    who may change the camera."""

    class ModelTestInputSerializer(serializers.Serializer):
        which = serializers.ChoiceField(choices=["vlm", "agent"], default="vlm",
                                        help_text="vlm: describe the current picture; agent: decide a sample episode.")

    @extend_schema(request=ModelTestInputSerializer, responses={200: ModelTestOutputSerializer})
    def post(self, request, camera_id):
        camera = _camera_or_404(request, camera_id, CHANGE)
        data = self.ModelTestInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = camera_model_test(camera=camera, which=data.validated_data["which"], by=request.user)
        return Response(ModelTestOutputSerializer(result).data)


class CameraStopApi(APIView):
    @extend_schema(request=None, responses={202: CameraStatusSerializer})
    def post(self, request, camera_id):
        camera = camera_stop(camera=_camera_or_404(request, camera_id, OPERATE), by=request.user)
        return Response(CameraStatusSerializer(camera).data, status=status.HTTP_202_ACCEPTED)


class CameraStatusApi(APIView):
    @extend_schema(responses=CameraStatusSerializer)
    def get(self, request, camera_id):
        camera = _camera_or_404(request, camera_id)
        return Response(CameraStatusSerializer(camera, context={"objects": tracked_objects(camera)}).data)


# -- areas ---------------------------------------------------------------------------------------------------
def _area_out(request, area) -> dict:
    return AreaOutputSerializer(area, context={"cameras": area_camera_ids_for_user(request.user)}).data


def _staff_only(request, what: str) -> None:
    if not request.user.is_staff:
        raise PermissionDenied(f"Only staff may {what} areas.")


class AreaListCreateApi(ListAPIView):
    """Areas (cameras a site groups together; their events make incidents): those holding a camera you may
    view (staff: all), each with its cameras you may view. Creating one is for staff."""

    serializer_class = AreaOutputSerializer

    def get_queryset(self):
        return area_list_for_user(self.request.user)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "cameras": area_camera_ids_for_user(self.request.user)}

    @extend_schema(request=AreaInputSerializer, responses={201: AreaOutputSerializer})
    def post(self, request):
        _staff_only(request, "create")
        data = AreaInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        area = area_create(by=request.user, **data.validated_data)
        return Response(_area_out(request, area), status=status.HTTP_201_CREATED)


class AreaDetailApi(APIView):
    serializer_class = AreaOutputSerializer

    def _area_or_404(self, request, area_id):
        area = area_get_for_user(request.user, area_id)
        if area is None:
            raise Http404("No area with that id, or it holds no camera you may view.")
        return area

    def get(self, request, area_id):
        return Response(_area_out(request, self._area_or_404(request, area_id)))

    @extend_schema(request=AreaInputSerializer, responses=AreaOutputSerializer)
    def patch(self, request, area_id):
        area = self._area_or_404(request, area_id)
        _staff_only(request, "change")
        data = AreaInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        area = area_update(area=area, by=request.user, **data.validated_data)
        return Response(_area_out(request, area))


# -- learning what is normal ------------------------------------------------------------------------------
class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class CameraLearnApi(APIView):
    """Queue "learn what is normal now" (needs 'operate_camera'); 202 with the job.

    JSON ``{"minutes": N}`` learns from the next N minutes of the camera's own footage; multipart
    with ``clips`` files learns from uploaded normal footage. Progress: GET the job, or the
    WebSocket's "learning" messages. 409 while another learning job of the camera is active.
    """

    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(request={"application/json": LearnJsonSerializer, "multipart/form-data": LearnUploadSerializer},
                   responses={202: LearningJobSerializer})
    def post(self, request, camera_id):
        camera = _camera_or_404(request, camera_id, OPERATE)
        data = LearnInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job = learning_start(camera=camera, by=request.user, **data.validated_data)
        except LearningBusy as exc:
            raise Conflict(str(exc)) from exc
        return Response(LearningJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class CameraLearningJobListApi(ListAPIView):
    """The camera's learning jobs, newest first (needs 'view_camera')."""

    serializer_class = LearningJobSerializer

    def get_queryset(self):
        return learning_jobs_for_camera(_camera_or_404(self.request, self.kwargs["camera_id"]))


class CameraLearningJobDetailApi(APIView):
    @extend_schema(responses=LearningJobSerializer)
    def get(self, request, camera_id, job_id):
        job = learning_jobs_for_camera(_camera_or_404(request, camera_id)).filter(pk=job_id).first()
        if job is None:
            raise Http404("No learning job with that id on this camera.")
        return Response(LearningJobSerializer(job).data)


class CameraDetectorVersionListApi(ListAPIView):
    """The camera's learned detector versions, newest first; ``active`` marks the one in use."""

    serializer_class = DetectorVersionSerializer

    def get_queryset(self):
        self.camera = _camera_or_404(self.request, self.kwargs["camera_id"])
        return detector_versions_for_camera(self.camera)

    def get_serializer_context(self):
        camera = getattr(self, "camera", None)
        return {**super().get_serializer_context(), "active_id": camera.active_detector_version_id if camera else None}


class CameraDetectorVersionRestoreApi(APIView):
    """Make an earlier version active again (needs 'operate_camera'); recorded as a new "restore" version."""

    @extend_schema(request=None, responses=DetectorVersionSerializer)
    def post(self, request, camera_id, number):
        camera = _camera_or_404(request, camera_id, OPERATE)
        version = detector_versions_for_camera(camera).filter(number=number).first()
        if version is None:
            raise Http404("No detector version with that number on this camera.")
        restored = detector_version_restore(camera=camera, version=version, by=request.user)
        return Response(DetectorVersionSerializer(restored, context={"active_id": restored.pk}).data)


# -- media for clients with a JWT: the camera's current picture (events/apis.py serves events' files) ---------
class MediaContentNegotiation(BaseContentNegotiation):
    """Media endpoints send their bytes whatever ``Accept`` says (an <img>, a video player, a client that
    asks for image/jpeg only: never 406), and their errors as JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ApiErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, in words.")


class PictureUnavailableSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, in words.")
    code = serializers.CharField(required=False, help_text=(
        "Why there is no current picture: camera_not_running (stopped, failed or reconnecting: see state), "
        "no_picture_yet (running, but no picture yet: retry after Retry-After seconds), disabled (the site "
        "keeps no pictures), live_unavailable (503: Redis cannot be reached). Absent when the camera does "
        "not exist or may not be viewed."))
    state = serializers.CharField(required=False, help_text="The camera's state as its worker reported it "
                                                            "(running, stopped, reconnecting, error...).")


class CameraPictureApi(APIView):
    """The camera's current picture (JPEG), for viewers of the camera."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = MediaContentNegotiation
    LIVE_STATES = (Camera.State.STARTING, Camera.State.RUNNING)

    @extend_schema(
        summary="The camera's current picture (JPEG)",
        description=(
            "The newest frame the worker read from the camera, as the live view shows it (object boxes "
            "drawn), at most CAMERA_PICTURE_MAX_AGE seconds old (10 by default). Asking keeps the worker "
            "storing one every CAMERA_PICTURE_SECONDS (2) for the next CAMERA_PICTURE_WANTED_SECONDS (120); "
            "the first request after a pause waits up to CAMERA_PICTURE_WAIT_SECONDS (3) for the first "
            "picture. Headers: Cache-Control: no-store, Last-Modified and X-Captured-At (epoch seconds) "
            "say when it was taken. 404 (JSON) when the camera does not exist or the user may not view it, "
            "and when it has no current picture: then `code` says why (camera_not_running, "
            "no_picture_yet with Retry-After, disabled) and `state` gives the camera's state. 503 when the "
            "live store (Redis) cannot be reached."),
        responses={
            (200, "image/jpeg"): OpenApiResponse(OpenApiTypes.BINARY, description="The picture."),
            401: OpenApiResponse(ApiErrorSerializer, description="No or an invalid token."),
            404: OpenApiResponse(PictureUnavailableSerializer, description=(
                "No such camera, not viewable by the user, or no current picture (see code).")),
            503: OpenApiResponse(PictureUnavailableSerializer, description="Live pictures cannot be read now."),
        },
    )
    def get(self, request, camera_id):
        camera = _camera_or_404(request, camera_id)
        if settings.CAMERA_PICTURE_SECONDS <= 0:
            return self._unavailable(camera, "disabled", "This site keeps no camera pictures.")
        try:
            picture = camera_current_picture(camera)
        except redis.RedisError as exc:
            log.warning("Reading the picture of camera %s failed: %s", camera.pk, exc)
            return self._unavailable(camera, "live_unavailable", "Live pictures cannot be read right now.", 5,
                                     http_status=status.HTTP_503_SERVICE_UNAVAILABLE)
        if picture is None:
            if camera.enabled and camera.state in self.LIVE_STATES:
                return self._unavailable(camera, "no_picture_yet",
                                         f"Camera '{camera.name}' has sent no picture yet; try again shortly.", 2)
            return self._unavailable(camera, "camera_not_running",
                                     f"Camera '{camera.name}' is not running ({camera.state}): it has no "
                                     f"current picture.")
        response = HttpResponse(picture["jpeg"], content_type="image/jpeg")
        response["Cache-Control"] = "no-store"
        response["Last-Modified"] = http_date(picture["at"])
        response["X-Captured-At"] = f"{picture['at']:.3f}"
        return response

    @staticmethod
    def _unavailable(camera, code: str, detail: str, retry: int | None = None,
                     http_status: int = status.HTTP_404_NOT_FOUND) -> Response:
        """No current picture: 404 (the picture is not there; a 5xx would read as a fault of the server)."""
        headers = {"Retry-After": str(retry)} if retry else None
        return Response({"detail": detail, "code": code, "state": camera.state}, status=http_status,
                        headers=headers)
