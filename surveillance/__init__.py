"""The project: settings, URLs, ASGI and Celery wiring, /health/, /metrics and the live figures.

The top layer: it may import every app; no app imports it.
"""

from . import asyncio_compat

asyncio_compat.install()  # before redis-py and Channels run: see the module

from .celery import app as celery_app  # noqa: E402

__all__ = ("celery_app",)
