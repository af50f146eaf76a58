"""Loss functions: pure functions of tensors, independent of models and data."""

from __future__ import annotations

from .consistency import bernoulli_kl, unlabeled_segmentation_kl
from .fixmatch import fixmatch_loss
from .supervised import DICE_SMOOTH, balanced_class_weights, cross_entropy, dice_loss

__all__ = [
    "DICE_SMOOTH",
    "balanced_class_weights",
    "bernoulli_kl",
    "cross_entropy",
    "dice_loss",
    "fixmatch_loss",
    "unlabeled_segmentation_kl",
]
