"""Loss functions: pure functions of tensors, independent of models and data."""

from __future__ import annotations

from multimix.losses.consistency import bernoulli_kl, unlabeled_segmentation_kl
from multimix.losses.contrastive import barlow_twins_loss, nt_xent_loss
from multimix.losses.distillation import distillation_loss
from multimix.losses.fixmatch import fixmatch_loss
from multimix.losses.supervised import (
    DICE_SMOOTH,
    balanced_class_weights,
    cross_entropy,
    dice_loss,
    domain_adversarial_loss,
    lung_map_loss,
)

__all__ = [
    "DICE_SMOOTH",
    "balanced_class_weights",
    "barlow_twins_loss",
    "bernoulli_kl",
    "cross_entropy",
    "dice_loss",
    "domain_adversarial_loss",
    "distillation_loss",
    "fixmatch_loss",
    "lung_map_loss",
    "nt_xent_loss",
    "unlabeled_segmentation_kl",
]
