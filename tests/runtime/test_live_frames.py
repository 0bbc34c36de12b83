"""Frames from a running camera to WebSocket subscribers: tiers, encode-once, and no watcher -> no work."""

import asyncio
import json
import time

import cv2
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework_simplejwt.tokens import AccessToken

from cameras.services import camera_start
from runtime import frames as frames_module
from runtime.process import create_logger, create_manager, create_pool
from surveillance.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture
def jpeg_encodes(monkeypatch):
    """Count every JPEG encode the worker module does."""
    calls = []
    real = cv2.imencode

    def counting(ext, image, *args):
        calls.append(ext)
        return real(ext, image, *args)

    monkeypatch.setattr(frames_module.cv2, "imencode", counting)
    return calls


@pytest.fixture
def running_manager(settings, tmp_path):
    settings.EVENT_LOG_DIR = tmp_path / "log"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.WORKER_HEARTBEAT_SECONDS = 0.5
    logger = create_logger("frames-test").start()
    manager = create_manager("frames-test", logger, create_pool())
    yield manager
    manager.close()
    logger.close()


async def subscriber(user, camera_id, fps):
    token = AccessToken.for_user(user)
    comm = WebsocketCommunicator(application, f"/ws/stream/?token={token}", headers=[(b"origin", b"http://localhost")])
    assert (await comm.connect(timeout=5))[0]
    await comm.send_to(text_data=json.dumps({"action": "subscribe", "camera": camera_id, "fps": fps}))
    assert json.loads(await comm.receive_from(timeout=5))["type"] == "subscribed"
    return comm


async def count_frames(comm, seconds):
    frames, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        # (a receive that times out would cancel the consumer: poll with receive_nothing instead)
        if await comm.receive_nothing(timeout=0.02, interval=0.005):
            continue
        message = json.loads(await comm.receive_from(timeout=5))
        if message["type"] == "frame":
            frames += 1
    return frames


async def test_no_frame_is_encoded_for_a_camera_nobody_watches(camera, viewer, running_manager, jpeg_encodes):
    camera.source_url = "demo://?seed=8&anomaly_every=1000"
    await sync_to_async(camera.save)()
    await sync_to_async(camera_start)(camera=camera, by=None)
    assert await sync_to_async(running_manager.start)(camera.id) == "started"
    await asyncio.sleep(2.5)
    system = running_manager.cameras[camera.id].system
    assert system.frames >= 8  # the camera was analysed all along
    assert jpeg_encodes == [] and running_manager.callbacks.frames.encoded == 0

    comm = await subscriber(viewer, camera.id, 5)
    assert await count_frames(comm, 3.0) >= 5
    assert running_manager.callbacks.frames.encoded > 0
    await comm.disconnect()


async def test_fps_tiers_share_one_encode_per_frame(camera, viewer, owner, running_manager, jpeg_encodes):
    camera.source_url = "demo://?seed=9&fps=10&anomaly_every=1000"
    await sync_to_async(camera.save)()
    await sync_to_async(camera_start)(camera=camera, by=None)
    await sync_to_async(running_manager.start)(camera.id)
    slow = await subscriber(viewer, camera.id, 1)
    fast = await subscriber(owner, camera.id, 10)
    await asyncio.sleep(1.5)  # the worker notices the new watchers within a second
    await asyncio.gather(count_frames(slow, 0.3), count_frames(fast, 0.3))  # drain what queued meanwhile
    encoded_before = running_manager.callbacks.frames.encoded
    slow_frames, fast_frames = await asyncio.gather(count_frames(slow, 4.0), count_frames(fast, 4.0))
    encoded = running_manager.callbacks.frames.encoded - encoded_before
    assert 3 <= slow_frames <= 6, slow_frames  # about 1 per second
    assert 28 <= fast_frames <= 44, fast_frames  # about 10 per second
    assert encoded <= fast_frames + 4  # one encode serves both tiers
    await slow.disconnect()
    await fast.disconnect()
