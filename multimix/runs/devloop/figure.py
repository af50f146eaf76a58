"""The child-mask figure: every variant's raw lung outlines on the same held-out images."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from skimage.transform import resize

from multimix.data.records import Record
from multimix.evaluation.figures import boundary_overlays
from multimix.evaluation.inference import infer
from multimix.runs.devloop.variants import seed_folder

FIGURE_IMAGES = (6, 2)  # held-out classification images, cross-domain images in child_masks.png


def figure_records(test: Sequence[Record], cross: Sequence[Record]) -> list[Record]:
    """The images every variant draws in ``child_masks.png``: held-out classification images
    (CheX: children) and cross-domain ones, a stable choice (hash of the uid)."""

    def first(records: Sequence[Record], k: int) -> list[Record]:
        return sorted(records, key=lambda r: zlib.crc32(r.uid.encode()))[:k]

    return first([r for r in test if r.has_label], FIGURE_IMAGES[0]) + first(cross, FIGURE_IMAGES[1])


def save_samples(model, records: list[Record], kw: dict[str, Any], path: Path) -> None:
    if not records:
        return
    kept = infer(model, records, full_metrics=False, keep=range(len(records)), **kw).samples
    np.savez_compressed(
        path,
        uids=np.array([r.uid for r in records]),
        images=np.stack([kept[i].image for i in range(len(records))]),
        masks=np.stack([_present(kept[i].prediction) for i in range(len(records))]),
    )


def _present(mask: np.ndarray | None) -> np.ndarray:
    if mask is None:
        raise ValueError("this model draws no lung masks")
    return mask


def child_mask_figure(rows: Sequence[dict[str, Any]], out: Path, *, seed: int = 0) -> Path | None:
    """``<out>/child_masks.png``: columns = variants (one seed), rows = the same held-out images."""
    samples = [(row["variant"], seed_folder(out, row["variant"], seed) / "dev_samples.npz") for row in rows]
    found = [(name, np.load(path)) for name, path in samples if path.exists()]
    if not found:
        return None
    first = found[0][1]
    same = [(name, data) for name, data in found if np.array_equal(data["uids"], first["uids"])]
    titles = [uid.split("/")[0] + " " + Path(str(uid)).stem[:14] for uid in first["uids"]]
    shape = first["masks"].shape[1:]
    return boundary_overlays(
        first["images"],
        np.zeros_like(first["masks"]),
        {name: _masks_at(d["masks"], shape) for name, d in same},
        out / "child_masks.png",
        row_titles=titles,
    )


def _masks_at(masks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``(N, h, w)`` masks at ``shape`` (nearest neighbour): variants trained at other sizes share one figure."""
    if masks.shape[1:] == shape:
        return masks
    return np.stack([resize(m.astype(np.float32), shape, order=0, anti_aliasing=False) >= 0.5 for m in masks])
