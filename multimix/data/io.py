"""Reading a record's pixels as float32 ``[0, 1]`` arrays, with errors that name the file: the
one dispatcher to the raster (:mod:`multimix.data.raster`), raw JSRT (:mod:`multimix.data.jsrt_raw`)
and DICOM (:mod:`multimix.data.dicom`) readers, which share the rules of :mod:`multimix.data.pixels`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from multimix.data.dicom import DICOM_SUFFIXES, has_dicom_signature, read_dicom
from multimix.data.jsrt_raw import read_jsrt_raw
from multimix.data.pixels import ImageReadError
from multimix.data.raster import RASTER_SUFFIXES, decode_raster, raster_format
from multimix.data.records import Record

# a mask may be stored at another resolution (SCR: half the JSRT size) but not another shape
ASPECT_TOLERANCE = 0.02


def is_dicom_file(path: str | Path) -> bool:
    """Whether to read ``path`` as DICOM: the DICOM signature in its first bytes, or a
    ``.dcm``/``.dicom`` name on content that is no other image format (the content decides:
    a PNG named ``.dcm`` is a PNG)."""
    if has_dicom_signature(path):
        return True
    return Path(path).suffix.lower() in DICOM_SUFFIXES and raster_format(path) is None


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
        if is_dicom_file(path):
            return read_dicom(path)
    return decode_raster(path, str(path))


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
