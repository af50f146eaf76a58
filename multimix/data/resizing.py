"""The one resize from a decoded image to the model's input grid, shared by the training caches
and prediction, so a file gives the network the same pixels whichever way it arrives.

Images are resized to ``S x S`` without keeping the aspect ratio (as the paper did), linearly
with anti-aliasing, and stored as float16 (the caches' precision; prediction rounds the same
way). Masks are resized linearly and re-thresholded at 0.5.
"""

from __future__ import annotations

import numpy as np
from skimage.transform import resize


def resize_image(pixels: np.ndarray, size: int) -> np.ndarray:
    """A float ``(H, W)`` image in ``[0, 1]`` as float16 ``(size, size)``."""
    return resize(pixels, (size, size), order=1, anti_aliasing=True, preserve_range=True).astype(np.float16)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A binary ``(H, W)`` mask as uint8 ``(size, size)`` in ``{0, 1}``."""
    return (resize(mask.astype(np.float32), (size, size), order=1, anti_aliasing=False) >= 0.5).astype(np.uint8)
