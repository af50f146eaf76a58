"""Tiny fake dataset trees on disk, in each publisher's layout, for the source tests."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from skimage import io


def png(path: Path, value: int = 128) -> Path:
    """Write an 8x8 grey PNG at ``path`` (parents created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    io.imsave(path, np.full((8, 8), value, np.uint8), check_contrast=False)
    return path


def touch(path: Path, text: str = "") -> Path:
    """Write a small text file (junk, readme, clinical reading...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def montgomery(root: Path, stems: Iterable[str], left: Iterable[str] = (), right: Iterable[str] = ()) -> Path:
    """``CXR_png/<stem>.png`` plus ``ManualMask/{left,right}Mask/<stem>.png`` for the given stems."""
    for stem in stems:
        png(root / "CXR_png" / f"{stem}.png")
    for side, names in (("leftMask", left), ("rightMask", right)):
        for stem in names:
            png(root / "ManualMask" / side / f"{stem}.png", 255)
    return root


def shenzhen(root: Path, stems: Iterable[str], masks: Iterable[str] = (), mask_dir: str = "mask") -> Path:
    """``CXR_png/<stem>.png`` plus ``<mask_dir>/<stem>_mask.png`` for the given stems."""
    for stem in stems:
        png(root / "CXR_png" / f"{stem}.png")
    for stem in masks:
        png(root / mask_dir / f"{stem}_mask.png", 255)
    return root


def pixel_bomb(path: Path, side: int = 12000) -> Path:
    """A PNG whose header declares ``side x side`` 8-bit grey pixels (a few KB on disk)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\x00" * (side + 1) * 16)  # 16 rows: plenty for the header to be read
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", rows)
        + chunk(b"IEND", b"")
    )
    return path


def dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    window: tuple[float, float] | None = None,
    slope: float = 1.0,
    intercept: float = 0.0,
    bits_stored: int = 12,
    patient: str = "P1",
    syntax: str | None = None,
    pixel_data: bool = True,
) -> Path:
    """A DX DICOM of ``pixels`` (unsigned 16-bit words), compressed to ``syntax`` when given."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "DX", patient
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits_stored, bits_stored - 1, 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if pixel_data:
        ds.PixelData = pixels.astype(np.uint16).tobytes()
        if syntax is not None:
            ds.compress(syntax)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
