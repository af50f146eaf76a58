"""Which unlabeled images get a pseudo-label, and which one: distribution alignment, then a
threshold policy.

FixMatch keeps a weak view's prediction when its confidence reaches a fixed threshold. With few
labels and imbalanced classes (CheX is 3:1 pneumonia), that lets the majority class pass first
and confirm itself: the classifier collapses to one class. Two controls, each optional:

* **distribution alignment** (ReMixMatch): the weak-view probabilities are multiplied by
  ``target / running mean of the predictions`` and renormalised, so the pseudo-labels follow a
  target class distribution (the labeled images' ``labeled``, or ``uniform``) rather than
  whatever the current model over-predicts;
* **a threshold policy** (``method.threshold_mode``, :mod:`multimix.methods.thresholds`):
  ``fixed``, FreeMatch's self-adaptive ``freematch`` or FlexMatch's curriculum ``flexmatch``.

The running statistics are state of the method: :meth:`PseudoLabeler.state_dict` goes into every
checkpoint, so a resumed run continues with the same statistics. Under ``torchrun`` the batch
statistics are averaged over the ranks, so every rank keeps identical state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from multimix.methods.thresholds import THRESHOLD_POLICIES, ThresholdPolicy, ema, global_mean

ALIGNMENTS = ("none", "labeled", "uniform")
ALIGNMENT_MOMENTUM = 0.99  # ReMixMatch averages the last 128 batches' predictions


@dataclass
class PseudoLabeler:
    """Turns weak-view logits into pseudo-label probabilities and per-class thresholds.

    Args:
        num_classes: classes of the head.
        threshold: the fixed confidence threshold (``mode="fixed"``).
        mode: a registered threshold policy (:data:`~multimix.methods.thresholds.THRESHOLD_POLICIES`).
        alignment: one of :data:`ALIGNMENTS`.
        labeled_counts: images per class in the labeled set (``alignment="labeled"``).
    """

    num_classes: int = 2
    threshold: float = 0.7
    mode: str = "fixed"
    alignment: str = "none"
    labeled_counts: Sequence[int] | None = None
    running_probs: torch.Tensor = field(init=False)  # EMA of the mean prediction (alignment)
    policy: ThresholdPolicy = field(init=False)

    def __post_init__(self) -> None:
        if self.mode not in THRESHOLD_POLICIES:
            modes = ", ".join(THRESHOLD_POLICIES.available())
            raise ValueError(f"method.threshold_mode must be one of {modes}, got {self.mode!r}")
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
        self.policy = THRESHOLD_POLICIES.get(self.mode)(self.num_classes, self.threshold)

    def bind_pool(self, size: int) -> None:
        """Told the size of the unlabeled class pool before training (FlexMatch remembers each image)."""
        self.policy.bind_pool(size)

    @property
    def is_fixed(self) -> bool:
        """True when this is plain FixMatch (a fixed threshold, no alignment)."""
        return self.mode == "fixed" and self.alignment == "none"

    @torch.no_grad()
    def __call__(
        self, weak_logits: torch.Tensor, *, indices: torch.Tensor | None = None, update: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | float]:
        """``(probs (B, C), threshold)``: the probabilities to take pseudo-labels from, and the
        confidence each image's predicted class must reach (a float, or a ``(C,)`` tensor).
        ``indices`` are the images' positions in the unlabeled pool; ``update=False`` reads the
        statistics without moving them."""
        probs = torch.softmax(weak_logits.detach().float(), dim=1)
        if self.alignment != "none":
            if update:
                self.running_probs = ema(self.running_probs, global_mean(probs), ALIGNMENT_MOMENTUM)
            ratio = self.target.to(probs.device) / self.running_probs.to(probs.device).clamp_min(1e-6)
            probs = probs * ratio
            probs = probs / probs.sum(dim=1, keepdim=True)
        return probs, self.policy(probs, indices, update=update)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"running_probs": self.running_probs.cpu(), **self.policy.state_dict()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.running_probs = state["running_probs"].float()
        self.policy.load_state_dict(state)
