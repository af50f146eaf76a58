"""The pixel rules every reader shares: the read errors, grey float32 in ``[0, 1]``, the
megapixel limit checked from a header, and the linear and percentile windows."""

from __future__ import annotations

import numpy as np
from skimage.color import rgb2gray, rgba2rgb

# the display window of raw JSRT files and of DICOM files that carry none: the 0.5th-99.5th
# percentiles, robust to the few saturated pixels at a film's border
READ_WINDOW_PERCENTILES = (0.5, 99.5)


class ImageReadError(ValueError):
    """An image or mask file is missing, cannot be decoded, or has unusable content."""


class UnsupportedImageError(ImageReadError):
    """The content is no image format multimix reads (judged by its bytes, not its name)."""


class ImageTooLargeError(ImageReadError):
    """An image declares more pixels than the megapixel limit (refused before decoding)."""


def to_unit_float(pixels: np.ndarray, *, path: str = "<array>") -> np.ndarray:
    """Convert a decoded 2-D/3-D array (uint8, uint16, float) to grayscale float32 in ``[0, 1]``."""
    if pixels.ndim == 3:
        pixels = rgb2gray(rgba2rgb(pixels) if pixels.shape[-1] == 4 else pixels[..., :3])
    if pixels.ndim != 2:
        raise ImageReadError(f"{path}: expected a 2-D grayscale or RGB image, got shape {pixels.shape}")
    if np.issubdtype(pixels.dtype, np.integer):
        pixels = pixels.astype(np.float32) / np.iinfo(pixels.dtype).max
    pixels = np.asarray(pixels, dtype=np.float32)
    if not np.isfinite(pixels).all():
        raise ImageReadError(f"{path}: image contains NaN or infinite values")
    return np.clip(pixels, 0.0, 1.0)


DEFAULT_MAX_MEGAPIXELS = 100.0  # about 5x the largest radiograph detector (43 x 43 cm at 0.1 mm: 18.5 MP)
_max_megapixels = DEFAULT_MAX_MEGAPIXELS


def set_max_megapixels(limit: float) -> None:
    """The largest image (width x height / 1e6) any reader of this process decodes; larger
    files are refused from their header, before their pixels take memory (pixel bombs)."""
    global _max_megapixels
    if limit <= 0:
        raise ValueError(f"the megapixel limit must be above 0, got {limit}")
    _max_megapixels = float(limit)


def max_megapixels() -> float:
    return _max_megapixels


def check_pixel_count(width: int, height: int, name: str, limit: float | None = None, frames: int = 1) -> None:
    """:class:`ImageTooLargeError` naming ``name`` if ``frames`` images of ``width x height``
    pixels exceed the megapixel limit together."""
    limit = _max_megapixels if limit is None else limit
    total = width * height * frames
    if total > limit * 1e6:
        what = f"{width}x{height} pixels" if frames == 1 else f"{frames} frames of {width}x{height} pixels"
        raise ImageTooLargeError(
            f"{name}: declares {what} ({total / 1e6:.0f} megapixels), above the limit of {limit:g}; "
            "raise --max-megapixels if this really is one image"
        )


def linear_window(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """``values`` between ``low`` (black) and ``high`` (white) as float32 ``[0, 1]``, the tails
    clipped; a window without width gives black."""
    if high <= low:
        return np.zeros(np.shape(values), dtype=np.float32)
    return np.clip((np.asarray(values, dtype=np.float64) - low) / (high - low), 0.0, 1.0).astype(np.float32)


def percentile_window(pixels: np.ndarray, percentiles: tuple[float, float] = READ_WINDOW_PERCENTILES) -> np.ndarray:
    """The ``percentiles`` range of ``pixels`` stretched linearly to ``[0, 1]`` (float32), the
    tails clipped; a flat image has no range to stretch and keeps its values (clipped to ``[0, 1]``)."""
    low, high = (float(v) for v in np.percentile(pixels, percentiles))
    if high <= low:
        return np.clip(pixels, 0.0, 1.0).astype(np.float32)
    return linear_window(pixels, low, high)
