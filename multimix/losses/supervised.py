"""Supervised losses: soft Dice for the lung masks, cross-entropy for the class labels, BCE for a coarse lung map."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Additive smoothing of the Dice numerator and denominator. 1.0 rather than MONAI's 1e-5: it is
#: negligible against a lung mask of thousands of pixels, but keeps the loss meaningful for an empty
#: target (loss = sum(p) / (sum(p) + 1), which still pushes predictions to zero), where 1e-5 would
#: give a loss stuck near 1 with a vanishing gradient.
DICE_SMOOTH = 1.0


@lru_cache(maxsize=1)
def _monai_dice() -> nn.Module:
    from monai.losses import (
        DiceLoss,  # MONAI loads all of itself on first import (seconds): imported where used, for a fast start
    )

    # DiceLoss holds no parameters or state, so one shared instance serves every device and caller.
    # batch=False: Dice is computed per image and averaged over the batch, so a small lung weighs as
    # much as a large one (batch=True would pool all pixels of the batch into one Dice).
    return DiceLoss(
        sigmoid=True,
        include_background=True,  # the single channel *is* the foreground
        smooth_nr=DICE_SMOOTH,
        smooth_dr=DICE_SMOOTH,
        batch=False,
        reduction="mean",
    )


def dice_loss(seg_logits: Tensor, target: Tensor) -> Tensor:
    """Soft Dice loss on sigmoid probabilities, averaged over images.

    For each image, ``1 - (2 * sum(p * t) + s) / (sum(p) + sum(t) + s)`` with ``p = sigmoid(logits)``
    and ``s = DICE_SMOOTH = 1.0`` (see the constant for why); the result is the mean over the batch
    (and over channels, if there are several). Computed with MONAI's ``DiceLoss``.

    Args:
        seg_logits: ``(B, 1, H, W)`` segmentation logits.
        target: ``(B, 1, H, W)`` binary mask (any dtype holding 0 and 1).

    Returns:
        Scalar loss in ``[0, 1]``.

    Raises:
        ValueError: if the two shapes differ or the input has no spatial dimension.
    """
    if seg_logits.shape != target.shape:
        raise ValueError(f"dice_loss: seg_logits shape {tuple(seg_logits.shape)} != target shape {tuple(target.shape)}")
    if seg_logits.ndim < 3:
        raise ValueError(f"dice_loss: expected (B, C, H, W) tensors, got shape {tuple(seg_logits.shape)}")
    # float32 even under autocast: a half-precision sum over a 256x256 mask can overflow (> 65504).
    logits = seg_logits.float()
    return _monai_dice()(logits, target.to(dtype=logits.dtype))


def cross_entropy(logits: Tensor, target: Tensor, class_weights: Tensor | None = None) -> Tensor:
    """Cross-entropy of class logits against integer labels, averaged over the batch.

    Without weights this is the plain mean of the per-example losses. With ``class_weights`` it
    follows PyTorch's weighted-mean convention: ``sum_i w[y_i] * l_i / sum_i w[y_i]``, i.e. the
    weights change the relative importance of examples but the result stays on the scale of one
    example's loss (it is *not* divided by the batch size).

    An empty batch returns a zero that is still connected to ``logits`` (instead of PyTorch's NaN),
    so a training step without labeled examples can add it safely.

    Args:
        logits: ``(B, C)`` class logits.
        target: ``(B,)`` integer class indices in ``[0, C)``.
        class_weights: optional ``(C,)`` per-class weights, e.g. from :func:`balanced_class_weights`;
            moved to the device and dtype of ``logits``.

    Raises:
        ValueError: on incompatible shapes.
    """
    if logits.ndim != 2 or target.ndim != 1 or logits.shape[0] != target.shape[0]:
        raise ValueError(
            f"cross_entropy: expected logits (B, C) and target (B,), got "
            f"{tuple(logits.shape)} and {tuple(target.shape)}"
        )
    if class_weights is not None:
        if class_weights.shape != (logits.shape[1],):
            raise ValueError(
                f"cross_entropy: class_weights shape {tuple(class_weights.shape)} does not match "
                f"{logits.shape[1]} classes"
            )
        class_weights = class_weights.to(device=logits.device, dtype=logits.dtype)
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target.long(), weight=class_weights)


def balanced_class_weights(labels: Sequence[int] | Tensor, num_classes: int) -> Tensor:
    """Per-class weights ``n / (num_classes * count_c)`` (scikit-learn's "balanced" rule).

    Every class then contributes the same total weight. Example: labels ``[0, 0, 0, 1]`` with two
    classes give ``[4 / 6, 4 / 2] = [2/3, 2]``.

    Args:
        labels: the integer class labels of the (labeled) training set.
        num_classes: number of classes ``C``.

    Returns:
        ``(C,)`` float32 tensor on the CPU.

    Raises:
        ValueError: if a label lies outside ``[0, num_classes)``, or a class has no example (its
            weight would be infinite; a labeled budget without a class is worth knowing about).
    """
    if num_classes < 1:
        raise ValueError(f"balanced_class_weights: num_classes must be >= 1, got {num_classes}")
    y = torch.as_tensor(labels).detach().cpu().reshape(-1).long()
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(
            f"balanced_class_weights: labels must lie in [0, {num_classes}), got range [{int(y.min())}, {int(y.max())}]"
        )
    counts = torch.bincount(y, minlength=num_classes)
    missing = [c for c in range(num_classes) if counts[c] == 0]
    if missing:
        raise ValueError(f"balanced_class_weights: no example of class(es) {missing} among {y.numel()} labels")
    return (y.numel() / (num_classes * counts.double())).float()


def lung_map_loss(lung_logits: Tensor, masks: Tensor) -> Tensor:
    """BCE of a coarse ``(B, 1, h, w)`` lung map against ``(B, 1, H, W)`` masks shrunk to its grid
    by area averaging (each cell's target is its share of lung pixels)."""
    height, width = lung_logits.shape[-2:]
    target = F.adaptive_avg_pool2d(masks.float(), (height, width))
    return F.binary_cross_entropy_with_logits(lung_logits, target)


def domain_adversarial_loss(logits: Tensor, domains: Tensor) -> Tensor:
    """BCE of the domain head's ``(B,)`` logits against ``(B,)`` domain indices in ``{0, 1}``,
    each domain present weighted to half the loss, so the larger one does not dominate."""
    target = domains.float()
    per_image = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    share = target.mean()
    if share <= 0 or share >= 1:  # one domain only in this batch: plain mean
        return per_image.mean()
    weights = torch.where(target > 0.5, 0.5 / share, 0.5 / (1 - share))
    return (per_image * weights).mean()
