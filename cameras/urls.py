from django.urls import path

from . import apis

urlpatterns = [
    path("areas/", apis.AreaListCreateApi.as_view(), name="area-list"),
    path("areas/<int:area_id>/", apis.AreaDetailApi.as_view(), name="area-detail"),
    path("cameras/", apis.CameraListCreateApi.as_view(), name="camera-list"),
    path("cameras/<int:camera_id>/", apis.CameraDetailApi.as_view(), name="camera-detail"),
    path("cameras/<int:camera_id>/start/", apis.CameraStartApi.as_view(), name="camera-start"),
    path("cameras/<int:camera_id>/stop/", apis.CameraStopApi.as_view(), name="camera-stop"),
    path("cameras/<int:camera_id>/status/", apis.CameraStatusApi.as_view(), name="camera-status"),
    path("cameras/<int:camera_id>/picture/", apis.CameraPictureApi.as_view(), name="camera-picture"),
    path("cameras/<int:camera_id>/model-test/", apis.CameraModelTestApi.as_view(), name="camera-model-test"),
    path("cameras/<int:camera_id>/learn/", apis.CameraLearnApi.as_view(), name="camera-learn"),
    path("cameras/<int:camera_id>/learning-jobs/", apis.CameraLearningJobListApi.as_view(), name="camera-learning-jobs"),
    path("cameras/<int:camera_id>/learning-jobs/<int:job_id>/", apis.CameraLearningJobDetailApi.as_view(),
         name="camera-learning-job"),
    path("cameras/<int:camera_id>/detector-versions/", apis.CameraDetectorVersionListApi.as_view(),
         name="camera-detector-versions"),
    path("cameras/<int:camera_id>/detector-versions/<int:number>/restore/",
         apis.CameraDetectorVersionRestoreApi.as_view(), name="camera-detector-version-restore"),
]
