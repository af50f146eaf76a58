"""What a task model's forward pass returns (:class:`TaskOutput`), for every network of the library."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TaskOutput:
    """What one forward pass returns; fields a variant does not compute are ``None``.

    Attributes:
        seg_logits: ``(B, seg_channels, H, W)`` segmentation logits (sigmoid for probabilities).
        cls_logits: ``(B, num_classes)`` classification logits.
        saliency: ``(B, 1, H, W)`` saliency of the predicted class in ``[0, 1]``, detached.
        features: encoder features of every level, shallow to deep (only when asked for).
        embedding: ``(B, widths[-1])`` the pooled bottleneck the class head reads (only when asked for).
        lung_logits: ``(B, 1, h, w)`` coarse lung map on the bottleneck grid, for
            ``cls_pooling="lung"`` (``None`` otherwise).
    """

    seg_logits: torch.Tensor | None = None
    cls_logits: torch.Tensor | None = None
    saliency: torch.Tensor | None = None
    features: list[torch.Tensor] | None = None
    embedding: torch.Tensor | None = None
    lung_logits: torch.Tensor | None = None

    def required(self, name: str) -> torch.Tensor:
        """The tensor field ``name``; ``ValueError`` when this model or call did not compute it."""
        value = getattr(self, name)
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"the model computed no {name} (a variant without that head, or not asked for)")
        return value


MultiMixOutput = TaskOutput  # the name before SSL classifiers returned it too
