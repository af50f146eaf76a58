"""FixMatch-style confidence-thresholded pseudo-labelling for the unlabeled classification term."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def fixmatch_loss(
    weak_logits: Tensor, strong_logits: Tensor, threshold: float | Tensor = 0.7, *, weak_probs: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Pseudo-label loss on unlabeled images (Sohn et al., 2020, as used by MultiMix).

    The weakly augmented view gives the pseudo-label ``argmax softmax(weak_logits)``, computed
    without gradient; only images whose top probability is ``>= threshold`` are kept, and the
    strongly augmented view is trained towards that label with cross-entropy::

        loss = (1 / B) * sum_i 1[max_c p_i,c >= threshold] * CE(strong_logits_i, pseudo_i)

    Note the division by the full unlabeled batch size ``B``, not by the number of images kept
    (FixMatch's convention): while few images pass, the term is small, which acts as a natural
    warm-up instead of letting one confident image carry the full weight.

    Args:
        weak_logits: ``(B, C)`` logits of the weakly augmented views; never receives gradient.
        strong_logits: ``(B, C)`` logits of the strongly augmented views.
        threshold: confidence threshold in ``[0, 1]``; 0.7 is the MultiMix paper's value for two
            classes (with only two classes the top probability is always at least 0.5). A
            ``(C,)`` tensor gives one threshold per class, applied to each image's pseudo-label
            class (FreeMatch's class-wise thresholds).
        weak_probs: ``(B, C)`` probabilities to take pseudo-labels and confidences from instead
            of ``softmax(weak_logits)`` (e.g. after distribution alignment).

    Returns:
        ``(loss, pass_rate)``: the scalar loss, and the detached fraction of images that passed the
        threshold. An empty batch gives a zero loss still connected to ``strong_logits`` and a
        pass rate of 0.

    Raises:
        ValueError: if the shapes differ or are not ``(B, C)``, or ``threshold`` is outside ``[0, 1]``.
    """
    if weak_logits.shape != strong_logits.shape or weak_logits.ndim != 2:
        raise ValueError(
            f"fixmatch_loss: expected two (B, C) tensors of the same shape, got weak "
            f"{tuple(weak_logits.shape)} and strong {tuple(strong_logits.shape)}"
        )
    thresholds = torch.as_tensor(threshold, dtype=torch.float32, device=weak_logits.device)
    if thresholds.ndim > 1 or (thresholds.ndim == 1 and thresholds.numel() != weak_logits.shape[1]):
        raise ValueError(
            f"fixmatch_loss: threshold must be a float or one per class, got shape {tuple(thresholds.shape)}"
        )
    if ((thresholds < 0) | (thresholds > 1)).any():
        raise ValueError(f"fixmatch_loss: threshold must lie in [0, 1], got {threshold}")
    if weak_logits.shape[0] == 0:
        zero_rate = torch.zeros((), device=strong_logits.device)
        return strong_logits.sum() * 0.0, zero_rate

    with torch.no_grad():
        # float32 softmax so that fp16 rounding cannot move a probability across the threshold.
        probs = (
            torch.softmax(weak_logits.detach().float(), dim=1) if weak_probs is None else weak_probs.detach().float()
        )
        confidence, pseudo_labels = probs.max(dim=1)
        mask = confidence >= (thresholds[pseudo_labels] if thresholds.ndim == 1 else thresholds)
    per_image = F.cross_entropy(strong_logits, pseudo_labels, reduction="none")
    loss = (per_image * mask.to(per_image.dtype)).mean()
    return loss, mask.float().mean()
