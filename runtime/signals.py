"""Celery worker hooks: an inference worker sets up its cameras' process before taking any task.

Connected by ``RuntimeConfig.ready``. The worker process (OpenCV, models) is imported only in a
worker that consumes the ``inference`` queue, never in the web process.
"""

from celery.signals import worker_ready, worker_shutdown


@worker_ready.connect
def _start_inference(sender=None, **kwargs):
    """An inference worker replays its event log (and dead workers' logs) before any camera."""
    queues = {q.name for q in sender.app.amqp.queues.consume_from.values()} if sender else set()
    if "inference" in queues:
        from .process import get_manager

        get_manager(sender.hostname)


@worker_shutdown.connect
def _stop_inference(**kwargs):
    from . import process

    if process.started():
        process.shutdown()
