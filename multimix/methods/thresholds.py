"""Threshold policies: the confidence an unlabeled image's predicted class must reach for its
pseudo-label to train the strong view. One registry (``method.threshold_mode`` names an entry):

* ``fixed`` (FixMatch): ``method.threshold`` for every class, every step;
* ``freematch`` (FreeMatch, Wang et al. 2023): a global threshold that tracks the model's mean
  confidence (an EMA, starting at ``1 / C``), scaled per class by the EMA of the mean predicted
  probability of that class divided by the largest one, so a class the model rarely predicts
  gets a lower bar;
* ``flexmatch`` (:mod:`multimix.methods.flexmatch`).

A policy sees each step's (aligned) weak-view probabilities and the unlabeled pool indices of
its images; its running statistics are its state (saved in every checkpoint). Under
``torchrun`` the statistics are averaged over the ranks, so every rank keeps identical state.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.distributed as dist

from multimix.utils.registry import Registry

FREEMATCH_MOMENTUM = 0.999  # the FreeMatch paper's EMA


def global_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean over the batch dimension, averaged across ranks when a process group is running."""
    mean = values.mean(dim=0)
    if distributed():
        mean = mean.clone()
        dist.all_reduce(mean)
        mean /= dist.get_world_size()
    return mean


def distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def ema(old: torch.Tensor, new: torch.Tensor, momentum: float) -> torch.Tensor:
    return momentum * old.to(new.device) + (1 - momentum) * new


class ThresholdPolicy:
    """The per-class confidence bar of the pseudo-labels (override :meth:`__call__`).

    Args:
        num_classes: classes of the head.
        threshold: ``method.threshold``, the policy's fixed point or upper bound.
    """

    name: ClassVar[str] = ""

    def __init__(self, num_classes: int, threshold: float) -> None:
        self.num_classes, self.threshold = num_classes, threshold

    def bind_pool(self, size: int) -> None:
        """Told the size of the unlabeled class pool before training (per-image policies)."""

    def __call__(self, probs: torch.Tensor, indices: torch.Tensor | None, *, update: bool) -> torch.Tensor | float:
        """The confidence each image's predicted class must reach: a float or a ``(C,)`` tensor.
        ``indices`` are the images' positions in the unlabeled pool (``None`` when the batch
        carries none); ``update=False`` reads the statistics without moving them."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`state_dict`; keys of other policies (an older checkpoint) are ignored."""


THRESHOLD_POLICIES: Registry[type[ThresholdPolicy]] = Registry("threshold policy (method.threshold_mode)")


def register_policy(name: str):
    """Class decorator: make a :class:`ThresholdPolicy` selectable as ``method.threshold_mode: name``."""

    def register(cls: type[ThresholdPolicy]) -> type[ThresholdPolicy]:
        THRESHOLD_POLICIES.register(name, cls)
        cls.name = name
        return cls

    return register


@register_policy("fixed")
class FixedThreshold(ThresholdPolicy):
    def __call__(self, probs: torch.Tensor, indices: torch.Tensor | None, *, update: bool) -> float:
        return self.threshold


@register_policy("freematch")
class FreeMatchThreshold(ThresholdPolicy):
    def __init__(self, num_classes: int, threshold: float) -> None:
        super().__init__(num_classes, threshold)
        self.global_confidence = torch.tensor(1.0 / num_classes)  # FreeMatch tau
        self.class_probs = torch.full((num_classes,), 1.0 / num_classes)  # FreeMatch p~

    def __call__(self, probs: torch.Tensor, indices: torch.Tensor | None, *, update: bool) -> torch.Tensor:
        if update:
            confidence = global_mean(probs.max(dim=1).values)
            self.global_confidence = ema(self.global_confidence, confidence, FREEMATCH_MOMENTUM)
            self.class_probs = ema(self.class_probs, global_mean(probs), FREEMATCH_MOMENTUM)
        scale = self.class_probs / self.class_probs.max()
        return (self.global_confidence * scale).to(probs.device)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"global_confidence": self.global_confidence.cpu(), "class_probs": self.class_probs.cpu()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if "global_confidence" in state:
            self.global_confidence = state["global_confidence"].float()
            self.class_probs = state["class_probs"].float()
