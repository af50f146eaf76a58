"""DICOM chest X-rays as display images, one way for training caches, evaluation, ``predict`` and
the web app.

A PACS export stores detector values, not a picture: the modality LUT (rescale slope and
intercept, or a LUT) turns them into output units, the VOI LUT or window centre/width the file
carries says which range a radiologist sees, and ``MONOCHROME1`` means high values are dark. So
the pixels are, in order:

1. refused from the header (before any pixel is decoded) above the megapixel limit counting every
   frame, or when the header does not describe the pixel data (its length, a NaN rescale);
2. decoded (compressed transfer syntaxes such as JPEG, JPEG 2000 or RLE through pydicom's
   plugins: ``pip install "multimix[dicom]"``);
3. put through the modality LUT, then the file's VOI LUT or first window, both by pydicom
   (``apply_modality_lut``, ``apply_voi_lut``; the VOI LUT Function ``LINEAR``, ``LINEAR_EXACT``
   or ``SIGMOID`` of PS3.3 C.11.2); a file without either gets the 0.5th-99.5th percentile
   window (the one raw JSRT files get);
4. scaled to ``[0, 1]`` over the VOI transform's output range and inverted for ``MONOCHROME1``.

A multi-frame file gives its first frame (the only one decoded); a colour file (secondary
captures) its luminance.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from multimix.data.pixels import (
    READ_WINDOW_PERCENTILES,
    ImageReadError,
    check_pixel_count,
    linear_window,
    to_unit_float,
)

DICOM_SUFFIXES = (".dcm", ".dicom")
PREAMBLE = 128  # "DICM" follows a 128-byte preamble
COLOUR_LUMINANCE = (0.299, 0.587, 0.114)  # BT.601 luma of a colour (secondary capture) file
INSTALL_HINT = 'pip install "multimix[dicom]"'
REQUIRED_IMAGE_KEYS = ("Rows", "Columns", "BitsAllocated", "SamplesPerPixel", "PhotometricInterpretation")


def is_dicom_bytes(head: bytes) -> bool:
    """True when ``head`` (at least 132 bytes of a file) carries the DICOM part-10 signature."""
    return head[PREAMBLE : PREAMBLE + 4] == b"DICM"


def has_dicom_signature(path: str | Path) -> bool:
    """True when the file's first bytes carry the DICOM signature, whatever its name."""
    try:
        with open(path, "rb") as handle:
            return is_dicom_bytes(handle.read(PREAMBLE + 4))
    except OSError:
        return False


def read_dicom(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """A DICOM file (path or bytes) as float32 ``(H, W)`` in ``[0, 1]``, display polarity.

    Raises:
        ImageReadError: naming the file: pydicom missing, no DICOM signature, no pixel data, a
            header that does not describe its pixel data (length, frames, NaN rescale), above the
            megapixel limit (all frames counted), a decoder missing for its transfer syntax, or corrupt.
    """
    label = name or (str(source) if not isinstance(source, bytes) else "DICOM bytes")
    try:
        import pydicom
        from pydicom.errors import InvalidDicomError
    except ImportError:
        raise ImageReadError(f"{label}: reading DICOM needs pydicom ({INSTALL_HINT})") from None
    try:
        dataset = pydicom.dcmread(io.BytesIO(source) if isinstance(source, bytes) else source)
    except InvalidDicomError as err:
        raise ImageReadError(f"{label}: not a DICOM file (no 'DICM' signature after its 128-byte preamble)") from err
    except Exception as err:  # pydicom raises many kinds for a damaged file
        raise ImageReadError(f"{label}: not a readable DICOM file ({_plain(err)})") from err
    frames = check_dicom_header(dataset, label)
    pixels = _decoded(dataset, label, frames)
    try:
        return _display(pixels, dataset, label)
    except ImageReadError:
        raise
    except Exception as err:  # a LUT or window that does not fit the pixels
        raise ImageReadError(f"{label}: cannot apply the file's LUT or window ({_plain(err)})") from err


def check_dicom_header(dataset: Any, label: str) -> int:
    """The number of frames of a file whose header describes its pixels. Refused, before any
    pixel is decoded: no pixel data, a required key missing, a size or frame count that is not a
    positive number, above the megapixel limit over all its frames, uncompressed pixel data of
    another length than ``Rows x Columns x frames x samples x bits``, or a rescale or window that
    is not finite."""
    if "PixelData" not in dataset:
        raise ImageReadError(f"{label}: DICOM file without pixel data (a report or structured document?)")
    missing = [key for key in REQUIRED_IMAGE_KEYS if key not in dataset]
    if missing:
        raise ImageReadError(f"{label}: DICOM header lacks {', '.join(missing)}, which its pixel data needs")
    rows, columns, frames = (_positive(dataset, key, label) for key in ("Rows", "Columns", "NumberOfFrames"))
    check_pixel_count(columns, rows, name=label, frames=frames)
    for key in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth"):
        if key in dataset and dataset[key].value is not None and not _all_finite(dataset[key].value):
            raise ImageReadError(f"{label}: DICOM {key} is {dataset[key].value!r}, not a finite number")
    syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is not None and not syntax.is_compressed:
        _check_native_length(dataset, rows * columns, frames, label)
    return frames


def _positive(dataset: Any, key: str, label: str) -> int:
    """A header count that must be a whole number of at least 1 (``NumberOfFrames`` defaults to 1)."""
    value = dataset.get(key, 1) if key == "NumberOfFrames" else dataset.get(key)
    try:
        number = int(value if value not in (None, "") else 1)
    except (TypeError, ValueError):
        raise ImageReadError(f"{label}: DICOM {key} is {value!r}, not a whole number") from None
    if number < 1:
        raise ImageReadError(f"{label}: DICOM {key} is {number}; an image needs at least 1")
    return number


def _check_native_length(dataset: Any, frame_pixels: int, frames: int, label: str) -> None:
    """Uncompressed pixel data must hold exactly the pixels its header declares (plus the one
    padding byte that makes a DICOM element even)."""
    samples, bits = int(dataset.SamplesPerPixel), int(dataset.BitsAllocated)
    pixels = frame_pixels * frames
    expected = (pixels * samples + 7) // 8 if bits == 1 else pixels * samples * (bits // 8)
    actual = len(dataset.PixelData)
    if actual not in (expected, expected + expected % 2):
        raise ImageReadError(
            f"{label}: its pixel data holds {actual} bytes, but the header's {dataset.Rows}x{dataset.Columns} "
            f"pixels x {frames} frame(s) x {samples} sample(s) at {bits} bits need {expected}: truncated, or "
            "the header does not describe the data"
        )


def _all_finite(value: Any) -> bool:
    values = [value] if isinstance(value, str | bytes | int | float) else list(value)
    try:
        return all(math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


def _display(pixels: np.ndarray, dataset: Any, label: str) -> np.ndarray:
    """Modality LUT, then the file's VOI LUT or first window through pydicom (the VOI LUT
    Function LINEAR, LINEAR_EXACT or SIGMOID), scaled over that function's output range; a file
    without either gets the percentile window. MONOCHROME1 is inverted."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    values = np.asarray(apply_modality_lut(pixels, dataset), dtype=np.float64)
    voi = _voi_kind(dataset)
    if voi is None:
        display = linear_window(values, *(float(v) for v in np.percentile(values, READ_WINDOW_PERCENTILES)))
    else:
        windowed = np.asarray(apply_voi_lut(values, dataset, index=0, prefer_lut=True), dtype=np.float64)
        display = linear_window(windowed, *_voi_output_range(dataset, voi))
    if str(getattr(dataset, "PhotometricInterpretation", "")).strip() == "MONOCHROME1":
        display = 1.0 - display
    return to_unit_float(np.asarray(display, dtype=np.float32), path=label)


def _voi_kind(dataset: Any) -> str | None:
    """``"lut"`` or ``"window"``: which VOI transform pydicom applies to this file (a LUT before
    a window, as :func:`pydicom.pixels.apply_voi_lut` prefers), or ``None`` for neither."""
    sequence = dataset.get("VOILUTSequence")
    if sequence and None not in (sequence[0].get("LUTDescriptor"), sequence[0].get("LUTData")):
        return "lut"
    if dataset.get("WindowCenter") is not None and dataset.get("WindowWidth") is not None:
        return "window"
    return None


def _voi_output_range(dataset: Any, voi: str) -> tuple[float, float]:
    """The values the file's VOI transform gives black and white: a LUT's smallest and largest
    entries; for a window, pydicom's output for values far below and above it (its range
    depends on the bits stored, the sign and the rescale, which pydicom owns)."""
    from pydicom.pixels import apply_voi_lut

    if voi == "lut":
        lut = np.asarray(dataset.VOILUTSequence[0].LUTData, dtype=np.float64)
        return float(lut.min()), float(lut.max())
    with np.errstate(over="ignore"):  # SIGMOID's exp overflows to its limits, as intended
        ends = apply_voi_lut(np.array([-1e30, 1e30]), dataset, index=0, prefer_lut=True)
    return float(ends[0]), float(ends[1])


def _decoded(dataset: Any, label: str, frames: int) -> np.ndarray:
    """The first frame's pixels (luminance of a colour file), only that frame decoded; a missing
    decoder is named, and pixels of another shape than the header's are refused."""
    from pydicom.pixels import pixel_array

    try:
        pixels = np.asarray(pixel_array(dataset, index=0) if frames > 1 else dataset.pixel_array)
    except Exception as err:
        syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", syntax)
        hint = f"; compressed syntaxes need {INSTALL_HINT}" if getattr(syntax, "is_compressed", True) else ""
        raise ImageReadError(
            f"{label}: cannot decode its pixels (transfer syntax {name}{hint}): {_plain(err)}"
        ) from err
    samples = int(dataset.SamplesPerPixel)
    expected = (int(dataset.Rows), int(dataset.Columns)) + ((samples,) if samples > 1 else ())
    if pixels.shape != expected:
        raise ImageReadError(
            f"{label}: its pixels decode to shape {pixels.shape}, but the header declares "
            + "x".join(map(str, expected))
        )
    if pixels.ndim == 3:  # colour (RGB after decoding): luminance
        pixels = pixels[..., :3].astype(np.float64) @ np.array(COLOUR_LUMINANCE)
    return pixels


def _plain(err: Exception) -> str:
    """An error's type and message without object reprs (``<_io.BytesIO object at 0x..>``)."""
    text = re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "the data", str(err))
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
