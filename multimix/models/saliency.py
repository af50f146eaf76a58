"""Class saliency (|d score / d input|) and the bridge that feeds it to the decoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def normalise_per_image(saliency: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Min-max scale every image of a ``(B, 1, H, W)`` map to ``[0, 1]`` (a flat map becomes 0)."""
    flat = saliency.flatten(1)
    low = flat.min(dim=1).values.view(-1, 1, 1, 1)
    high = flat.max(dim=1).values.view(-1, 1, 1, 1)
    return (saliency - low) / (high - low).clamp_min(eps)


def class_saliency(inputs: torch.Tensor, cls_logits: torch.Tensor, *, retain_graph: bool) -> torch.Tensor:
    """Saliency of the predicted class: ``|d max_c logit_c / d input|``, max over input channels.

    ``inputs`` must be the leaf that produced ``cls_logits`` with ``requires_grad=True``.
    Only the input gradient is computed (``torch.autograd.grad`` with ``inputs=`` the image), so
    no ``.grad`` is ever written to parameters. Keep ``retain_graph=True`` when the same forward
    graph is needed afterwards for the training loss.
    """
    score = cls_logits.max(dim=1).values.sum()  # images are independent, so one sum gives per-image grads
    (grad,) = torch.autograd.grad(score, inputs, retain_graph=retain_graph)
    saliency = grad.abs().amax(dim=1, keepdim=True)
    return normalise_per_image(saliency).detach()


class SaliencyBridge(nn.Module):
    """Concatenate image and saliency, resize to the bottleneck grid: the decoder's extra input."""

    def __init__(self, in_channels: int = 1) -> None:
        super().__init__()
        self.out_channels = in_channels + 1

    def forward(self, image: torch.Tensor, saliency: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        pair = torch.cat([image.detach(), saliency], dim=1)
        # area averaging keeps every input pixel's contribution when shrinking by 2^(levels-1)
        return F.interpolate(pair, size=size, mode="area")
