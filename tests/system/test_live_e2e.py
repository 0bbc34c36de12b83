"""Real daphne, a real Celery worker and real Redis; a real WebSocket client on real footage."""

import asyncio
import json
import time

import pytest
import websockets
from guardian.shortcuts import assign_perm
from rest_framework_simplejwt.tokens import AccessToken

from cameras.services import camera_start
from runtime.tasks import camera_run
from tests.conftest import dataset
from tests.factories import CameraFactory, UserFactory
from tests.system.processes import Processes, process_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def processes():
    procs = Processes()
    yield procs
    procs.stop()


def test_websocket_client_gets_frames_and_an_event_from_real_footage(processes, tmp_path, settings):
    clip = dataset("ucsd-ped1/videos/testing/Test024.mp4")
    settings.MEDIA_ROOT = tmp_path / "media"
    user = UserFactory()
    camera = CameraFactory(source_url=str(clip), threshold=0.45)
    assign_perm("view_camera", user, camera)
    env = process_env(tmp_path, WORKER_HEARTBEAT_SECONDS=1)
    port = processes.daphne(env)
    processes.worker(env)
    camera_start(camera=camera, by=None)
    camera_run.apply_async(args=[camera.id])  # the real broker (the suite records .delay only)

    async def watch():
        token = AccessToken.for_user(user)
        url = f"ws://127.0.0.1:{port}/ws/stream/?token={token}"
        frames, events = 0, []
        async with websockets.connect(url, origin=f"http://127.0.0.1:{port}", max_size=2**22) as ws:
            await ws.send(json.dumps({"action": "subscribe", "camera": camera.id, "fps": 5}))
            assert json.loads(await ws.recv())["type"] == "subscribed"
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline and not (frames >= 5 and events):
                try:
                    message = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))
                except asyncio.TimeoutError:
                    continue
                if message["type"] == "frame":
                    frames += 1
                elif message["type"] == "event":
                    events.append(message["event"])
        return frames, events

    frames, events = asyncio.run(watch())
    assert frames >= 5, processes.output()
    assert events, processes.output()
    assert events[0]["camera"] == camera.id and events[0]["peak_score"] >= 0.45
