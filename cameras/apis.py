from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, PermissionDenied
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from .learning import LearningBusy, detector_version_restore, learning_start
from .live import tracked_objects
from .selectors import (
    CHANGE,
    OPERATE,
    camera_get_for_user,
    camera_ids_for_user,
    camera_list_for_user,
    detector_versions_for_camera,
    learning_jobs_for_camera,
    user_has_camera_perm,
)
from .serializers import (
    CameraInputSerializer,
    CameraOutputSerializer,
    CameraStatusSerializer,
    DetectorVersionSerializer,
    LearningJobSerializer,
    LearnInputSerializer,
    LearnJsonSerializer,
    LearnUploadSerializer,
)
from .services import camera_create, camera_delete, camera_start, camera_stop, camera_update


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
        data = CameraInputSerializer(data=request.data)
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
        data = CameraInputSerializer(camera, data=request.data, partial=partial)
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
