"""Per-image metrics of binary lung masks, with explicit empty-mask rules.

Overlap (Dice, Jaccard), SSIM, pixel precision and recall, and Hausdorff distances; each rule is
chosen so that no value is NaN unless the caller asked for units it cannot know.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from skimage.metrics import structural_similarity

ArrayLike = np.ndarray | torch.Tensor
# None (pixel units), one (sy, sx) pair for every image, or an (N, 2) array of per-image pairs.
Spacing = ArrayLike | tuple[float, float] | list | None

# Side of skimage's default SSIM window; smaller images cannot be compared with it.
_SSIM_WINDOW = 7


def binarize(seg_logits_or_probs: ArrayLike, threshold: float = 0.5, from_logits: bool = True) -> ArrayLike:
    """Binary mask ``sigmoid(x) >= threshold`` (or ``x >= threshold`` when ``from_logits=False``).

    Args:
        seg_logits_or_probs: segmentation logits or probabilities, any shape.
        threshold: probability threshold; a pixel equal to it counts as foreground.
        from_logits: apply a sigmoid first.

    Returns:
        A boolean mask of the same shape and container type: a tensor (on the input's device) for
        a tensor, a NumPy array otherwise.
    """
    is_tensor = isinstance(seg_logits_or_probs, torch.Tensor)
    x: torch.Tensor = (
        seg_logits_or_probs
        if isinstance(seg_logits_or_probs, torch.Tensor)
        else torch.as_tensor(np.asarray(seg_logits_or_probs))
    )
    x = x.detach()
    if from_logits:
        x = torch.sigmoid(x if x.is_floating_point() else x.float())
    mask = x >= threshold
    return mask if is_tensor else mask.cpu().numpy()


def _as_binary_masks(x: ArrayLike, name: str) -> torch.Tensor:
    """``(N, 1, H, W)`` float32 CPU tensor from ``(N, H, W)`` or ``(N, 1, H, W)`` binary masks."""
    t = x.detach().cpu() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim == 3:
        t = t.unsqueeze(1)
    if t.ndim != 4 or t.shape[1] != 1:
        raise ValueError(f"{name} must have shape (N, H, W) or (N, 1, H, W), got {tuple(t.shape)}")
    if t.dtype != torch.bool and not bool(((t == 0) | (t == 1)).all()):
        # Soft probabilities would silently give a soft Dice; binarize() them first.
        raise ValueError(f"{name} must be a binary mask (0/1 or bool); use binarize() first")
    return t.float()


def _paired_masks(pred: ArrayLike, ref: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    p, r = _as_binary_masks(pred, "pred"), _as_binary_masks(ref, "ref")
    if p.shape != r.shape:
        raise ValueError(f"pred shape {tuple(np.shape(pred))} does not match ref shape {tuple(np.shape(ref))}")
    return p, r


def dice_per_image(pred: ArrayLike, ref: ArrayLike) -> np.ndarray:
    """Dice ``2|P & R| / (|P| + |R|)`` of each image, via MONAI's ``compute_dice``.

    Empty-mask rules (MONAI with ``ignore_empty=False``), so no value is ever NaN:

    * empty prediction, non-empty reference: 0.0 (a missed lung);
    * non-empty prediction, empty reference: 0.0;
    * both empty: 1.0 (perfect agreement).

    Args:
        pred: ``(N, 1, H, W)`` or ``(N, H, W)`` binary predicted masks (bool or 0/1).
        ref: reference masks of the same shape (a missing channel axis on one side is allowed).

    Returns:
        ``(N,)`` float64 array in ``[0, 1]``.

    Raises:
        ValueError: on mismatched or unsupported shapes, or non-binary values.
    """
    p, r = _paired_masks(pred, ref)
    if p.shape[0] == 0:
        return np.zeros(0)
    from monai.metrics import (
        compute_dice,  # MONAI loads all of itself on first import (seconds): imported where used, for a fast start
    )

    scores = compute_dice(p, r, include_background=True, ignore_empty=False)
    return scores[:, 0].double().numpy()


def jaccard_per_image(pred: ArrayLike, ref: ArrayLike) -> np.ndarray:
    """Jaccard index (IoU) ``|P & R| / |P | R|`` of each image, via MONAI's ``compute_iou``.

    Same inputs and the same empty-mask rules as :func:`dice_per_image`: empty prediction vs
    non-empty reference = 0.0, non-empty prediction vs empty reference = 0.0, both empty = 1.0.
    Never NaN.
    """
    p, r = _paired_masks(pred, ref)
    if p.shape[0] == 0:
        return np.zeros(0)
    from monai.metrics import compute_iou

    scores = compute_iou(p, r, include_background=True, ignore_empty=False)
    return scores[:, 0].double().numpy()


def _nonempty(masks: torch.Tensor) -> np.ndarray:
    """``(N,)`` bool: which of the ``(N, 1, H, W)`` masks has at least one foreground pixel."""
    return masks.flatten(1).any(dim=1).numpy()


def ssim_per_image(pred: ArrayLike, ref: ArrayLike) -> np.ndarray:
    """Structural similarity of each predicted mask to its reference, both read as 0/1 images.

    Uses ``skimage.metrics.structural_similarity(pred, ref, data_range=1.0)`` with its default
    7x7 uniform window, averaged over the image minus a 3-pixel border.

    Empty-mask rule: both masks empty gives 1.0 (identical images; skimage agrees, since its
    stabilising constants make SSIM of two identical constant images exactly 1). An empty mask
    against a non-empty one is an ordinary SSIM between two different images (small but not
    necessarily 0). Never NaN.

    Args:
        pred: ``(N, 1, H, W)`` or ``(N, H, W)`` binary predicted masks (bool or 0/1).
        ref: reference masks of the same shape.

    Returns:
        ``(N,)`` float64 array in ``[-1, 1]``.

    Raises:
        ValueError: as :func:`dice_per_image`, or if ``H`` or ``W`` is below 7 (the window size).
    """
    p, r = _paired_masks(pred, ref)
    height, width = p.shape[-2:]
    if min(height, width) < _SSIM_WINDOW:
        raise ValueError(
            f"SSIM's {_SSIM_WINDOW}x{_SSIM_WINDOW} window needs images of at least "
            f"{_SSIM_WINDOW}x{_SSIM_WINDOW} pixels, got {height}x{width}"
        )
    scores = np.ones(p.shape[0])
    p_img, r_img = p[:, 0].double().numpy(), r[:, 0].double().numpy()
    for i in np.flatnonzero(_nonempty(p) | _nonempty(r)):
        scores[i] = structural_similarity(p_img[i], r_img[i], data_range=1.0)
    return scores


def _pixel_ratio(num: np.ndarray, den: np.ndarray, both_empty: np.ndarray) -> np.ndarray:
    """``num / den``, and for ``den == 0``: 1.0 where both masks are empty, else 0.0."""
    fallback = np.where(both_empty, 1.0, 0.0)
    return np.divide(num, den, out=fallback, where=den > 0)


def pixel_precision_recall_per_image(pred: ArrayLike, ref: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Pixel precision ``TP / (TP + FP)`` and recall ``TP / (TP + FN)`` of each image.

    Rule for ``0 / 0`` (precision with an empty prediction, recall with an empty reference):

    * both masks empty: 1.0 for both (agreement);
    * empty prediction, non-empty reference: precision 0.0 (a missed lung), recall 0.0;
    * non-empty prediction, empty reference: precision 0.0, recall 0.0 (a false alarm).

    Never NaN.

    Args:
        pred: ``(N, 1, H, W)`` or ``(N, H, W)`` binary predicted masks (bool or 0/1).
        ref: reference masks of the same shape.

    Returns:
        ``(precision, recall)``, two ``(N,)`` float64 arrays in ``[0, 1]``.

    Raises:
        ValueError: as :func:`dice_per_image`.
    """
    p, r = _paired_masks(pred, ref)
    p, r = p.flatten(1).double(), r.flatten(1).double()
    tp = (p * r).sum(dim=1).numpy()
    n_pred, n_ref = p.sum(dim=1).numpy(), r.sum(dim=1).numpy()
    both_empty = (n_pred == 0) & (n_ref == 0)
    return _pixel_ratio(tp, n_pred, both_empty), _pixel_ratio(tp, n_ref, both_empty)


def _spacing_rows(spacing: Spacing, n: int) -> np.ndarray | None:
    """Validated ``(n, 2)`` float64 ``(sy, sx)`` per image, or ``None`` for pixel units."""
    if spacing is None:
        return None
    s = np.asarray(spacing, dtype=np.float64)
    if s.shape == (2,):
        s = np.broadcast_to(s, (n, 2))
    elif s.shape != (n, 2):
        raise ValueError(f"spacing must be a (sy, sx) pair or an (N, 2) array with N = {n}, got shape {s.shape}")
    known = s[~np.isnan(s).any(axis=1)]
    if not np.all(np.isfinite(known) & (known > 0)):
        raise ValueError("spacing values must be positive and finite (NaN marks an unknown spacing)")
    return s


# MONAI surface distances of the non-empty pairs ``(pred, ref, spacing)`` -> ``(M,)`` float64.
_PairDistance = Callable[[torch.Tensor, torch.Tensor, list | None], np.ndarray]


def _distance_per_image(pred: ArrayLike, ref: ArrayLike, spacing: Spacing, pair_distance: _PairDistance) -> np.ndarray:
    """Apply the shared empty / unknown-spacing rules, and MONAI to the remaining pairs only.

    MONAI returns inf or NaN, with a warning, when a mask is empty; deciding those cases here
    keeps both out of the results and of the logs.
    """
    p, r = _paired_masks(pred, ref)
    n, _, height, width = p.shape
    rows = _spacing_rows(spacing, n)
    scale = np.ones((n, 2)) if rows is None else rows
    pred_any, ref_any = _nonempty(p), _nonempty(r)
    diagonal = np.hypot(height * scale[:, 0], width * scale[:, 1])
    out = np.where(pred_any == ref_any, 0.0, diagonal)
    unknown = np.isnan(scale).any(axis=1)
    out[unknown] = np.nan
    todo = np.flatnonzero(pred_any & ref_any & ~unknown)
    if todo.size:
        # Per-image [sy, sx] lists: unambiguous for MONAI whatever the batch size.
        pair_spacing = None if rows is None else rows[todo].tolist()
        index = torch.as_tensor(todo)
        with warnings.catch_warnings():
            # MONAI 1.5+ passes its own deprecated ``always_return_as_numpy`` argument
            # internally, so every call warns; there is nothing a caller could change.
            warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*", category=FutureWarning)
            out[todo] = pair_distance(p[index], r[index], pair_spacing)
    return out


def hausdorff_per_image(
    pred: ArrayLike,
    ref: ArrayLike,
    *,
    percentile: float | None = None,
    spacing: Spacing = None,
) -> np.ndarray:
    """Symmetric euclidean Hausdorff distance between mask boundaries, via MONAI.

    MONAI's ``compute_hausdorff_distance`` takes, in each direction, the distances from every
    boundary pixel of one mask to the nearest boundary pixel of the other, reduces them to their
    maximum (or ``percentile``, linearly interpolated), and keeps the larger direction.

    Empty-mask rules: both masks empty gives 0.0; exactly one empty gives the image diagonal
    ``sqrt((H * sy)**2 + (W * sx)**2)`` (longer than any distance within the image, in the
    units of ``spacing``; pixels when it is None). Never NaN, except for images whose spacing row
    contains NaN (unknown spacing), which give NaN whatever their masks.

    Args:
        pred: ``(N, 1, H, W)`` or ``(N, H, W)`` binary predicted masks (bool or 0/1).
        ref: reference masks of the same shape.
        percentile: None for the maximum (classic Hausdorff distance), 95 for HD95; in
            ``(0, 100]``.
        spacing: None (pixel units), a ``(sy, sx)`` pair for all images, or an ``(N, 2)`` array
            of per-image ``(sy, sx)``; a row containing NaN marks an unknown spacing.

    Returns:
        ``(N,)`` float64 array of distances (MONAI computes them in float32).

    Raises:
        ValueError: as :func:`dice_per_image`, on a badly shaped or non-positive ``spacing``, or
            a ``percentile`` outside ``(0, 100]``.
    """
    # MONAI reads percentile=0 as "no percentile" (the maximum), so refuse it rather than
    # silently return the opposite of what was asked.
    if percentile is not None and not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")

    def pair_distance(p: torch.Tensor, r: torch.Tensor, s: list | None) -> np.ndarray:
        from monai.metrics import compute_hausdorff_distance

        hd = compute_hausdorff_distance(p, r, include_background=True, percentile=percentile, spacing=s)
        return hd[:, 0].double().numpy()

    return _distance_per_image(pred, ref, spacing, pair_distance)


def average_hausdorff_per_image(pred: ArrayLike, ref: ArrayLike, *, spacing: Spacing = None) -> np.ndarray:
    """Average Hausdorff distance (Taha & Hanbury 2015, "AVD") between mask boundaries.

    ``max(d(P -> R), d(R -> P))`` where ``d(A -> B)`` is the mean, over boundary pixels of
    ``A``, of the euclidean distance to the nearest boundary pixel of ``B`` (MONAI's directed
    ``compute_average_surface_distance``). This is the "HD" reported by the MultiMix paper.

    Empty-mask rules: both masks empty gives 0.0; exactly one empty gives the image diagonal
    ``sqrt((H * sy)**2 + (W * sx)**2)`` (longer than any distance within the image, in the
    units of ``spacing``; pixels when it is None). Never NaN, except for images whose spacing row
    contains NaN (unknown spacing), which give NaN whatever their masks.

    Args:
        pred: ``(N, 1, H, W)`` or ``(N, H, W)`` binary predicted masks (bool or 0/1).
        ref: reference masks of the same shape.
        spacing: None (pixel units), a ``(sy, sx)`` pair for all images, or an ``(N, 2)`` array
            of per-image ``(sy, sx)``; a row containing NaN marks an unknown spacing.

    Returns:
        ``(N,)`` float64 array of distances (MONAI computes them in float32).

    Raises:
        ValueError: as :func:`dice_per_image`, or on a badly shaped or non-positive ``spacing``.
    """

    def pair_distance(p: torch.Tensor, r: torch.Tensor, s: list | None) -> np.ndarray:
        from monai.metrics import compute_average_surface_distance

        kwargs: dict[str, Any] = {"include_background": True, "symmetric": False, "spacing": s}
        forward = compute_average_surface_distance(p, r, **kwargs)
        backward = compute_average_surface_distance(r, p, **kwargs)
        return torch.maximum(forward, backward)[:, 0].double().numpy()

    return _distance_per_image(pred, ref, spacing, pair_distance)


def segmentation_metrics_per_image(pred: ArrayLike, ref: ArrayLike, spacing: Spacing = None) -> dict[str, np.ndarray]:
    """Every per-image segmentation metric reported by the MultiMix paper, and a few more.

    Keys (each an ``(N,)`` float64 array, with the empty-mask rules of its function):

    * ``dice``, ``jaccard``: :func:`dice_per_image`, :func:`jaccard_per_image`;
    * ``ssim``: :func:`ssim_per_image`;
    * ``hd``: average Hausdorff distance in pixels (:func:`average_hausdorff_per_image`), the
      paper's "HD";
    * ``hd95``: 95th-percentile Hausdorff distance in pixels (:func:`hausdorff_per_image`);
    * ``precision``, ``recall``: :func:`pixel_precision_recall_per_image`;
    * only when ``spacing`` is given: ``hd_mm`` and ``hd95_mm``, the same two distances in the
      units of ``spacing`` (NaN for images whose spacing row contains NaN).

    Args:
        pred: ``(N, 1, H, W)`` or ``(N, H, W)`` binary predicted masks (bool or 0/1).
        ref: reference masks of the same shape.
        spacing: None, a ``(sy, sx)`` pair for all images, or an ``(N, 2)`` array of per-image
            pixel spacings (NaN rows for unknown ones).

    Returns:
        A dict from metric name to ``(N,)`` float64 array.

    Raises:
        ValueError: as the individual metric functions.
    """
    p, r = _paired_masks(pred, ref)
    _spacing_rows(spacing, p.shape[0])  # fail before the slow distances, not after
    precision, recall = pixel_precision_recall_per_image(p, r)
    metrics = {
        "dice": dice_per_image(p, r),
        "jaccard": jaccard_per_image(p, r),
        "ssim": ssim_per_image(p, r),
        "hd": average_hausdorff_per_image(p, r),
        "hd95": hausdorff_per_image(p, r, percentile=95),
        "precision": precision,
        "recall": recall,
    }
    if spacing is not None:
        metrics["hd_mm"] = average_hausdorff_per_image(p, r, spacing=spacing)
        metrics["hd95_mm"] = hausdorff_per_image(p, r, percentile=95, spacing=spacing)
    return metrics


def segmentation_summary(pred: ArrayLike, ref: ArrayLike, spacing: Spacing = None) -> dict[str, Any]:
    """Mean and standard deviation over images of every :func:`segmentation_metrics_per_image`.

    Standard deviations are population ones (``ddof=0``), describing the evaluated set itself.
    The ``*_mm`` statistics are over the images whose spacing is known (NaN if none is).

    Args:
        pred: ``(N, 1, H, W)`` or ``(N, H, W)`` binary predicted masks (bool or 0/1).
        ref: reference masks of the same shape.
        spacing: as :func:`segmentation_metrics_per_image`; adds the ``hd_mm`` and ``hd95_mm``
            statistics.

    Returns:
        ``{name}_mean`` and ``{name}_std`` floats for ``dice``, ``jaccard``, ``ssim``, ``hd``,
        ``hd95``, ``precision`` and ``recall`` (and ``hd_mm``, ``hd95_mm`` with a spacing), plus
        ``"num_images"`` (int) and, with a spacing, ``"num_images_mm"`` (images of known spacing).

    Raises:
        ValueError: if there are no images, or as :func:`segmentation_metrics_per_image`.
    """
    p, r = _paired_masks(pred, ref)
    if p.shape[0] == 0:
        raise ValueError("segmentation_summary: no images")
    per_image = segmentation_metrics_per_image(p, r, spacing)
    summary: dict[str, Any] = {}
    for name, values in per_image.items():
        known = values[~np.isnan(values)]  # only the *_mm ones can hold NaN
        summary[f"{name}_mean"] = float(known.mean()) if known.size else float("nan")
        summary[f"{name}_std"] = float(known.std()) if known.size else float("nan")
    summary["num_images"] = int(p.shape[0])
    if spacing is not None:
        summary["num_images_mm"] = int(np.sum(~np.isnan(per_image["hd_mm"])))
    return summary
