"""The worker side with the real database and Redis: claim, lease, heartbeat, stop, restart."""

import functools

import pytest

from cameras.live import lease_key, live_workers
from cameras.models import Camera
from cameras.services import camera_start, camera_stop, camera_update
from runtime.lease import RedisLease
from runtime.process import create_logger, create_manager, create_pool
from tests import waiting
from tests.factories import CameraFactory

pytestmark = pytest.mark.django_db(transaction=True)

wait_for = functools.partial(waiting.wait_for, timeout=15.0, step=0.1)


@pytest.fixture
def fast(settings, tmp_path):
    settings.WORKER_HEARTBEAT_SECONDS = 0.3
    settings.CAMERA_LEASE_SECONDS = 3
    settings.EVENT_LOG_DIR = tmp_path / "eventlog"
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings


@pytest.fixture
def make_manager(fast):
    made = []

    def make(worker):
        logger = create_logger(worker).start()
        manager = create_manager(worker, logger, create_pool())
        made.append((manager, logger))
        return manager

    yield make
    for manager, logger in made:
        manager.close()
        logger.close()


def started_camera(**fields):
    camera = CameraFactory(**fields)
    return camera_start(camera=camera, by=None)


def test_a_started_camera_runs_and_reports_frames(make_manager):
    camera = started_camera(source_url="demo://?seed=4")
    manager = make_manager("worker-a")
    assert manager.start(camera.id) == "started"
    assert manager.start(camera.id) == "running"  # a second dispatch is harmless
    assert wait_for(lambda: Camera.objects.get(pk=camera.id).measured_fps > 2)
    camera.refresh_from_db()
    assert camera.state == "running" and camera.worker == "worker-a"
    assert camera.last_frame_at is not None and camera.heartbeat_at is not None
    assert live_workers()["worker-a"] == [camera.id]


def test_each_camera_runs_on_exactly_one_worker(make_manager):
    camera = started_camera()
    a, b = make_manager("worker-a"), make_manager("worker-b")
    assert a.start(camera.id) == "started"
    assert b.start(camera.id) == "elsewhere"
    assert camera.id not in b.cameras


def test_stop_through_the_service_stops_the_loop(make_manager):
    camera = started_camera()
    manager = make_manager("worker-a")
    manager.start(camera.id)
    assert wait_for(lambda: Camera.objects.get(pk=camera.id).state == "running")
    camera_stop(camera=camera, by=None)
    assert wait_for(lambda: camera.id not in manager.cameras and Camera.objects.get(pk=camera.id).worker == "")
    camera.refresh_from_db()
    assert (camera.enabled, camera.state, camera.worker) == (False, "stopped", "")
    assert RedisLease("probe", 3).r.get(lease_key(camera.id)) is None


def test_changed_settings_restart_the_camera_with_them(make_manager):
    camera = started_camera()
    manager = make_manager("worker-a")
    manager.start(camera.id)
    first = manager.cameras[camera.id].system
    camera_update(camera=Camera.objects.get(pk=camera.id), by=None, threshold=0.9)
    assert wait_for(lambda: camera.id in manager.cameras and manager.cameras[camera.id].system is not first)
    assert manager.cameras[camera.id].system.threshold == 0.9


def test_capacity_is_a_setting(make_manager, fast):
    fast.MAX_CAMERAS_PER_WORKER = 1
    one, two = started_camera(), started_camera()
    manager = make_manager("worker-a")
    assert manager.start(one.id) == "started"
    assert manager.start(two.id) == "full"


def test_a_bad_source_shows_an_error_naming_the_cause_and_others_carry_on(make_manager, tmp_path):
    bad_file = tmp_path / "notes.mp4"
    bad_file.write_text("this is not a video")
    bad = started_camera(source_url=str(bad_file))
    good = started_camera(source_url="demo://?seed=5")
    manager = make_manager("worker-a")
    manager.start(bad.id)
    manager.start(good.id)
    assert wait_for(lambda: Camera.objects.get(pk=bad.id).state == "error")
    assert Camera.objects.get(pk=bad.id).last_error
    assert wait_for(lambda: Camera.objects.get(pk=good.id).measured_fps > 2)


def test_the_run_task_is_safe_to_run_twice(fast, monkeypatch, make_manager):
    from runtime import tasks

    manager = make_manager("worker-t")
    monkeypatch.setattr(tasks, "get_manager", lambda hostname=None: manager)
    camera = started_camera()
    assert tasks.camera_run.apply(args=[camera.id]).get() == "started"
    assert tasks.camera_run.apply(args=[camera.id]).get() == "running"
    stopped = CameraFactory()
    assert tasks.camera_run.apply(args=[stopped.id]).get() == "gone"


def test_redispatch_queues_enabled_cameras_without_heartbeat(fast, dispatched):
    from django.utils import timezone

    from cameras.tasks import cameras_redispatch

    orphan = started_camera()
    CameraFactory()  # not enabled: left alone
    fresh = started_camera()
    Camera.objects.filter(pk=fresh.pk).update(heartbeat_at=timezone.now())
    dispatched.clear()
    assert cameras_redispatch.apply().get() == [orphan.id]
    assert dispatched == [orphan.id]
