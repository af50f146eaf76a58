"""Which unlabeled images get a pseudo-label, and which one: thresholds and distribution alignment.

FixMatch keeps a weak view's prediction when its confidence reaches a fixed threshold. With few
labels and imbalanced classes (CheX is 3:1 pneumonia), that lets the majority class pass first
and confirm itself: the classifier collapses to one class. Two controls, each optional:

* **distribution alignment** (ReMixMatch): the weak-view probabilities are multiplied by
  ``target / running mean of the predictions`` and renormalised, so the pseudo-labels follow a
  target class distribution (the labeled images' ``labeled``, or ``uniform``) rather than
  whatever the current model over-predicts;
* **self-adaptive thresholds** (FreeMatch, ``freematch``): a global threshold that tracks the
  model's mean confidence (an EMA, starting at ``1 / C``), scaled per class by the EMA of the
  mean predicted probability of that class divided by the largest one, so a class the model
  rarely predicts gets a lower bar.

The running statistics are state of the method: :meth:`PseudoLabeler.state_dict` goes into every
checkpoint, so a resumed run continues with the same statistics. Under ``torchrun`` the batch
statistics are averaged over the ranks, so every rank keeps identical state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

THRESHOLD_MODES = ("fixed", "freematch")
ALIGNMENTS = ("none", "labeled", "uniform")
ALIGNMENT_MOMENTUM = 0.99  # ReMixMatch averages the last 128 batches' predictions
FREEMATCH_MOMENTUM = 0.999  # the FreeMatch paper's EMA


def _global_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean over the batch dimension, averaged across ranks when a process group is running."""
    mean = values.mean(dim=0)
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        mean = mean.clone()
        dist.all_reduce(mean)
        mean /= dist.get_world_size()
    return mean


@dataclass
class PseudoLabeler:
    """Turns weak-view logits into pseudo-label probabilities and per-class thresholds.

    Args:
        num_classes: classes of the head.
        threshold: the fixed confidence threshold (``mode="fixed"``).
        mode: one of :data:`THRESHOLD_MODES`.
        alignment: one of :data:`ALIGNMENTS`.
        labeled_counts: images per class in the labeled set (``alignment="labeled"``).
    """

    num_classes: int = 2
    threshold: float = 0.7
    mode: str = "fixed"
    alignment: str = "none"
    labeled_counts: Sequence[int] | None = None
    running_probs: torch.Tensor = field(init=False)  # EMA of the mean prediction (alignment)
    global_confidence: torch.Tensor = field(init=False)  # FreeMatch tau
    class_probs: torch.Tensor = field(init=False)  # FreeMatch p~

    def __post_init__(self) -> None:
        if self.mode not in THRESHOLD_MODES:
            raise ValueError(f"method.threshold_mode must be one of {THRESHOLD_MODES}, got {self.mode!r}")
        if self.alignment not in ALIGNMENTS:
            raise ValueError(f"method.distribution_alignment must be one of {ALIGNMENTS}, got {self.alignment!r}")
        uniform = torch.full((self.num_classes,), 1.0 / self.num_classes)
        self.target = uniform
        if self.alignment == "labeled":
            counts = torch.tensor(list(self.labeled_counts or []), dtype=torch.float32)
            if counts.numel() != self.num_classes or counts.sum() <= 0:
                raise ValueError(
                    f"distribution_alignment 'labeled' needs labeled images of each of the {self.num_classes} classes"
                )
            self.target = (counts + 1) / (counts + 1).sum()  # +1: a class with no labeled image is rare, not impossible
        self.running_probs = uniform.clone()
        self.global_confidence = torch.tensor(1.0 / self.num_classes)
        self.class_probs = uniform.clone()

    @property
    def is_fixed(self) -> bool:
        """True when this is plain FixMatch (a fixed threshold, no alignment)."""
        return self.mode == "fixed" and self.alignment == "none"

    @torch.no_grad()
    def __call__(self, weak_logits: torch.Tensor, *, update: bool = True) -> tuple[torch.Tensor, torch.Tensor | float]:
        """``(probs (B, C), threshold)``: the probabilities to take pseudo-labels from, and the
        confidence each image's predicted class must reach (a float, or a ``(C,)`` tensor).
        ``update=False`` reads the statistics without moving them."""
        probs = torch.softmax(weak_logits.detach().float(), dim=1)
        if self.alignment != "none":
            if update:
                self.running_probs = self._ema(self.running_probs, _global_mean(probs), ALIGNMENT_MOMENTUM)
            ratio = self.target.to(probs.device) / self.running_probs.to(probs.device).clamp_min(1e-6)
            probs = probs * ratio
            probs = probs / probs.sum(dim=1, keepdim=True)
        if self.mode == "fixed":
            return probs, self.threshold
        if update:
            self.global_confidence = self._ema(
                self.global_confidence, _global_mean(probs.max(dim=1).values), FREEMATCH_MOMENTUM
            )
            self.class_probs = self._ema(self.class_probs, _global_mean(probs), FREEMATCH_MOMENTUM)
        scale = self.class_probs / self.class_probs.max()
        return probs, (self.global_confidence * scale).to(probs.device)

    @staticmethod
    def _ema(old: torch.Tensor, new: torch.Tensor, momentum: float) -> torch.Tensor:
        return momentum * old.to(new.device) + (1 - momentum) * new

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            "running_probs": self.running_probs.cpu(),
            "global_confidence": self.global_confidence.cpu(),
            "class_probs": self.class_probs.cpu(),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.running_probs = state["running_probs"].float()
        self.global_confidence = state["global_confidence"].float()
        self.class_probs = state["class_probs"].float()
