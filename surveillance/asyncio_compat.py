"""A cancellation-safe ``asyncio.wait_for`` on Python 3.11 (the one this project runs on).

Python 3.11's ``asyncio.wait_for`` loses a cancellation that arrives while the awaited operation
completes: it returns the operation's result instead of raising ``CancelledError`` (CPython
gh-86296; 3.12 rebuilt ``wait_for`` on ``asyncio.timeout``, which counts cancellations). redis-py
wraps every write in ``wait_for`` when the connection has a ``socket_timeout``, as the channel
layer's connections do (``CHANNEL_SOCKET_TIMEOUT``). So a WebSocket consumer's channel-layer
receive that was cancelled (the socket closed) while it was writing a Redis command ran on
forever, a ``BZPOPMIN`` every few seconds on a channel nobody reads, and whatever awaited its end
(the consumer's teardown, a test's event loop) waited forever. That hung CI once in a while.

``install()`` replaces ``asyncio.wait_for`` with 3.12's implementation, on Python < 3.12 only. It
runs when the ``surveillance`` package is imported, which every process of the project does
(settings, ASGI, Celery, manage.py), before redis-py or Channels make their first call.
"""

from __future__ import annotations

import asyncio
import sys


async def wait_for(fut, timeout):
    """``asyncio.wait_for`` as Python 3.12 has it: a cancellation from outside is never lost."""
    if timeout is not None and timeout <= 0:
        fut = asyncio.ensure_future(fut)
        if fut.done():
            return fut.result()
        fut.cancel()
        await asyncio.wait([fut])
        try:
            return fut.result()
        except asyncio.CancelledError as exc:
            raise TimeoutError from exc
    async with asyncio.timeout(timeout):
        return await fut


wait_for._cancellation_safe = True  # type: ignore[attr-defined]


def install() -> bool:
    """Put the safe ``wait_for`` in place (Python < 3.12). Returns whether it replaced anything."""
    if sys.version_info >= (3, 12) or getattr(asyncio.wait_for, "_cancellation_safe", False):
        return False
    asyncio.wait_for = wait_for
    asyncio.tasks.wait_for = wait_for
    return True
