"""Resized, pre-decoded images and masks on disk, so training never re-decodes the originals.

One cache folder per (source, image size, file list): ``images.npy`` (float16 ``(N, S, S)``),
``masks.npy`` (uint8 ``(N, S, S)``) and ``index.json`` (uids, which have masks, what was
skipped and why). The folder name carries a hash of the file list (paths, sizes, modification
times), the size and :data:`CACHE_VERSION`, so a changed dataset gets a new cache. A build goes
to a temporary folder renamed into place at the end: an interrupted build leaves nothing that
could be mistaken for a finished cache.

Images are resized to ``S x S`` without keeping the aspect ratio (as the paper did); masks are
resized with linear interpolation and re-thresholded at 0.5. A mask whose aspect ratio differs
from its image's, or that is not binary, is an error naming the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from skimage.transform import resize
from tqdm.auto import tqdm

from multimix.data.io import ImageReadError, read_image_file, read_mask_files
from multimix.data.records import Record
from multimix.data.sources.base import check_on_error
from multimix.utils.locks import exclusive_lock

logger = logging.getLogger(__name__)

CACHE_VERSION = 2


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


def _resize_image(pixels: np.ndarray, size: int) -> np.ndarray:
    return resize(pixels, (size, size), order=1, anti_aliasing=True, preserve_range=True).astype(np.float16)


def _resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    return (resize(mask.astype(np.float32), (size, size), order=1, anti_aliasing=False) >= 0.5).astype(np.uint8)


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
        images[row] = _resize_image(pixels, size)
        if mask is not None:
            masks[row] = _resize_mask(mask, size)
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
    }
    (folder / "index.json").write_text(json.dumps(index))


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
        return _open(records, folder, built=False)
    # one builder per cache: a second process waits for the first and then reuses its result
    with exclusive_lock(
        cache_dir / f".{folder.name}.lock", what=f"the cache {folder}", wait=True, on_wait=logger.warning
    ):
        built = not (folder / "index.json").exists()
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
    return _open(records, folder, built)


def _open(records: Sequence[Record], folder: Path, built: bool) -> CachedSource:
    index = json.loads((folder / "index.json").read_text())
    images = np.load(folder / "images.npy", mmap_mode="r")
    masks = np.load(folder / "masks.npy", mmap_mode="r")
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
