"""Reading a record's pixels as float32 ``[0, 1]`` arrays, with errors that name the file."""

from __future__ import annotations

import numpy as np
from skimage import io as skio
from skimage.color import rgb2gray, rgba2rgb

from .records import Record


class ImageReadError(ValueError):
    """An image or mask file is missing, cannot be decoded, or has unusable content."""


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


def read_image_file(path: str) -> np.ndarray:
    """Decode a PNG/JPEG (8- or 16-bit, gray or colour) into float32 ``(H, W)`` in ``[0, 1]``."""
    try:
        pixels = skio.imread(path)
    except FileNotFoundError as err:
        raise ImageReadError(f"{path}: file not found") from err
    except Exception as err:  # decoders raise many types for truncated/corrupt files
        raise ImageReadError(f"{path}: cannot decode image ({type(err).__name__}: {err})") from err
    return to_unit_float(pixels, path=path)


def read_record_image(record: Record) -> np.ndarray:
    """The record's image as float32 ``(H, W)`` in ``[0, 1]`` (in-memory or from its file)."""
    if record.image is not None:
        return record.image
    if record.image_path is None:
        raise ImageReadError(f"record {record.uid}: has neither pixels nor an image path")
    return read_image_file(record.image_path)


def read_record_mask(record: Record) -> np.ndarray | None:
    """The record's binary lung mask as uint8 ``(H, W)`` in ``{0, 1}``, or ``None`` if it has none.

    Several mask files (e.g. separate left and right lungs) are merged by union.
    """
    if record.mask is not None:
        return record.mask
    if not record.mask_paths:
        return None
    merged = None
    for path in record.mask_paths:
        part = read_image_file(path) > 0.5
        if merged is not None and part.shape != merged.shape:
            raise ImageReadError(f"{path}: mask size {part.shape} differs from {record.mask_paths[0]} {merged.shape}")
        merged = part if merged is None else merged | part
    return merged.astype(np.uint8)
