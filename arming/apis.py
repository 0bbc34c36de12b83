"""The arming API: GET and POST /api/v1/cameras/{id}/arming/ and /api/v1/areas/{id}/arming/ (docs/alerts.md,
"Arming"). Reading needs view_camera (an area: one of its cameras); switching, operate_camera (an area: on every
one of its cameras). Whoever may not see the camera or the area gets 404."""

from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from .selectors import (
    arming_area_for_user,
    arming_area_view,
    arming_camera_for_user,
    arming_camera_view,
    arming_may_switch_area,
    arming_may_switch_camera,
)
from .serializers import AreaArmingSerializer, ArmingInputSerializer, CameraArmingSerializer
from .services import arming_set


def _mode(request):
    data = ArmingInputSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    return data.validated_data["mode"]


class CameraArmingApi(APIView):
    """A camera's arming mode: the effective one, where it comes from, and its own hand-set one."""

    serializer_class = CameraArmingSerializer

    def _camera(self, request, camera_id):
        camera = arming_camera_for_user(request.user, camera_id)
        if camera is None:
            raise Http404(_("No camera with that id, or you may not view it."))
        return camera

    def get(self, request, camera_id):
        return Response(arming_camera_view(request.user, self._camera(request, camera_id)))

    @extend_schema(request=ArmingInputSerializer, responses=CameraArmingSerializer)
    def post(self, request, camera_id):
        camera = self._camera(request, camera_id)
        if not arming_may_switch_camera(request.user, camera):
            raise PermissionDenied(_("You need the 'operate_camera' permission on this camera to switch its mode."))
        arming_set(camera=camera, mode=_mode(request), by=request.user)
        return Response(arming_camera_view(request.user, camera))


class AreaArmingApi(APIView):
    """An area's hand-set mode (it applies to its cameras that have none of their own) and its cameras' modes."""

    serializer_class = AreaArmingSerializer

    def _area(self, request, area_id):
        area = arming_area_for_user(request.user, area_id)
        if area is None:
            raise Http404(_("No area with that id, or it holds no camera you may view."))
        return area

    def get(self, request, area_id):
        return Response(arming_area_view(request.user, self._area(request, area_id)))

    @extend_schema(request=ArmingInputSerializer, responses=AreaArmingSerializer)
    def post(self, request, area_id):
        area = self._area(request, area_id)
        if not arming_may_switch_area(request.user, area):
            raise PermissionDenied(_("You need the 'operate_camera' permission on every camera of this area to "
                                     "switch its mode."))
        arming_set(area=area, mode=_mode(request), by=request.user)
        return Response(arming_area_view(request.user, area))
