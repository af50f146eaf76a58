"""DICOM chest X-rays as display images, one way for training caches, evaluation, ``predict`` and
the web app.

A PACS export stores detector values, not a picture: the modality LUT (rescale slope and
intercept, or a LUT) turns them into output units, the VOI LUT or window centre/width the file
carries says which range a radiologist sees, and ``MONOCHROME1`` means high values are dark. So
the pixels are, in order:

1. refused from the header above the megapixel limit (before any pixel is decoded);
2. decoded (compressed transfer syntaxes such as JPEG, JPEG 2000 or RLE through pydicom's
   plugins: ``pip install "multimix[dicom]"``);
3. put through the modality LUT, then the file's VOI LUT or first window; a file without one gets
   the 0.5th-99.5th percentile window (the one raw JSRT files get);
4. scaled to ``[0, 1]`` over that window and inverted for ``MONOCHROME1``.

A multi-frame file gives its first frame; a colour file (secondary captures) its luminance.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np

from multimix.data.io import ImageReadError, check_pixel_count, to_unit_float

DICOM_SUFFIXES = (".dcm", ".dicom")
PREAMBLE = 128  # "DICM" follows a 128-byte preamble
PERCENTILE_WINDOW = (0.5, 99.5)
INSTALL_HINT = 'pip install "multimix[dicom]"'
REQUIRED_IMAGE_KEYS = ("Rows", "Columns", "BitsAllocated", "SamplesPerPixel", "PhotometricInterpretation")


def is_dicom_bytes(head: bytes) -> bool:
    """True when ``head`` (at least 132 bytes of a file) carries the DICOM part-10 signature."""
    return head[PREAMBLE : PREAMBLE + 4] == b"DICM"


def is_dicom_file(path: str | Path) -> bool:
    """A ``.dcm``/``.dicom`` suffix, or the DICOM signature in the file's first bytes."""
    path = Path(path)
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as handle:
            return is_dicom_bytes(handle.read(PREAMBLE + 4))
    except OSError:
        return False


def read_dicom(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """A DICOM file (path or bytes) as float32 ``(H, W)`` in ``[0, 1]``, display polarity.

    Raises:
        ImageReadError: naming the file: pydicom missing, no pixel data, a decoder missing for
            its transfer syntax, above the megapixel limit, or corrupt.
    """
    label = name or (str(source) if not isinstance(source, bytes) else "DICOM bytes")
    try:
        import pydicom
    except ImportError:
        raise ImageReadError(f"{label}: reading DICOM needs pydicom ({INSTALL_HINT})") from None
    try:
        dataset = pydicom.dcmread(io.BytesIO(source) if isinstance(source, bytes) else source)
    except Exception as err:  # pydicom raises many kinds for a damaged file
        raise ImageReadError(f"{label}: not a readable DICOM file ({_plain(err)})") from err
    if "PixelData" not in dataset:
        raise ImageReadError(f"{label}: DICOM file without pixel data (a report or structured document?)")
    missing = [key for key in REQUIRED_IMAGE_KEYS if key not in dataset]
    if missing:
        raise ImageReadError(f"{label}: DICOM header lacks {', '.join(missing)}, which its pixel data needs")
    check_pixel_count(int(dataset.Columns), int(dataset.Rows), name=label)
    pixels = _decoded(dataset, label)
    try:
        return _display(pixels, dataset, label)
    except ImageReadError:
        raise
    except Exception as err:  # a LUT or window that does not fit the pixels
        raise ImageReadError(f"{label}: cannot apply the file's LUT or window ({_plain(err)})") from err


def _display(pixels: np.ndarray, dataset: Any, label: str) -> np.ndarray:
    """Modality LUT, then the VOI LUT / window of the file (a percentile window without one),
    mapped to ``[0, 1]`` with MONOCHROME1 inverted."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    values = np.asarray(apply_modality_lut(pixels, dataset), dtype=np.float64)
    if "VOILUTSequence" in dataset:
        values = np.asarray(apply_voi_lut(values, dataset, index=0), dtype=np.float64)
        lut = np.asarray(dataset.VOILUTSequence[0].LUTData, dtype=np.float64)
        low, high = float(lut.min()), float(lut.max())
    elif "WindowCenter" in dataset and "WindowWidth" in dataset:
        low, high = _window(dataset)
    else:
        low, high = (float(v) for v in np.percentile(values, PERCENTILE_WINDOW))
    display = np.clip((values - low) / (high - low), 0.0, 1.0) if high > low else np.zeros_like(values)
    if str(getattr(dataset, "PhotometricInterpretation", "")).strip() == "MONOCHROME1":
        display = 1.0 - display
    return to_unit_float(display.astype(np.float32), path=label)


def _decoded(dataset: Any, label: str) -> np.ndarray:
    """The first frame's pixels (luminance of a colour file); a missing decoder is named."""
    try:
        pixels = dataset.pixel_array
    except Exception as err:
        syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", syntax)
        raise ImageReadError(
            f"{label}: cannot decode its pixels (transfer syntax {name}; compressed syntaxes need "
            f"{INSTALL_HINT}): {_plain(err)}"
        ) from err
    pixels = np.asarray(pixels)
    frames = int(getattr(dataset, "NumberOfFrames", 1) or 1)
    if frames > 1:
        pixels = pixels[0]
    if pixels.ndim == 3:  # colour (RGB after decoding): luminance
        pixels = pixels[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return pixels


def _plain(err: Exception) -> str:
    """An error's type and message without object reprs (``<_io.BytesIO object at 0x..>``)."""
    text = re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "the data", str(err))
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _window(dataset: Any) -> tuple[float, float]:
    """The file's first window as the value range DICOM's linear VOI function maps to black and
    white: ``c - 0.5 -/+ (w - 1) / 2`` (PS3.3 C.11.2.1.2)."""
    centre, width = _first(dataset.WindowCenter), _first(dataset.WindowWidth)
    half = max(width - 1.0, 1.0) / 2.0
    return centre - 0.5 - half, centre - 0.5 + half


def _first(value: Any) -> float:
    """A DICOM number, or the first of several (a file may carry more than one window)."""
    if isinstance(value, str | bytes) or not hasattr(value, "__len__"):
        return float(value)
    return float(value[0])
