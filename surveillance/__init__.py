"""The project: settings, URLs, ASGI and Celery wiring, /health/, /metrics and the live figures.

The top layer: it may import every app; no app imports it.
"""

from .celery import app as celery_app

__all__ = ("celery_app",)
