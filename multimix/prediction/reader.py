"""Images for prediction: files (PNG/JPEG 8/16-bit, raw JSRT, DICOM) and uploaded bytes.

The format of uploaded bytes is decided by their content (magic numbers), never by a file
name, so a renamed file cannot slip another decoder in.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from multimix.data.dicom import DICOM_SUFFIXES, PREAMBLE, is_dicom_bytes, read_dicom
from multimix.data.io import missing_file_reason, read_image_file
from multimix.data.pixels import ImageReadError, UnsupportedImageError
from multimix.data.raster import decode_raster

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".img", ".dcm", ".dicom"})
_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"


def sniff_format(data: bytes) -> str | None:
    """``"png"``, ``"jpeg"`` or ``"dicom"`` from the leading bytes, else ``None``."""
    if data.startswith(_PNG):
        return "png"
    if data.startswith(_JPEG):
        return "jpeg"
    if is_dicom_bytes(data):
        return "dicom"
    return None


def decode_image_bytes(data: bytes, *, name: str = "upload") -> np.ndarray:
    """Decode PNG, JPEG or DICOM bytes into float32 ``(H, W)`` in ``[0, 1]``.

    Raises:
        ImageReadError: naming ``name``, if the bytes are no such image or cannot be decoded
            (truncated, corrupt, DICOM without pydicom installed).
    """
    kind = sniff_format(data)
    if kind is None:
        raise _not_an_image(data, name)
    if kind == "dicom":
        return read_dicom(data, name)
    return decode_raster(io.BytesIO(data), name)


def _not_an_image(head: bytes, name: str) -> ImageReadError:
    if not head:
        return ImageReadError(f"{name}: empty file (0 bytes)")
    return UnsupportedImageError(f"{name}: not a PNG, JPEG or DICOM image (judged by its content)")


def read_input_image(path: str | Path) -> np.ndarray:
    """Read an image file for prediction: PNG or JPEG of any bit depth, DICOM (by content, or a
    ``.dcm`` name on content that is no other format), or raw JSRT ``.IMG`` (by suffix: the
    format has no header). The content decides: a PNG named ``.dcm`` is read as a PNG.

    Raises:
        ImageReadError: naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: {missing_file_reason(path)}")
    if path.suffix.lower() != ".img":
        try:
            with open(path, "rb") as handle:
                head = handle.read(PREAMBLE + 4)
        except OSError as err:
            raise ImageReadError(f"{path}: cannot open ({err.strerror})") from err
        if sniff_format(head) is None and path.suffix.lower() not in DICOM_SUFFIXES:
            raise _not_an_image(head, str(path))
    return read_image_file(str(path))
