"""What the web side asks of the inference runtime: Celery tasks by name, on the ``inference`` queue.

These names are the whole interface between the web apps and runtime/ (which defines the tasks);
the web process never imports the runtime. Call them inside ``transaction.on_commit``.
"""

from celery import current_app

CAMERA_RUN = "runtime.camera_run"
DETECTOR_LEARN = "runtime.detector_learn"


def camera_run(camera_id: int) -> None:
    """Ask a worker with room to run the camera (a worker that already runs it answers "running")."""
    current_app.send_task(CAMERA_RUN, args=[int(camera_id)])


def detector_learn(job_id: int) -> None:
    """Queue a learning job for the worker that runs learning."""
    current_app.send_task(DETECTOR_LEARN, args=[int(job_id)])
