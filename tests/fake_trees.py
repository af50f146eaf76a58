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
    voi_function: str | None = None,
    slope: float = 1.0,
    intercept: float = 0.0,
    bits_stored: int = 12,
    patient: str = "P1",
    syntax: str | None = None,
    pixel_data: bool = True,
) -> Path:
    """A DX DICOM of ``pixels`` (unsigned 16-bit words), compressed to ``syntax`` when given;
    ``voi_function`` is its VOI LUT Function (LINEAR when absent)."""
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
    if voi_function is not None:
        ds.VOILUTFunction = voi_function
    if pixel_data:
        ds.PixelData = pixels.astype(np.uint16).tobytes()
        if syntax is not None:
            ds.compress(syntax)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def grey_image(path: Path, image: np.ndarray) -> Path:
    """Write a float image in ``[0, 1]`` as an 8-bit PNG or JPEG (by ``path``'s suffix); a 0/1 mask as 0/255."""
    path.parent.mkdir(parents=True, exist_ok=True)
    io.imsave(path, np.round(np.asarray(image, np.float32) * 255).astype(np.uint8), check_contrast=False)
    return path


class _Cases:
    """Synthetic chest X-rays of one site handed out one at a time: (image, lung mask, label)."""

    def __init__(self, site: str, n: int, seed: int, side: int = 48):
        from multimix.data.synthetic.generator import generate_arrays

        self.images, self.masks, self.labels = generate_arrays(n, site=site, image_size=side, seed=seed)
        self.next = 0

    def take(self, label: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
        for i in range(self.next, len(self.labels)):
            if label is None or self.labels[i] == label:
                self.labels[[self.next, i]] = self.labels[[i, self.next]]
                self.images[[self.next, i]] = self.images[[i, self.next]]
                self.masks[[self.next, i]] = self.masks[[i, self.next]]
                self.next += 1
                return self.images[self.next - 1], self.masks[self.next - 1], int(self.labels[self.next - 1])
        raise ValueError(f"no synthetic case of label {label} left")


def published_root(root: Path, seed: int = 0) -> Path:
    """A data root in the publishers' layouts, of the library's synthetic chest X-rays (so labels
    and masks mean what they say), big enough for tiny budgets (4 masks, 8 labels): ``chex``,
    ``jsrt`` (PNG conversion and two raw images), ``montgomery``, ``shenzhen``, ``nih``; and a
    hospital's own data beside it: ``site/`` (class folders, ``images/`` + ``masks/`` and a
    ``labels.csv`` holding both), ``site-b/`` and ``mine/`` (class folders), ``hospital-b/`` and
    ``xrays/`` (unlabeled images)."""
    chex, jsrt, nih = _Cases("chex", 260, seed), _Cases("jsrt", 40, seed), _Cases("nih", 24, seed)
    patient = 0
    for split, count in (("train", 14), ("val", 2), ("test", 8)):
        for _ in range(count):
            patient += 1
            grey_image(root / "chex/chest_xray" / split / "NORMAL" / f"IM-{patient:04d}-0001.jpeg", chex.take(0)[0])
            grey_image(
                root / "chex/chest_xray" / split / "PNEUMONIA" / f"person{patient}_bacteria_1.jpeg", chex.take(1)[0]
            )
    for i in range(1, 15):
        image, mask, _ = jsrt.take()
        grey_image(root / "jsrt/png/images" / f"JPCLN{i:03d}.png", image)
        grey_image(root / "jsrt/png/masks" / f"JPCLN{i:03d}.png", mask)
    for i in range(1, 3):  # raw: 2048x2048 big-endian 12-bit, high value = dark, no header
        raw = root / "jsrt/All247images" / f"JPCNN{i:03d}.IMG"
        raw.parent.mkdir(parents=True, exist_ok=True)
        image = np.kron(jsrt.take()[0], np.ones((2048 // 48 + 1,) * 2))[:2048, :2048]
        np.round((1 - image) * 4095).astype(">u2").tofile(raw)
    for i in range(8):
        for name, prefix, mask_of in (("montgomery", "MCUCXR", "ManualMask"), ("shenzhen", "CHNCXR", "mask")):
            image, mask, _ = jsrt.take()
            stem = f"{prefix}_{i:04d}_{i % 2}"
            grey_image(root / name / "CXR_png" / f"{stem}.png", image)
            if name == "montgomery":  # one file per lung
                half = mask.shape[1] // 2
                grey_image(
                    root / name / mask_of / "leftMask" / f"{stem}.png", np.pad(mask[:, :half], ((0, 0), (0, half)))
                )
                grey_image(
                    root / name / mask_of / "rightMask" / f"{stem}.png", np.pad(mask[:, half:], ((0, 0), (half, 0)))
                )
            else:
                grey_image(root / name / mask_of / f"{stem}_mask.png", mask)
    rows = ["Image Index,Finding Labels,Follow-up #,Patient ID"]
    for i in range(12):
        image, _, label = nih.take(i % 2)
        name = f"{i + 1:08d}_000.png"
        grey_image(root / "nih/images" / name, image)
        rows.append(f"{name},{'Pneumonia' if label else 'No Finding'},0,{i + 1}")
    touch(root / "nih/Data_Entry_2017.csv", "\n".join(rows) + "\n")
    lines = ["path,label,patient,mask"]
    for i in range(24):
        label = i % 2
        name = ("normal", "pneumonia")[label]
        grey_image(root / "site" / name / f"c{i:02d}.png", chex.take(label)[0])
        image, mask, _ = chex.take(label)
        grey_image(root / "site/images" / f"s{i:02d}.png", image)
        grey_image(root / "site/masks" / f"s{i:02d}.png", mask)
        lines.append(f"images/s{i:02d}.png,{name},P{i // 2},{f'masks/s{i:02d}.png' if i < 12 else ''}")
        for folder in ("site-b", "mine"):
            grey_image(root / folder / name / f"b{i:02d}.png", chex.take(label)[0])
        grey_image(root / "hospital-b" / f"h{i:02d}.png", chex.take(label)[0])
        grey_image(root / "xrays" / f"x{i:02d}.png", chex.take(label)[0])
    touch(root / "site/labels.csv", "\n".join(lines) + "\n")
    return root
