"""Live frames carry the objects followed now: drawn on the JPEG every viewer gets, and listed in the header."""

import cv2
import numpy as np

from inference.base import Frame
from runtime.frames import FramePublisher
from tests.waiting import wait_for

OBJECTS = ({"track": 4, "label": "person", "confidence": 0.8, "box": [0.25, 0.25, 0.5, 0.75], "since": 1.0},)


class Layer:
    def __init__(self):
        self.sent = []

    async def group_send(self, group, message):
        self.sent.append(message)


def publisher():
    pub = FramePublisher(Layer(), client=None, width=640, quality=90)
    pub.tiers = lambda camera_id: {5}
    return pub


def sent(pub):
    assert wait_for(lambda: pub.layer.sent, timeout=3)
    return pub.layer.sent[0]


def test_the_frame_message_lists_the_objects_and_its_picture_shows_their_boxes():
    image = np.full((240, 320, 3), 60, np.uint8)
    plain, boxed = publisher(), publisher()
    plain.on_frame(1, Frame(image, 1.0, 1), 1.0)
    boxed.on_frame(1, Frame(image, 1.0, 1, objects=OBJECTS), 1.0)
    without, with_boxes = sent(plain), sent(boxed)
    assert without["objects"] == [] and with_boxes["objects"] == [dict(OBJECTS[0])]
    a = cv2.imdecode(np.frombuffer(without["jpeg"], np.uint8), cv2.IMREAD_COLOR)
    b = cv2.imdecode(np.frombuffer(with_boxes["jpeg"], np.uint8), cv2.IMREAD_COLOR)
    edge = b[60:180, 78:82].astype(int) - a[60:180, 78:82].astype(int)  # the box's left side at x = 80
    assert np.abs(edge).max(axis=(1, 2)).min() > 60  # along its whole height
    assert (image == 60).all()  # the source's frame is never drawn on
