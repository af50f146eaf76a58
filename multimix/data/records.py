"""The one record type every data source produces."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from multimix.config.run_info import DEFAULT_CLASS_NAMES

NORMAL, PNEUMONIA = 0, 1
CLASS_NAMES = DEFAULT_CLASS_NAMES


@dataclass
class Record:
    """One chest X-ray as a data source describes it.

    Either ``image`` holds the pixels in memory (float32 ``(H, W)`` in ``[0, 1]``, used by the
    synthetic source) or ``image_path`` points to a file on disk. ``label`` is the class index
    (0 normal, 1 pneumonia) or ``None`` when the source has no class label; ``mask`` /
    ``mask_paths`` likewise hold the binary lung mask when the source has one.
    """

    uid: str
    source: str
    label: int | None = None
    image: np.ndarray | None = None
    mask: np.ndarray | None = None
    image_path: str | None = None
    mask_paths: tuple[str, ...] = ()
    patient_id: str = ""
    split: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def has_mask(self) -> bool:
        return self.mask is not None or bool(self.mask_paths)

    @property
    def has_label(self) -> bool:
        return self.label is not None


def file_key(path: str | os.PathLike) -> str:
    """One string per file however its path is spelled: absolute, symlinks and ``..`` resolved
    (records keep their own path; this only tells whether two paths are one image)."""
    return os.path.realpath(path)


def image_identity(record: Record) -> str:
    """A short, path-free fingerprint of a record's file (its uid for in-memory images), so a
    checkpoint can remember which images chose its threshold without storing a hospital's paths."""
    if record.image_path:
        return file_identity(record.image_path)
    return hashlib.sha256(f"uid:{record.uid}".encode()).hexdigest()[:16]


def file_identity(path: str | os.PathLike) -> str:
    """:func:`image_identity` of the image file at ``path``."""
    return hashlib.sha256(file_key(path).encode()).hexdigest()[:16]
