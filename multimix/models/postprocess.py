"""Optional clean-up of predicted lung masks: keep the two largest components, fill their holes.

A chest X-ray has two lungs, each one connected region without holes. A network that meets an
unfamiliar image (a child's chest, another scanner) tends to break the lungs into fragments, leave
holes at dense opacities and paint blobs outside the chest; this removes what anatomy rules out.
It is off by default and reported both ways, because it can also hide a failure (one lung missed).

``drop_edge_regions`` adds one more rule: a lung lies inside the body, so a region that reaches the
left or right edge of the image is the dark air beside a patient (a small child in a frame made for
adults), not lung, and is dropped before the two largest are kept.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.measure import euler_number, label

__all__ = ["LUNGS", "clean_lung_mask", "clean_lung_masks", "mask_topology"]

LUNGS = 2
EDGE_SHARE = 1 / 64  # the outer columns, as a share of the width, that count as the image's side edge


def edge_columns(width: int) -> int:
    """How many columns on each side count as the image's left or right edge."""
    return max(1, round(width * EDGE_SHARE))


def clean_lung_mask(
    mask: np.ndarray, *, keep: int = LUNGS, min_share: float = 0.1, drop_edge_regions: bool = False
) -> np.ndarray:
    """The ``keep`` largest 8-connected components of a boolean ``(H, W)`` mask, holes filled.

    Components smaller than ``min_share`` of the largest one are dropped even among the
    ``keep`` largest, so a single lung plus a speck does not keep the speck. With
    ``drop_edge_regions`` a component with a pixel in the outer :func:`edge_columns` on the left or
    right is dropped first (see the module doc). An empty mask stays empty.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    labels, count = label(mask, connectivity=2, return_num=True)
    if count == 0:
        return mask.copy()
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    if drop_edge_regions:
        edge = edge_columns(mask.shape[1])
        touching = np.unique(np.concatenate([labels[:, :edge].ravel(), labels[:, -edge:].ravel()]))
        areas[touching[touching > 0] - 1] = 0
        if not areas.any():
            return np.zeros_like(mask)
    order = np.argsort(-areas, kind="stable")[:keep]
    kept = [i + 1 for i in order if areas[i] > 0 and areas[i] >= min_share * areas[order[0]]]
    return ndimage.binary_fill_holes(np.isin(labels, kept))


def mask_topology(mask: np.ndarray) -> tuple[int, int]:
    """``(regions, holes)`` of a boolean ``(H, W)`` mask: 8-connected components, and the holes
    inside them (regions minus the Euler number). Two lungs without holes give ``(2, 0)``."""
    mask = np.asarray(mask, dtype=bool)
    regions = int(label(mask, connectivity=2).max())
    return regions, regions - int(euler_number(mask, connectivity=2))


def clean_lung_masks(masks: np.ndarray, **kwargs) -> np.ndarray:
    """:func:`clean_lung_mask` for each mask of a ``(N, H, W)`` stack."""
    return np.stack([clean_lung_mask(m, **kwargs) for m in masks]) if len(masks) else np.asarray(masks, dtype=bool)
