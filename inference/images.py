"""Image conversions shared by the model backends (frames are BGR numpy arrays from OpenCV)."""

from __future__ import annotations

import numpy as np


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
