"""Image conversions shared by the model backends (frames are BGR numpy arrays from OpenCV)."""

from __future__ import annotations

import cv2
import numpy as np


def gray(image):
    """A BGR(A) frame as grayscale; anything else as it is."""
    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] in (3, 4):
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    return image


def bgr(image: np.ndarray) -> np.ndarray:
    """A grayscale frame as BGR (what the object model reads); a BGR frame as it is."""
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image


def to_pil_rgb(image):
    """BGR/BGRA/gray uint8 numpy -> PIL RGB image; None when it is not an image."""
    from PIL import Image

    if not isinstance(image, np.ndarray) or image.size == 0:
        return None
    arr = image
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.stack([arr, arr, arr], axis=-1)
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] in (3, 4):
        arr = arr[:, :, 2::-1]  # BGR(A) -> RGB
    else:
        return None
    return Image.fromarray(np.ascontiguousarray(arr)).convert("RGB")
