"""Raster files (PNG, JPEG, GIF, TIFF, BMP by their bytes) decoded to grey float32 ``[0, 1]``."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np

from multimix.data.pixels import ImageReadError, ImageTooLargeError, check_pixel_count, to_unit_float

_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"BM": "BMP",
}


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
