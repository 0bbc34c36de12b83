import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "surveillance.settings")

app = Celery("surveillance")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from celery.signals import worker_ready, worker_shutdown  # noqa: E402


@worker_ready.connect
def _start_inference(sender=None, **kwargs):
    """An inference worker replays its event log (and dead workers' logs) before any camera."""
    queues = {q.name for q in sender.app.amqp.queues.consume_from.values()} if sender else set()
    if "inference" in queues:
        from inference.worker import get_manager

        get_manager(sender.hostname)


@worker_shutdown.connect
def _stop_inference(**kwargs):
    from inference.worker import shutdown

    shutdown()
