"""Reading a record's pixels as float32 ``[0, 1]`` arrays, with errors that name the file."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from skimage.color import rgb2gray, rgba2rgb

from multimix.data.records import Record

# a mask may be stored at another resolution (SCR: half the JSRT size) but not another shape
ASPECT_TOLERANCE = 0.02


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
_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"BM": "BMP",
}


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


def raster_format(path: str | Path) -> str | None:
    """``PNG``, ``JPEG``, ``GIF``, ``TIFF`` or ``BMP`` from a file's first bytes, else ``None``."""
    try:
        return _raster_kind(_head(path))
    except OSError:
        return None


def _raster_kind(head: bytes) -> str | None:
    return next((name for signature, name in _SIGNATURES.items() if head.startswith(signature)), None)


def unreadable_reason(head: bytes) -> str:
    """Why a file starting with ``head`` cannot be decoded, in words a person understands."""
    if not head:
        return "empty file (0 bytes)"
    kind = _raster_kind(head)
    if kind is None:
        return f"not an image: its content is no PNG, JPEG, GIF or TIFF (first bytes {head[:8]!r})"
    return f"the {kind} file is truncated or corrupt"


RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".tif", ".tiff")  # decoded by Pillow
_COLOUR_MODES = ("RGB", "RGBA", "RGBa", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV")


def decode_raster(source: str | Path | BinaryIO, name: str) -> np.ndarray:
    """Decode a PNG/JPEG/GIF/TIFF (a path or a binary stream) into float32 ``(H, W)`` in ``[0, 1]``.

    Every Pillow mode a radiograph export may use is read: gray (``1``, ``L``, ``LA``), 16- and
    32-bit gray (``I;16*``, ``I``), float (``F``), palette and colour (``P``, ``PA``, ``RGB``,
    ``RGBA``, ``CMYK``, ...; converted to gray). Alpha is dropped, not composited: a transparent
    film border keeps its pixel values. The EXIF orientation is applied, so a phone photo of a
    film comes out upright. GIF/TIFF: the first frame. The megapixel limit is checked from the
    header, before the pixels are decoded.

    Raises:
        ImageReadError: naming ``name``, for anything that cannot be decoded.
    """
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():  # our own limit decides, not Pillow's warning threshold
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                width, height = image.size
                check_pixel_count(width, height, name=name)
                image.seek(0)
                pixels = _mode_pixels(ImageOps.exif_transpose(image), name)
    except ImageReadError:
        raise
    except Image.DecompressionBombError as err:
        raise ImageTooLargeError(f"{name}: declares more pixels than any radiograph ({err})") from err
    except Exception as err:  # decoders raise many types for truncated/corrupt files
        raise ImageReadError(f"{name}: cannot decode image: {unreadable_reason(_head(source))}") from err
    return to_unit_float(pixels, path=name)


def _mode_pixels(image, name: str) -> np.ndarray:
    """The pixels of a decoded Pillow image as a gray or RGB array, alpha dropped."""
    mode = image.mode
    if mode in ("L", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        return np.asarray(image)
    if mode in ("1", "LA", "La"):
        return np.asarray(image.convert("L") if mode == "1" else image.getchannel(0))
    if mode == "I":  # 32-bit integers: Pillow's mode for some 16-bit files
        values = np.asarray(image)
        if values.min() < 0 or values.max() > np.iinfo(np.uint16).max:
            raise ImageReadError(f"{name}: 32-bit integer pixels outside the 16-bit range are not supported")
        return values.astype(np.uint16)
    if mode in _COLOUR_MODES:
        return np.asarray(image.convert("RGB"))
    raise ImageReadError(f"{name}: unsupported pixel mode {mode!r}")


def _head(source: str | Path | BinaryIO) -> bytes:
    if isinstance(source, (str, Path)):
        with open(source, "rb") as handle:
            return handle.read(16)
    source.seek(0)
    return source.read(16)


def missing_file_reason(path: str | Path) -> str:
    """Why ``path`` is no readable file: a broken symbolic link (and where it points) or not found."""
    if os.path.islink(path):
        return f"broken symbolic link (points to {os.readlink(path)})"
    return "file not found"


def read_image_file(path: str) -> np.ndarray:
    """Decode an image file into float32 ``(H, W)`` in ``[0, 1]``, display polarity.

    PNG/JPEG/GIF/TIFF (any bit depth and mode, see :func:`decode_raster`) go through Pillow;
    raw JSRT ``.IMG`` files go to :func:`read_jsrt_raw`; DICOM (``.dcm``, or found by its
    content) to :func:`multimix.data.dicom.read_dicom`. An image above the megapixel limit
    (:func:`set_max_megapixels`) is refused from its header.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".img":
        return read_jsrt_raw(path)
    if not os.path.isfile(path):
        raise ImageReadError(f"{path}: {missing_file_reason(path)}")
    if suffix not in RASTER_SUFFIXES:  # a PNG/JPEG/GIF/TIFF by name is not opened twice to rule out DICOM
        from multimix.data.dicom import is_dicom_file, read_dicom  # it builds on this module

        if is_dicom_file(path):
            return read_dicom(path)
    return decode_raster(path, str(path))


JSRT_SIDE = 2048
JSRT_MAX = 4095  # 12-bit detector values stored in 16-bit words
JSRT_WINDOW = (0.5, 99.5)  # percentiles of the display window applied to raw JSRT


def read_jsrt_raw(path: str) -> np.ndarray:
    """Decode a raw JSRT ``.IMG`` file into float32 ``(2048, 2048)`` in ``[0, 1]``.

    The JSRT byte format has no header: 2048 x 2048 unsigned 16-bit big-endian words holding
    12-bit values (0..4095) where a *high* value is *dark* (film density). The pixels are

    1. flipped to display polarity, ``1 - value / 4095``, so air and lungs come out dark and
       bone bright, like every other source;
    2. windowed: raw JSRT is low-contrast (most pixels sit in a narrow band of the 12-bit
       range), so the intensities between the 0.5th and 99.5th percentiles
       (:data:`JSRT_WINDOW`) are rescaled linearly to ``[0, 1]`` and the tails clipped. This is
       a per-image normalisation, robust to the few saturated pixels at the film border.

    Raises :class:`ImageReadError` naming the file if it is missing, has the wrong size
    (expected ``2048 * 2048 * 2`` bytes) or holds values above 4095.
    """
    expected = JSRT_SIDE * JSRT_SIDE * 2
    try:
        actual = os.path.getsize(path)
    except FileNotFoundError as err:
        raise ImageReadError(f"{path}: file not found") from err
    if actual != expected:
        raise ImageReadError(
            f"{path}: not a raw JSRT image: expected {expected} bytes "
            f"({JSRT_SIDE}x{JSRT_SIDE} 16-bit), got {actual} bytes"
        )
    values = np.fromfile(path, dtype=">u2").reshape(JSRT_SIDE, JSRT_SIDE)
    peak = int(values.max())
    if peak > JSRT_MAX:
        raise ImageReadError(f"{path}: value {peak} exceeds the 12-bit JSRT range 0..{JSRT_MAX}")
    display = 1.0 - values.astype(np.float32) / JSRT_MAX
    return _percentile_window(display, *JSRT_WINDOW)


def _percentile_window(pixels: np.ndarray, low_pct: float, high_pct: float) -> np.ndarray:
    """Rescale ``[p_low, p_high]`` linearly to ``[0, 1]``, clipping the tails (float32)."""
    low, high = np.percentile(pixels, (low_pct, high_pct))
    if high <= low:  # a flat image has no window to stretch; keep it as it is
        return np.clip(pixels, 0.0, 1.0).astype(np.float32)
    return np.clip((pixels - low) / (high - low), 0.0, 1.0).astype(np.float32)


def read_record_image(record: Record) -> np.ndarray:
    """The record's image as float32 ``(H, W)`` in ``[0, 1]`` (in-memory or from its file)."""
    if record.image is not None:  # in memory or a float16 cache view: hand out float32
        return np.asarray(record.image, dtype=np.float32)
    if record.image_path is None:
        raise ImageReadError(f"record {record.uid}: has neither pixels nor an image path")
    return read_image_file(record.image_path)


def read_mask_files(
    paths: tuple[str, ...], *, image_shape: tuple[int, int] | None = None, image_path: str | None = None
) -> np.ndarray:
    """Read and merge (union) binary mask files, e.g. separate left and right lungs -> bool ``(H, W)``.

    Raises :class:`ImageReadError` naming the file when a mask is not binary, when the parts
    differ in size, or (given ``image_shape``) when a mask's aspect ratio differs from its image's.
    """
    merged: np.ndarray | None = None
    for path in paths:
        pixels = read_image_file(path)
        levels = np.unique(pixels)
        if levels.size > 2 or (levels.size == 2 and levels[0] != 0):
            raise ImageReadError(f"{path}: mask is not binary (found {levels.size} grey levels)")
        if image_shape is not None:
            _check_aspect(path, pixels.shape, image_path, image_shape)
        part = pixels > 0
        if merged is not None and part.shape != merged.shape:
            raise ImageReadError(f"{path}: mask size {part.shape} differs from {paths[0]} {merged.shape}")
        merged = part if merged is None else merged | part
    if merged is None:
        raise ImageReadError(f"{image_path or 'mask'}: no mask files given")
    return merged


def _check_aspect(path: str, mask_shape: tuple[int, ...], image_path: str | None, image_shape: tuple[int, int]) -> None:
    aspect_image, aspect_mask = image_shape[1] / image_shape[0], mask_shape[1] / mask_shape[0]
    if abs(aspect_image - aspect_mask) > ASPECT_TOLERANCE * aspect_image:
        raise ImageReadError(
            f"{path}: mask size {mask_shape[1]}x{mask_shape[0]} does not match the aspect of its image "
            f"{image_path} ({image_shape[1]}x{image_shape[0]})"
        )


def read_record_mask(record: Record) -> np.ndarray | None:
    """The record's binary lung mask as uint8 ``(H, W)`` in ``{0, 1}``, or ``None`` if it has none.

    Several mask files (e.g. separate left and right lungs) are merged by union.
    """
    if record.mask is not None:
        return np.asarray(record.mask, dtype=np.uint8)
    if not record.mask_paths:
        return None
    return read_mask_files(record.mask_paths).astype(np.uint8)
