"""Tasks of the ``inference`` queue (CELERY_TASK_ROUTES routes ``runtime.*`` there).

The web side queues them by name (cameras/dispatch.py): ``runtime.camera_run`` and
``runtime.detector_learn``. Both take ids and are safe to run twice.
"""

import functools
import logging
import time

from celery import shared_task
from django.conf import settings

from cameras.backends import make_detector
from cameras.selectors import learning_job_plan
from cameras.learning import (
    detector_state_dir, learning_job_claim, learning_job_fail, learning_job_finish, learning_job_progress,
    learning_job_skip,
)
from cameras.live_state import camera_note_unplaced
from cameras.models import health_state_file
from inference.e2e import make_health
from inference.learning import LearningError, learn, save_state
from inference.pool import ResourcePool
from inference.sources import open_source
from siteconfig.selectors import WHERE, camera_networks

from .process import current_pool, get_manager

log = logging.getLogger(__name__)

FULL_RETRIES = 12


@shared_task(bind=True, name="runtime.camera_run", max_retries=FULL_RETRIES)
def camera_run(self, camera_id: int) -> str:
    """Run the camera on this worker unless another worker already does. Safe to run twice."""
    result = get_manager(self.request.hostname).start(int(camera_id))
    if result == "full":
        if self.request.retries >= FULL_RETRIES:
            camera_note_unplaced(camera_id=int(camera_id), error="Every inference worker is full.")
            return result
        # Back to the queue: a worker with room may take it.
        raise self.retry(countdown=5)
    log.info("camera_run(%s): %s", camera_id, result)
    return result


#: Progress reaches the database (and the live push) at most this often, and on every 5 % step.
PROGRESS_INTERVAL = 1.0


class _Progress:
    """The runner's progress callback, throttled into the job row and its live push."""

    def __init__(self, job_id: int, interval: float = PROGRESS_INTERVAL):
        self.job_id = job_id
        self.interval = interval
        self.last_at = 0.0
        self.last_value = -1.0

    def __call__(self, value: float, message: str) -> None:
        now = time.monotonic()
        if now - self.last_at < self.interval and value - self.last_value < 0.05:
            return
        self.last_at, self.last_value = now, value
        learning_job_progress(job_id=self.job_id, progress=value, message=message)


@shared_task(bind=True, name="runtime.detector_learn")
def detector_learn(self, job_id: int) -> str:
    """Run a learning job ("learn what is normal now", uploads, false-alarm feedback). Safe to run twice.

    A finished job is not redone; a job of a camera that already runs one waits (that one queues it
    when it ends). Success stores a new DetectorVersion and makes it active; failure leaves every
    stored version as it was and says why on the job.
    """
    delivery = getattr(self.request, "delivery_info", None) or {}
    job = learning_job_claim(job_id=int(job_id), redelivered=bool(delivery.get("redelivered")))
    if job is None:
        return "not run"
    plan = learning_job_plan(job=job)
    if plan["skip"]:
        learning_job_skip(job_id=job.pk, message=plan["skip"])
        return "skipped"
    config = plan["config"]
    work_file = detector_state_dir(job.camera_id) / f"job-{job.pk}.json"
    health_file = health_state_file(work_file)
    # The worker's models when this process runs cameras (loaded once, held for the job so that the pool's
    # bound does not evict them meanwhile), else the job's own pool; model folders checked against MODEL_ROOTS.
    pool = current_pool()
    own_pool = pool is None
    if own_pool:
        pool = ResourcePool(model_roots=settings.MODEL_ROOTS)
    try:
        with pool.hold():
            detector = make_detector(config, pool, strict_state=True)
            # The camera's health reference is learned afresh from the same footage (not from a false alarm).
            health_params = {k: v for k, v in (config.get("health") or {}).items() if k not in ("state", "state_path")}
            health = make_health({**config, "health": health_params})
            # Stream hosts are checked against the same networks, and the camera's file against the same
            # folders, as when the worker runs the camera (uploaded and feedback clips are the site's own files).
            checks = {"file_roots": settings.CAMERA_FILE_ROOTS} if plan["kind"] == "live" else {}
            opener = functools.partial(open_source, allowed_networks=camera_networks, networks_where=WHERE["camera"],
                                       **checks)
            result = learn(detector, kind=plan["kind"], source_url=config["source_url"], minutes=plan["minutes"],
                           clips=plan["clips"], analysis_fps=config["analysis_fps"], width=config["analysis_width"],
                           progress=_Progress(job.pk), opener=opener, health=health)
            save_state(result.state, work_file)
            if result.health_state is not None:
                save_state(result.health_state, health_file)
            make_detector({**config, "detector_state_path": str(work_file)}, pool, strict_state=True)  # loads back
    except Exception as exc:  # noqa: BLE001 - every failure ends the job with its reason
        if isinstance(exc, LearningError):
            message = str(exc)
        else:
            log.exception("Learning job %s failed", job.pk)
            message = f"Learning failed: {exc}" if str(exc) else f"Learning failed: {type(exc).__name__}"
        work_file.unlink(missing_ok=True)
        health_file.unlink(missing_ok=True)
        learning_job_fail(job_id=job.pk, message=message)
        return "failed"
    finally:
        if own_pool:
            pool.close()
    version = learning_job_finish(job_id=job.pk, state_file=work_file, frames=result.frames, note=result.note)
    log.info("Learning job %s: camera %s version %s", job.pk, job.camera_id, version and version.number)
    return "done" if version is not None else "gone"
