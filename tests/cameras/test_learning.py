"""Learn what is normal per camera: API and permissions, validation, the task end to end, versions and restore,
false-alarm feedback, the live "learning" message and the camera page's controls."""

import json

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework_simplejwt.tokens import RefreshToken

from cameras import dispatch
from cameras.backends import make_detector
from cameras.models import Camera, DetectorVersion, LearningJob
from cameras.learning import (
    detector_version_restore,
    learning_broadcast,
    learning_job_claim,
    learning_job_progress,
    learning_start,
)
from inference.base import Detector, DetectorResult
from inference.detectors import MotionDetector
from inference.e2e import analysis_images
from inference.sources import open_source
from runtime import tasks
from surveillance.asgi import application
from tests.factories import CameraFactory, EventFactory
from tests.inference.test_learning_runner import write_clip

pytestmark = pytest.mark.django_db

#: Detectors only these tests register (settings.INFERENCE_DETECTORS).
TEST_DETECTORS = {
    "learner": "tests.cameras.test_learning.Learner",
    "static": "tests.cameras.test_learning.Static",
}


class Learner(Detector):
    """Learns by counting: its state is how many frames it was taught, and from which feedback."""

    name = "learner"

    def __init__(self, **params):
        super().__init__(**params)
        self.state = {"fitted": 0, "fed": 0}

    def score(self, gray, timestamp):
        return DetectorResult(score=0.0)

    def fit(self, frames, fps=10.0):
        self.state["fitted"] += sum(f is not None for f in frames)

    def feedback(self, frames):
        self.state["fed"] += sum(f is not None for f in frames)

    def state_dict(self):
        return dict(self.state)

    def load_state_dict(self, state):
        self.state = dict(state)


class Static(Detector):
    """Learns nothing (no fit, no feedback)."""

    name = "static"

    def score(self, gray, timestamp):
        return DetectorResult(score=0.0)


@pytest.fixture(autouse=True)
def detectors(settings):
    settings.INFERENCE_DETECTORS = {**settings.INFERENCE_DETECTORS, **TEST_DETECTORS}


@pytest.fixture(autouse=True)
def learning_queued(monkeypatch):
    """Learning jobs queued by the code under test, recorded instead of sent to a broker."""
    queued: list[int] = []
    monkeypatch.setattr(dispatch, "detector_learn", lambda job_id: queued.append(job_id))
    return queued


@pytest.fixture
def clip(tmp_path):
    return write_clip(tmp_path / "normal.mp4", seconds=12.0, fps=10.0)


@pytest.fixture
def file_camera(camera, clip):
    Camera.objects.filter(pk=camera.pk).update(source_url=str(clip))
    camera.refresh_from_db()
    return camera


def url(camera, action):
    return f"/api/v1/cameras/{camera.pk}/{action}"


def run(job) -> str:
    """The Celery task, called directly as a worker would run it."""
    return tasks.detector_learn(job.pk)


def upload(path, name=None):
    return SimpleUploadedFile(name or path.name, path.read_bytes(), content_type="video/mp4")


# -- starting, permissions and validation ----------------------------------------------------------------
def test_owner_starts_learning_and_the_job_is_queued_on_commit(api_as, owner, camera, learning_queued,
                                                               django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(owner).post(url(camera, "learn/"), {"minutes": 2}, format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["kind"] == "live" and body["status"] == "queued" and body["minutes"] == 2.0
    assert body["created_by"] == "owner" and body["mode"] == "fresh"
    assert learning_queued == [body["id"]]
    job = api_as(owner).get(url(camera, f"learning-jobs/{body['id']}/")).json()
    assert job["status"] == "queued" and job["progress"] == 0


def test_viewer_may_follow_learning_but_not_start_or_restore(api_as, owner, viewer, camera):
    job = learning_start(camera=camera, by=owner, minutes=1)
    client = api_as(viewer)
    assert client.post(url(camera, "learn/"), {"minutes": 1}, format="json").status_code == 403
    assert client.get(url(camera, "learning-jobs/")).json()["results"][0]["id"] == job.pk
    assert client.get(url(camera, f"learning-jobs/{job.pk}/")).status_code == 200
    assert client.get(url(camera, "detector-versions/")).json()["results"] == []
    assert client.post(url(camera, "detector-versions/1/restore/")).status_code == 403


def test_outsider_gets_404_and_no_job_is_created(api_as, outsider, camera, owner):
    job = learning_start(camera=camera, by=owner, minutes=1)
    client = api_as(outsider)
    assert client.post(url(camera, "learn/"), {"minutes": 1}, format="json").status_code == 404
    assert client.get(url(camera, "learning-jobs/")).status_code == 404
    assert client.get(url(camera, f"learning-jobs/{job.pk}/")).status_code == 404
    assert client.get(url(camera, "detector-versions/")).status_code == 404
    assert LearningJob.objects.count() == 1


def test_a_job_of_another_camera_is_not_found_through_this_one(api_as, owner, camera):
    other = CameraFactory()
    job = learning_start(camera=other, by=None, minutes=1)
    assert api_as(owner).get(url(camera, f"learning-jobs/{job.pk}/")).status_code == 404


@pytest.mark.parametrize("payload,field,text", [
    ({"minutes": 0.1}, "minutes", "between 0.5 and 60"),
    ({"minutes": 61}, "minutes", "between 0.5 and 60"),
    ({"minutes": "soon"}, "minutes", "valid number"),
    ({}, "minutes", "Give either 'minutes'"),
    ({"minutes": 1, "mode": "sideways"}, "mode", "sideways"),
    ({"minutes": 1, "mode": "refit"}, "mode", "no learned state for detector 'motion'"),
])
def test_bad_requests_get_400_naming_the_problem(api_as, owner, camera, payload, field, text):
    response = api_as(owner).post(url(camera, "learn/"), payload, format="json")
    assert response.status_code == 400
    assert text in json.dumps(response.json()[field])
    assert not LearningJob.objects.exists()


def test_the_minutes_range_is_a_setting(api_as, owner, camera, settings):
    settings.LEARN_MINUTES_MAX = 2
    response = api_as(owner).post(url(camera, "learn/"), {"minutes": 3}, format="json")
    assert response.status_code == 400 and "between 0.5 and 2" in response.json()["minutes"][0]


def test_a_detector_that_does_not_learn_is_refused(api_as, owner, camera):
    Camera.objects.filter(pk=camera.pk).update(detector="static")
    response = api_as(owner).post(url(camera, "learn/"), {"minutes": 1}, format="json")
    assert response.status_code == 400
    assert response.json()["minutes"] == ["The camera's detector 'static' does not learn from footage."]


def test_one_learning_job_at_a_time_per_camera(api_as, owner, camera):
    client = api_as(owner)
    first = client.post(url(camera, "learn/"), {"minutes": 1}, format="json").json()
    response = client.post(url(camera, "learn/"), {"minutes": 5}, format="json")
    assert response.status_code == 409
    assert response.json()["detail"] == f"Learning job {first['id']} of this camera is already queued; " \
                                         "wait for it to finish."
    other = CameraFactory()
    assert learning_start(camera=other, by=owner, minutes=1).status == "queued"  # other cameras are not held up
    LearningJob.objects.filter(pk=first["id"]).update(status="failed")
    assert client.post(url(camera, "learn/"), {"minutes": 5}, format="json").status_code == 202


def test_an_abandoned_job_does_not_hold_the_camera_forever(owner, camera, settings):
    from datetime import timedelta

    from django.utils import timezone

    job = learning_start(camera=camera, by=owner, minutes=1)
    LearningJob.objects.filter(pk=job.pk).update(
        status="running", updated_at=timezone.now() - timedelta(minutes=settings.LEARN_STALE_MINUTES + 1))
    learning_start(camera=camera, by=owner, minutes=1)
    job.refresh_from_db()
    assert job.status == "failed" and job.message.startswith("Abandoned: no progress")


# -- uploads ------------------------------------------------------------------------------------------------
def uploads_left():
    root = settings.DATA_DIR / "learning-uploads"
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_uploaded_clips_are_stored_checked_and_learned(api_as, owner, camera, tmp_path, learning_queued,
                                                       django_capture_on_commit_callbacks):
    Camera.objects.filter(pk=camera.pk).update(detector="learner")
    a = write_clip(tmp_path / "morning walk.mp4", seconds=2.0)
    b = write_clip(tmp_path / "evening.avi", seconds=3.0, fourcc="MJPG")
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(owner).post(url(camera, "learn/"), {"clips": [upload(a), upload(b)]}, format="multipart")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["kind"] == "upload" and body["clips"] == ["morning_walk.mp4", "evening.avi"]
    assert learning_queued == [body["id"]] and uploads_left() == ["01-morning_walk.mp4", "02-evening.avi"]
    job = LearningJob.objects.get(pk=body["id"])
    with django_capture_on_commit_callbacks(execute=True):
        assert run(job) == "done"
    version = DetectorVersion.objects.get(camera=camera)
    assert version.source == "upload" and version.frames == 25  # 10 + 15 frames at the 5 fps analysis rate
    assert json.loads(version.state_file.read_text()) == {"fitted": 25, "fed": 0}
    assert uploads_left() == []  # uploads are dropped once the job ends


def test_an_unreadable_upload_is_refused_naming_the_file(api_as, owner, camera, tmp_path):
    good = write_clip(tmp_path / "good.mp4", seconds=1.0)
    bad = tmp_path / "holiday.mp4"
    bad.write_bytes(b"\x00\x01garbage" * 500)
    response = api_as(owner).post(url(camera, "learn/"), {"clips": [upload(good), upload(bad)]}, format="multipart")
    assert response.status_code == 400
    problem = response.json()["clips"][0]
    assert problem.startswith("holiday.mp4: OpenCV cannot read it as a video (") and str(tmp_path) not in problem
    assert uploads_left() == [] and not LearningJob.objects.exists()


def test_upload_caps_come_from_settings(api_as, owner, camera, tmp_path, settings):
    good = write_clip(tmp_path / "good.mp4", seconds=1.0)
    settings.LEARN_UPLOAD_MAX_CLIPS = 1
    response = api_as(owner).post(url(camera, "learn/"), {"clips": [upload(good), upload(good, "b.mp4")]},
                                  format="multipart")
    assert response.status_code == 400 and response.json()["clips"] == ["At most 1 clips at a time (2 given)."]
    settings.LEARN_UPLOAD_MAX_MB = 0.001
    response = api_as(owner).post(url(camera, "learn/"), {"clips": [upload(good)]}, format="multipart")
    assert response.status_code == 400 and "good.mp4" in response.json()["clips"][0]
    assert "over the 0.001 MB limit" in response.json()["clips"][0]
    response = api_as(owner).post(url(camera, "learn/"), {"clips": [upload(good)], "minutes": "1"},
                                  format="multipart")
    assert response.status_code == 400 and "not both" in response.json()["minutes"][0]


# -- the task end to end ----------------------------------------------------------------------------------
def test_live_learning_end_to_end_makes_an_active_version_that_the_camera_loads(owner, file_camera, clip, tmp_path,
                                                                                django_capture_on_commit_callbacks):
    camera = file_camera
    Camera.objects.filter(pk=camera.pk).update(detector_params={"warmup_frames": 5})
    job = learning_start(camera=camera, by=owner, minutes=0.5)  # more than the 12 s file: learned to its end
    with django_capture_on_commit_callbacks(execute=True):
        assert run(job) == "done"
    job.refresh_from_db()
    camera.refresh_from_db()
    version = job.version
    assert job.status == "done" and job.progress == 1.0 and job.started_at and job.finished_at
    assert job.message == "Learned version 1; the camera now uses it"
    assert camera.active_detector_version == version
    assert (version.number, version.source, version.detector, version.frames) == (1, "learn-live", "motion", 60)
    assert version.params == {"warmup_frames": 5} and version.created_by == owner and version.based_on is None
    assert "60 frames, 0.2 min of footage" in version.note and "the source ended before" in version.note
    assert version.state_file == settings.DATA_DIR / "detectors" / str(camera.pk) / "v1.json"
    config = camera.runtime_config()
    assert config["detector_state_path"] == str(version.state_file)

    # The camera's detector, built the way the worker builds it, starts from what was learned:
    # it scores new footage exactly like a detector taught the same frames here.
    taught = MotionDetector(warmup_frames=5)
    with open_source(str(clip)) as source:
        frames = []
        while (frame := source.read()) is not None:
            if frame.index % 2 == 0 and frame.timestamp < 12.0:
                frames.append(analysis_images(frame.image, config["analysis_width"])[1])
    taught.fit([None] + frames, fps=5.0)
    loaded = make_detector(config)
    test = write_clip(tmp_path / "test.mp4", seconds=5.0, seed=7, speed=80.0)
    fresh = MotionDetector(warmup_frames=5)
    a, b, c = [], [], []
    with open_source(str(test)) as source:
        while (frame := source.read()) is not None:
            gray = analysis_images(frame.image, config["analysis_width"])[1]
            a.append(taught.score(gray, frame.timestamp).score)
            b.append(loaded.score(gray, frame.timestamp).score)
            c.append(fresh.score(gray, frame.timestamp).score)
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert np.abs(np.array(a) - np.array(c)).max() > 0.01  # and what was learned matters

    assert run(job) == "not run"  # a done job is not redone
    assert DetectorVersion.objects.count() == 1


def test_learning_versions_the_cameras_health_reference_with_its_normal(api_as, owner, camera, false_alarm,
                                                                         django_capture_on_commit_callbacks):
    """"Learn what is normal now" also learns the camera's health reference (covered, moved, dark...) from
    the same footage, stored beside the detector's state as the same version; the worker gets it in the
    camera's config; a false alarm's version keeps the reference it refines; a restore brings back its own."""
    from inference.e2e import make_health

    (v1,) = learned_versions(camera, owner, 1)
    camera.refresh_from_db()
    assert v1.health_file == settings.DATA_DIR / "detectors" / str(camera.pk) / "v1.health.json"
    reference = json.loads(v1.health_file.read_text())
    assert reference["fitted"] and reference["samples"] > 10
    config = camera.runtime_config()
    assert config["health"]["state_path"] == str(v1.health_file)
    assert make_health(config).fitted  # the worker's monitor starts from it: no online learning first
    assert not list(v1.state_file.parent.glob("job-*"))  # no work file left behind

    with django_capture_on_commit_callbacks(execute=True):
        resolve(api_as, owner, false_alarm)
    run(LearningJob.objects.get(kind="feedback"))
    v2 = DetectorVersion.objects.get(number=2)
    assert json.loads(v2.health_file.read_text()) == reference

    Camera.objects.filter(pk=camera.pk).update(health_params={"enabled": False})
    run(learning_start(camera=Camera.objects.get(pk=camera.pk), by=owner, minutes=0.5))
    v3 = DetectorVersion.objects.get(number=3)
    assert json.loads(v3.health_file.read_text()) == reference  # no monitor: the reference carries on
    Camera.objects.filter(pk=camera.pk).update(health_params={"width": 128})
    run(learning_start(camera=Camera.objects.get(pk=camera.pk), by=owner, minutes=0.5))
    v4 = DetectorVersion.objects.get(number=4)
    assert json.loads(v4.health_file.read_text())["width"] == 128
    restored = detector_version_restore(camera=Camera.objects.get(pk=camera.pk), version=v1, by=owner)
    camera.refresh_from_db()
    assert camera.active_detector_version == restored
    assert camera.runtime_config()["health"]["state_path"] == str(v1.health_file)


def test_refit_builds_on_the_active_version(owner, camera):
    Camera.objects.filter(pk=camera.pk).update(detector="learner", source_url="demo://?seed=2&width=160&height=90")
    camera.refresh_from_db()
    run(learning_start(camera=camera, by=owner, minutes=0.5))
    first = DetectorVersion.objects.get()
    assert json.loads(first.state_file.read_text()) == {"fitted": 150, "fed": 0}
    job = learning_start(camera=Camera.objects.get(pk=camera.pk), by=owner, minutes=0.5, mode="refit")
    run(job)
    second = DetectorVersion.objects.get(number=2)
    assert second.based_on == first and json.loads(second.state_file.read_text()) == {"fitted": 300, "fed": 0}
    job = learning_start(camera=Camera.objects.get(pk=camera.pk), by=owner, minutes=0.5)  # fresh again
    run(job)
    assert json.loads(DetectorVersion.objects.get(number=3).state_file.read_text())["fitted"] == 150


def test_progress_is_stored_and_pushed_while_learning(owner, camera, monkeypatch):
    Camera.objects.filter(pk=camera.pk).update(detector="learner", source_url="demo://?seed=2&width=160&height=90")
    seen = []
    real = tasks.learning_job_progress

    def spy(**kwargs):
        real(**kwargs)
        seen.append(LearningJob.objects.values_list("status", "progress", "message").get(pk=kwargs["job_id"]))

    monkeypatch.setattr(tasks, "learning_job_progress", spy)
    monkeypatch.setattr(tasks, "PROGRESS_INTERVAL", 0.0)
    run(learning_start(camera=Camera.objects.get(pk=camera.pk), by=owner, minutes=1))
    assert len(seen) >= 10 and all(status == "running" for status, _, _ in seen)
    progress = [p for _, p, _ in seen]
    assert progress == sorted(progress) and progress[-1] >= 0.9
    assert "Learning from the camera's footage" in seen[len(seen) // 2][2]


def test_a_failed_job_says_why_and_changes_nothing_stored(owner, file_camera, clip):
    camera = file_camera
    run(learning_start(camera=camera, by=owner, minutes=0.5))
    camera.refresh_from_db()
    before = camera.active_detector_version
    clip.unlink()  # the camera's file is gone by the time the next job runs
    job = learning_start(camera=camera, by=owner, minutes=0.5)
    assert run(job) == "failed"
    job.refresh_from_db()
    camera.refresh_from_db()
    assert job.status == "failed" and "file not found" in job.message and job.version is None
    assert camera.active_detector_version == before and DetectorVersion.objects.count() == 1
    assert before.state_file.is_file()
    assert list(before.state_file.parent.glob("job-*")) == []


def test_a_state_that_does_not_load_back_fails_the_job(owner, camera, monkeypatch):
    Camera.objects.filter(pk=camera.pk).update(detector="learner", source_url="demo://?seed=2&width=160&height=90")

    def refuse(self, state):
        raise ValueError("state from another planet")

    job = learning_start(camera=Camera.objects.get(pk=camera.pk), by=owner, minutes=0.5)
    monkeypatch.setattr(Learner, "load_state_dict", refuse)
    assert run(job) == "failed"
    job.refresh_from_db()
    assert "state from another planet" in job.message and not DetectorVersion.objects.exists()


# -- restore ------------------------------------------------------------------------------------------------
def learned_versions(camera, owner, count):
    Camera.objects.filter(pk=camera.pk).update(detector="learner", source_url="demo://?seed=2&width=160&height=90")
    for minutes in [0.5, 1, 2][:count]:
        run(learning_start(camera=Camera.objects.get(pk=camera.pk), by=owner, minutes=minutes))
    return list(DetectorVersion.objects.filter(camera=camera).order_by("number"))


def test_restore_makes_an_earlier_version_active_again(api_as, owner, camera):
    v1, v2 = learned_versions(camera, owner, 2)
    response = api_as(owner).post(url(camera, "detector-versions/1/restore/"))
    assert response.status_code == 200
    body = response.json()
    assert (body["number"], body["source"], body["based_on"], body["active"]) == (3, "restore", 1, True)
    camera.refresh_from_db()
    assert camera.active_detector_version.number == 3
    assert camera.runtime_config()["detector_state_path"] == str(v1.state_file)
    listed = api_as(owner).get(url(camera, "detector-versions/")).json()["results"]
    assert [(v["number"], v["active"]) for v in listed] == [(3, True), (2, False), (1, False)]
    assert listed[2]["created_by"] == "owner" and listed[2]["frames"] == 150 and listed[2]["source"] == "learn-live"
    assert api_as(owner).post(url(camera, "detector-versions/9/restore/")).status_code == 404


def test_restore_refuses_a_version_of_another_detector_or_a_missing_state(api_as, owner, camera):
    v1, v2 = learned_versions(camera, owner, 2)
    Camera.objects.filter(pk=camera.pk).update(detector="motion")
    response = api_as(owner).post(url(camera, "detector-versions/1/restore/"))
    assert response.status_code == 400
    assert response.json()["version"] == ["Version 1 was learned for detector 'learner'; the camera uses 'motion'."]
    camera.refresh_from_db()
    assert "detector_state_path" not in camera.runtime_config()  # a state is only used by its own detector
    Camera.objects.filter(pk=camera.pk).update(detector="learner")
    v1.state_file.unlink()
    response = api_as(owner).post(url(camera, "detector-versions/1/restore/"))
    assert response.status_code == 400 and "is missing" in response.json()["version"][0]


def test_restore_checks_the_version_belongs_to_the_camera(owner, camera):
    (v1,) = learned_versions(camera, owner, 1)
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="belongs to another camera"):
        detector_version_restore(camera=CameraFactory(detector="learner"), version=v1, by=owner)


# -- operator feedback --------------------------------------------------------------------------------------
@pytest.fixture
def false_alarm(camera, tmp_path):
    """An event of a 'learner' camera with a real WebM clip under MEDIA_ROOT."""
    Camera.objects.filter(pk=camera.pk).update(detector="learner")
    name = "events/clips/2026/01/01/false-alarm.webm"
    path = settings.MEDIA_ROOT / name
    path.parent.mkdir(parents=True, exist_ok=True)
    write_clip(path, seconds=3.0, fps=5.0, fourcc="VP80")
    return EventFactory(camera=camera, clip=name)


def resolve(api_as, user, event, false_alarm=True):
    return api_as(user).post(f"/api/v1/events/{event.pk}/resolve/", {"false_alarm": false_alarm}, format="json")


def test_a_false_alarm_queues_feedback_on_commit_and_the_detector_learns_it(api_as, owner, camera, false_alarm,
                                                                            learning_queued,
                                                                            django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert resolve(api_as, owner, false_alarm).status_code == 200
    assert not LearningJob.objects.exists()  # nothing before the status change is committed
    with django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            callback()
    job = LearningJob.objects.get()
    assert (job.kind, job.status, job.event_id, job.created_by) == ("feedback", "queued", false_alarm.pk, owner)
    assert learning_queued == [job.pk]
    assert run(job) == "done"
    version = DetectorVersion.objects.get()
    assert version.source == "feedback" and version.note.startswith(f"False alarm {false_alarm.pk}")
    assert json.loads(version.state_file.read_text()) == {"fitted": 0, "fed": 15}  # every frame of the clip
    camera.refresh_from_db()
    assert camera.active_detector_version == version


def test_feedback_refines_the_active_version(api_as, owner, camera, false_alarm, django_capture_on_commit_callbacks):
    (v1,) = learned_versions(camera, owner, 1)
    with django_capture_on_commit_callbacks(execute=True):
        resolve(api_as, owner, false_alarm)
    run(LearningJob.objects.get(kind="feedback"))
    version = DetectorVersion.objects.get(number=2)
    assert version.based_on == v1 and json.loads(version.state_file.read_text()) == {"fitted": 150, "fed": 15}


def test_resolving_as_real_or_twice_queues_no_more_feedback(api_as, owner, camera, false_alarm,
                                                           django_capture_on_commit_callbacks):
    other = EventFactory(camera=camera, clip=false_alarm.clip.name)
    with django_capture_on_commit_callbacks(execute=True):
        resolve(api_as, owner, other, false_alarm=False)
        resolve(api_as, owner, false_alarm)
        resolve(api_as, owner, false_alarm)
    assert LearningJob.objects.filter(kind="feedback").count() == 1


@pytest.mark.parametrize("case,note", [
    ("no clip", "Skipped: the event has no clip to learn from."),
    ("no feedback", "Skipped: the detector 'static' does not learn from operator feedback."),
])
def test_feedback_is_skipped_with_a_note(api_as, owner, camera, false_alarm, learning_queued,
                                         django_capture_on_commit_callbacks, case, note):
    if case == "no clip":
        false_alarm.clip = ""
        false_alarm.save()
    else:
        Camera.objects.filter(pk=camera.pk).update(detector="static")
    with django_capture_on_commit_callbacks(execute=True):
        assert resolve(api_as, owner, false_alarm).status_code == 200
    job = LearningJob.objects.get()
    assert (job.status, job.message, job.version) == ("done", note, None) and learning_queued == []
    false_alarm.refresh_from_db()
    assert false_alarm.status == "false_alarm"


def test_feedback_whose_clip_went_away_is_skipped_by_the_task(api_as, owner, camera, false_alarm,
                                                              django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        resolve(api_as, owner, false_alarm)
    (settings.MEDIA_ROOT / false_alarm.clip.name).unlink()
    job = LearningJob.objects.get()
    assert run(job) == "skipped"
    job.refresh_from_db()
    assert job.status == "done" and "clip is gone" in job.message and not DetectorVersion.objects.exists()


def test_feedback_waits_behind_a_running_learning_job(api_as, owner, camera, false_alarm, learning_queued,
                                                      django_capture_on_commit_callbacks):
    Camera.objects.filter(pk=camera.pk).update(source_url="demo://?seed=2&width=160&height=90")
    live = learning_start(camera=Camera.objects.get(pk=camera.pk), by=owner, minutes=0.5)
    assert learning_job_claim(job_id=live.pk) is not None  # a worker is running it
    with django_capture_on_commit_callbacks(execute=True):
        resolve(api_as, owner, false_alarm)  # not refused: it queues behind
    feedback = LearningJob.objects.get(kind="feedback")
    assert run(feedback) == "not run" and LearningJob.objects.get(pk=feedback.pk).status == "queued"
    learning_queued.clear()
    LearningJob.objects.filter(pk=live.pk).update(status="queued")
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.detector_learn(live.pk) == "done"
    assert learning_queued == [feedback.pk]  # the finished job hands over to the waiting one
    assert run(feedback) == "done"
    assert [v.source for v in DetectorVersion.objects.order_by("number")] == ["learn-live", "feedback"]


# -- the camera page ------------------------------------------------------------------------------------------
def test_operator_sees_the_learning_controls_and_a_viewer_does_not(client, owner, viewer, camera):
    client.force_login(owner)
    html = client.get(reverse("camera-page", args=[camera.pk])).content.decode()
    assert 'id="learning"' in html and 'data-action="learn"' in html and 'name="clips"' in html
    assert 'data-action="restore"' in html and "js/learning.js" in html
    assert f'data-versions-url="/api/v1/cameras/{camera.pk}/detector-versions/"' in html
    for minutes in (1, 5, 60):
        assert f'<option value="{minutes}"' in html
    client.force_login(viewer)
    html = client.get(reverse("camera-page", args=[camera.pk])).content.decode()
    assert 'id="learning"' not in html and 'data-action="learn"' not in html and "learning.js" not in html
    assert 'data-action="restore"' not in html


def test_operator_starts_learning_from_the_page(client, owner, viewer, camera, learning_queued,
                                                django_capture_on_commit_callbacks):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("camera-page-learn", args=[camera.pk]), {"minutes": "5"})
    assert response.status_code == 302 and response.url.endswith("#learning")
    job = LearningJob.objects.get()
    assert (job.kind, job.minutes, job.created_by) == ("live", 5.0, owner) and learning_queued == [job.pk]
    response = client.post(reverse("camera-page-learn", args=[camera.pk]), {"minutes": "5"}, follow=True)
    assert "Learning did not start: Learning job" in response.content.decode()
    client.force_login(viewer)
    assert client.post(reverse("camera-page-learn", args=[camera.pk]), {"minutes": "5"}).status_code == 403
    assert client.get(reverse("camera-page-learn", args=[camera.pk])).status_code == 405


def test_operator_uploads_clips_and_restores_from_the_page(client, owner, viewer, camera, tmp_path):
    learned_versions(camera, owner, 2)
    client.force_login(owner)
    clip = write_clip(tmp_path / "normal.mp4", seconds=1.0)
    with open(clip, "rb") as f:
        client.post(reverse("camera-page-learn", args=[camera.pk]), {"clips": [f]})
    assert LearningJob.objects.filter(kind="upload").count() == 1
    response = client.post(reverse("camera-page-restore", args=[camera.pk, 1]), follow=True)
    assert "Version 1 is active again (as version 3)." in response.content.decode()
    client.force_login(viewer)
    assert client.post(reverse("camera-page-restore", args=[camera.pk, 1])).status_code == 403
    assert DetectorVersion.objects.count() == 3


def test_camera_page_queries_stay_bounded_with_versions_and_jobs(client, owner, camera,
                                                                django_assert_max_num_queries):
    learned_versions(camera, owner, 3)
    client.force_login(owner)
    with django_assert_max_num_queries(12):  # 10 + the open-alerts badge (2)
        assert client.get(reverse("camera-page", args=[camera.pk])).status_code == 200


# -- the live "learning" message ------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
async def test_subscribers_get_learning_messages_of_their_cameras_only(camera, viewer, owner):
    other = await sync_to_async(CameraFactory)()
    token = await sync_to_async(lambda: str(RefreshToken.for_user(viewer).access_token))()
    comm = WebsocketCommunicator(application, f"/ws/stream/?token={token}", headers=[(b"origin", b"http://localhost")])
    assert (await comm.connect(timeout=5))[0]
    await comm.send_to(text_data=json.dumps({"action": "subscribe", "camera": camera.pk, "frames": False}))
    assert json.loads(await comm.receive_from(timeout=5))["type"] == "subscribed"
    # Starting a job pushes it once committed (here the test runs in autocommit).
    await sync_to_async(learning_start)(camera=other, by=None, minutes=1)
    job = await sync_to_async(learning_start)(camera=camera, by=owner, minutes=1)
    message = json.loads(await comm.receive_from(timeout=5))
    assert message == {"type": "learning", "camera": camera.pk, "job": job.pk, "kind": "live", "status": "queued",
                       "progress": 0.0, "message": "Waiting for the inference worker", "version": None}
    await sync_to_async(learning_job_progress)(job_id=job.pk, progress=0.5, message="half")  # not running: no-op
    await sync_to_async(learning_job_claim)(job_id=job.pk)
    assert json.loads(await comm.receive_from(timeout=5))["status"] == "running"
    await sync_to_async(learning_job_progress)(job_id=job.pk, progress=0.5, message="half way")
    message = json.loads(await comm.receive_from(timeout=5))
    assert (message["status"], message["progress"], message["message"]) == ("running", 0.5, "half way")
    await sync_to_async(learning_broadcast)(job_id=job.pk + 1000)  # a job that is gone: nothing, no error
    assert await comm.receive_nothing(timeout=0.3)  # the other camera's job never reached this viewer
    await comm.disconnect()


def test_a_false_alarm_stops_firing_once_the_motion_detector_learned_it(api_as, owner, file_camera, tmp_path,
                                                                        django_capture_on_commit_callbacks):
    """End to end with the default detector: learn the scene, mark a fast crossing a false alarm, and the
    camera's detector (rebuilt from the new active version, as the worker does) scores the same crossing lower."""
    camera = file_camera
    normal = write_clip(tmp_path / "scene.mp4", seconds=90.0, fps=10.0)
    Camera.objects.filter(pk=camera.pk).update(detector_params={"warmup_frames": 5}, source_url=str(normal))
    run(learning_start(camera=Camera.objects.get(pk=camera.pk), by=owner, minutes=1.5))
    name = "events/clips/2026/01/02/fast.webm"
    path = settings.MEDIA_ROOT / name
    path.parent.mkdir(parents=True, exist_ok=True)
    write_clip(path, seconds=4.0, fps=5.0, fourcc="VP80", speed=160.0, seed=4)
    event = EventFactory(camera=camera, clip=name)

    def peak():
        detector = make_detector(Camera.objects.select_related("active_detector_version").get(pk=camera.pk)
                                 .runtime_config())
        scores = []
        with open_source(str(path)) as source:
            while (frame := source.read()) is not None:
                scores.append(detector.score(analysis_images(frame.image, 360)[1], frame.timestamp).score)
        return max(scores)

    before = peak()
    with django_capture_on_commit_callbacks(execute=True):
        resolve(api_as, owner, event)
    assert run(LearningJob.objects.get(kind="feedback")) == "done"
    after = peak()
    assert DetectorVersion.objects.get(number=2).source == "feedback"
    assert before > camera.threshold > after, (before, after)


def test_deleting_a_camera_removes_its_versions_and_state_files(api_as, owner, camera,
                                                               django_capture_on_commit_callbacks):
    v1, v2 = learned_versions(camera, owner, 2)
    folder = v1.state_file.parent
    assert folder.is_dir()
    with django_capture_on_commit_callbacks(execute=True):
        assert api_as(owner).delete(f"/api/v1/cameras/{camera.pk}/").status_code == 204
    assert not DetectorVersion.objects.exists() and not LearningJob.objects.exists() and not folder.exists()


def test_admin_lists_versions_and_jobs_and_restores(client, owner, camera):
    from tests.factories import UserFactory

    v1, v2 = learned_versions(camera, owner, 2)
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    assert client.get(reverse("admin:cameras_learningjob_changelist")).status_code == 200
    page = client.get(reverse("admin:cameras_detectorversion_changelist"))
    assert page.status_code == 200 and "Restore the selected version" in page.content.decode()
    response = client.post(reverse("admin:cameras_detectorversion_changelist"),
                           {"action": "restore_versions", "_selected_action": [v1.pk]}, follow=True)
    assert "version 1 restored as version 3" in response.content.decode()
    camera.refresh_from_db()
    assert camera.active_detector_version.based_on == v1
    assert client.get(reverse("admin:cameras_camera_change", args=[camera.pk])).status_code == 200
