"""The Celery application: settings from Django (``CELERY_*``), tasks from every app's tasks.py.

Inference workers set up their cameras at start (runtime/signals.py). Queues: ``inference``
(runtime/tasks.py) and ``default`` (everything else); beat schedules: surveillance/schedules.py.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "surveillance.settings")

app = Celery("surveillance")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
