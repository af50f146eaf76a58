"""Per-image overlap metrics of binary lung masks, with explicit empty-mask rules."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from monai.metrics import compute_dice, compute_iou

ArrayLike = np.ndarray | torch.Tensor


def binarize(
    seg_logits_or_probs: ArrayLike, threshold: float = 0.5, from_logits: bool = True
) -> ArrayLike:
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
    x = seg_logits_or_probs if is_tensor else torch.as_tensor(np.asarray(seg_logits_or_probs))
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
        raise ValueError(
            f"pred shape {tuple(np.shape(pred))} does not match ref shape {tuple(np.shape(ref))}"
        )
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
    scores = compute_iou(p, r, include_background=True, ignore_empty=False)
    return scores[:, 0].double().numpy()


def segmentation_summary(pred: ArrayLike, ref: ArrayLike) -> dict[str, Any]:
    """Mean and standard deviation over images of Dice and Jaccard.

    Standard deviations are population ones (``ddof=0``), describing the evaluated set itself.

    Returns:
        ``{"dice_mean", "dice_std", "jaccard_mean", "jaccard_std"}`` as floats, plus
        ``"num_images"`` (int).

    Raises:
        ValueError: if there are no images, or as :func:`dice_per_image`.
    """
    dice = dice_per_image(pred, ref)
    if dice.size == 0:
        raise ValueError("segmentation_summary: no images")
    jaccard = jaccard_per_image(pred, ref)
    return {
        "dice_mean": float(dice.mean()),
        "dice_std": float(dice.std()),
        "jaccard_mean": float(jaccard.mean()),
        "jaccard_std": float(jaccard.std()),
        "num_images": int(dice.size),
    }
