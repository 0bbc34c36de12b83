"""Tasks on the ``inference`` queue (routed there by CELERY_TASK_ROUTES)."""

import logging

from celery import shared_task

log = logging.getLogger(__name__)

FULL_RETRIES = 12


@shared_task(bind=True, max_retries=FULL_RETRIES)
def camera_run(self, camera_id: int) -> str:
    """Run the camera on this worker unless another worker already does. Safe to run twice."""
    from cameras.services import camera_note_unplaced

    from .worker import get_manager

    result = get_manager(self.request.hostname).start(int(camera_id))
    if result == "full":
        if self.request.retries >= FULL_RETRIES:
            camera_note_unplaced(camera_id=int(camera_id), error="Every inference worker is full.")
            return result
        # Back to the queue: a worker with room may take it.
        raise self.retry(countdown=5)
    log.info("camera_run(%s): %s", camera_id, result)
    return result
