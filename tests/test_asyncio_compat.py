"""surveillance.asyncio_compat: Python 3.11's wait_for lost cancellations, which hung WebSocket teardown."""

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from surveillance import asyncio_compat

ROOT = Path(__file__).resolve().parent.parent


def test_the_project_runs_with_the_cancellation_safe_wait_for():
    # Installed when the surveillance package is imported (settings, ASGI, Celery, manage.py).
    assert asyncio.wait_for is asyncio_compat.wait_for or sys.version_info >= (3, 12)
    assert asyncio_compat.install() is False  # once is enough: a second call changes nothing


async def test_a_cancellation_that_arrives_as_the_operation_completes_is_not_lost():
    # What redis-py's write did on 3.11: the write finished in the same loop turn as the cancel, and
    # the stdlib wait_for returned the write's result, so the cancelled receive carried on.
    written = asyncio.get_running_loop().create_future()

    async def write():
        return await asyncio_compat.wait_for(written, 10)

    task = asyncio.ensure_future(write())
    await asyncio.sleep(0)  # the task now waits on the write
    written.set_result("written")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_results_timeouts_and_the_zero_timeout_behave_as_before():
    assert await asyncio_compat.wait_for(asyncio.sleep(0, result=7), 1) == 7
    assert await asyncio_compat.wait_for(asyncio.sleep(0, result=8), None) == 8

    cancelled = []

    async def slow():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    with pytest.raises(TimeoutError):
        await asyncio_compat.wait_for(slow(), 0.05)
    assert cancelled == [True]  # the operation is stopped, not left running

    done = asyncio.get_running_loop().create_future()
    done.set_result("ready")
    assert await asyncio_compat.wait_for(done, 0) == "ready"
    with pytest.raises(TimeoutError):
        await asyncio_compat.wait_for(slow(), 0)


# Two WebSockets refused before accept (as a client without a valid token is), never disconnected by
# the client, then the event loop torn down as pytest-asyncio does after every test: the consumers'
# channel-layer receives (real Redis) are cancelled mid-connection. With the stdlib wait_for this hung
# within the first 20 loops on this machine, every time; it hung CI in tests/cameras/test_stream_consumer.py.
TEARDOWN = textwrap.dedent("""
    import asyncio, os, sys
    import django
    django.setup()
    from channels.testing import WebsocketCommunicator
    from surveillance.asgi import application

    async def refused_twice():
        for query in ("", "?token=not-a-jwt"):
            comm = WebsocketCommunicator(application, "/ws/stream/" + query,
                                         headers=[(b"origin", b"http://localhost")])
            connected, code = await comm.connect(timeout=5)
            assert (connected, code) == (False, 4401), (connected, code)

    for _ in range(int(sys.argv[1])):
        runner = asyncio.Runner()
        runner.run(refused_twice())
        runner.close()  # cancels every task left, and waits for them
    print("all loops closed")
""")


@pytest.mark.slow
def test_event_loops_with_cancelled_channel_layer_receives_close(tmp_path):
    script = tmp_path / "teardown.py"
    script.write_text(TEARDOWN)
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="surveillance.settings_test", PYTHONPATH=str(ROOT))
    try:
        done = subprocess.run([sys.executable, str(script), "60"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("closing an event loop waited forever on a cancelled channel-layer receive")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "all loops closed" in done.stdout
