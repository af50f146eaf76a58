"""Resized, pre-decoded images and masks on disk, so training never re-decodes the originals.

One cache folder per (source, image size, file list): ``images.npy`` (float16 ``(N, S, S)``),
``masks.npy`` (uint8 ``(N, S, S)``) and ``index.json`` (uids, which have masks, what was
skipped and why). The folder name carries a hash of the file list (paths, sizes, modification
times), the size and :data:`CACHE_VERSION`, so a changed dataset gets a new cache. A build goes
to a temporary folder renamed into place at the end: an interrupted build leaves nothing that
could be mistaken for a finished cache. Every open checks the index against its checksum and the
arrays against the index (byte counts, shapes, uids); a damaged cache (truncated copy, edited
index) is named, moved aside to ``<folder>.corrupt-<time>`` and built again.

Images and masks are resized by :mod:`multimix.data.resizing` (the resize prediction uses too).
A mask whose aspect ratio differs from its image's, or that is not binary, is an error naming
the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from multimix.data.io import read_image_file, read_mask_files
from multimix.data.pixels import ImageReadError
from multimix.data.records import Record
from multimix.data.resizing import resize_image, resize_mask
from multimix.data.sources.base import check_on_error
from multimix.utils.locks import exclusive_lock

logger = logging.getLogger(__name__)

CACHE_VERSION = 2
ARRAY_FILES = ("images.npy", "masks.npy")


@dataclass
class CachedSource:
    """Records whose pixels come from a cache, and the items the build had to skip."""

    records: list[Record]
    skipped: list[dict[str, str]]
    folder: Path
    built: bool  # False when an existing cache was reused


def cache_key(records: Sequence[Record], image_size: int) -> str:
    """Hash of every file the records name (path, size, mtime), the size and the cache version."""
    digest = hashlib.sha256(f"v{CACHE_VERSION}|{image_size}".encode())
    for record in sorted(records, key=lambda r: r.uid):
        for path in (record.image_path, *record.mask_paths):
            if path is None:
                continue
            stat = os.stat(path)
            digest.update(f"|{record.uid}|{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _build(records: Sequence[Record], size: int, folder: Path, *, on_error: str, progress: bool, desc: str) -> None:
    images = np.lib.format.open_memmap(
        folder / "images.npy", mode="w+", dtype=np.float16, shape=(len(records), size, size)
    )
    masks = np.lib.format.open_memmap(folder / "masks.npy", mode="w+", dtype=np.uint8, shape=(len(records), size, size))
    kept: list[str] = []
    has_mask: list[bool] = []
    shapes: list[list[int]] = []
    skipped: list[dict[str, str]] = []
    for record in tqdm(records, desc=desc, disable=not progress, unit="img"):
        try:
            pixels = read_image_file(record.image_path)
            mask = None
            if record.mask_paths:
                mask = read_mask_files(record.mask_paths, image_shape=pixels.shape, image_path=record.image_path)
        except ImageReadError as err:
            if on_error == "raise":
                raise
            skipped.append({"uid": record.uid, "path": str(record.image_path), "reason": str(err)})
            continue
        row = len(kept)
        images[row] = resize_image(pixels, size)
        if mask is not None:
            masks[row] = resize_mask(mask, size)
        kept.append(record.uid)
        has_mask.append(mask is not None)
        shapes.append(list(pixels.shape))
    images.flush()
    masks.flush()
    index = {
        "version": CACHE_VERSION,
        "image_size": size,
        "uids": kept,
        "has_mask": has_mask,
        "original_shape": shapes,
        "skipped": skipped,
        "file_bytes": {name: (folder / name).stat().st_size for name in ARRAY_FILES},
    }
    (folder / "index.json").write_text(json.dumps({**index, "checksum": _checksum(index)}))


def _checksum(index: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(index, sort_keys=True).encode()).hexdigest()


def build_cache(
    records: Sequence[Record],
    image_size: int,
    cache_dir: str | Path,
    *,
    name: str,
    on_error: str = "raise",
    progress: bool = True,
) -> CachedSource:
    """Decode, validate and resize ``records`` once; reuse the cache when the files are unchanged.

    Returns records whose ``image``/``mask`` are views into the on-disk arrays (read lazily).
    ``on_error="skip"`` leaves undecodable files out and lists them with the reason.
    """
    check_on_error(on_error)
    cache_dir = Path(cache_dir)
    folder = cache_dir / f"{name}-{image_size}px-{cache_key(records, image_size)}"
    if (folder / "index.json").exists():
        with contextlib.suppress(CorruptCacheError):  # rebuilt below, under the lock
            return _open(records, folder, image_size, built=False)
    # one builder per cache: a second process waits for the first and then reuses its result
    with exclusive_lock(
        cache_dir / f".{folder.name}.lock", what=f"the cache {folder}", wait=True, on_wait=logger.warning
    ):
        built = not _usable(records, folder, image_size)
        if built:
            tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=cache_dir))
            try:
                _build(
                    records, image_size, tmp, on_error=on_error, progress=progress, desc=f"cache {name} {image_size}px"
                )
                os.replace(tmp, folder)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    return _open(records, folder, image_size, built)


def _usable(records: Sequence[Record], folder: Path, size: int) -> bool:
    """Whether ``folder`` holds a valid cache; an invalid one is named and moved aside."""
    if not folder.exists():
        return False
    try:
        _validated(folder, records, size)
    except CorruptCacheError as err:
        aside = folder.with_name(f"{folder.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(folder, aside)
        logger.warning(f"warning: {err}; moved it to {aside} and building it again")
        return False
    return True


def _open(records: Sequence[Record], folder: Path, size: int, built: bool) -> CachedSource:
    index, images, masks = _validated(folder, records, size)
    by_uid = {r.uid: r for r in records}
    cached = [
        replace(
            by_uid[uid],
            image=images[row],
            mask=masks[row] if index["has_mask"][row] else None,
            meta={**by_uid[uid].meta, "original_shape": tuple(index["original_shape"][row])},
        )
        for row, uid in enumerate(index["uids"])
    ]
    return CachedSource(cached, index["skipped"], folder, built)


class CorruptCacheError(ValueError):
    """A cache folder whose index or arrays are damaged (truncated, edited, half copied)."""


def _validated(folder: Path, records: Sequence[Record], size: int) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """The index and the two arrays of a cache, after checking that they fit together.

    Raises:
        CorruptCacheError: naming the folder and what is wrong.
    """
    try:
        index = json.loads((folder / "index.json").read_text())
        checksum = index.pop("checksum", None)
        if checksum is not None and checksum != _checksum(index):
            raise ValueError("index.json does not match its checksum (edited or damaged)")
        for name, expected in index.get("file_bytes", {}).items():
            if (folder / name).stat().st_size != expected:
                raise ValueError(f"{name} has {(folder / name).stat().st_size} bytes, its index says {expected}")
        images = np.load(folder / "images.npy", mmap_mode="r")
        masks = np.load(folder / "masks.npy", mmap_mode="r")
        _check_index(index, images, masks, records, size)
    except CorruptCacheError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CorruptCacheError(f"the cache {folder} is damaged: {err}") from err
    return index, images, masks


def _check_index(
    index: dict[str, Any], images: np.ndarray, masks: np.ndarray, records: Sequence[Record], size: int
) -> None:
    kept = len(index["uids"])
    if index["version"] != CACHE_VERSION or index["image_size"] != size:
        raise ValueError(f"index.json describes version {index['version']} at {index['image_size']} px")
    if len(index["has_mask"]) != kept or len(index["original_shape"]) != kept:
        raise ValueError("index.json lists different numbers of images, masks and shapes")
    for name, array in (("images.npy", images), ("masks.npy", masks)):
        if array.ndim != 3 or array.shape[0] < kept or array.shape[1:] != (size, size):
            raise ValueError(f"{name} has shape {array.shape}, the index needs {kept} x {size} x {size}")
    unknown = set(index["uids"]) - {r.uid for r in records}
    if unknown:
        raise ValueError(f"index.json names {len(unknown)} images the data does not have")
