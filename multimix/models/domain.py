"""Domain-adversarial head (Ganin & Lempitsky 2015): a small classifier that tries to tell which
hospital an image comes from, behind a gradient reversal, so that the encoder learns features in
which it cannot. Used only in training; inference never calls it.
"""

from __future__ import annotations

import torch
from torch import nn


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coefficient: float) -> torch.Tensor:
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.coefficient * grad, None


def reverse_gradient(x: torch.Tensor, coefficient: float = 1.0) -> torch.Tensor:
    """Identity forward; the backward multiplies the gradient by ``-coefficient``."""
    return _ReverseGradient.apply(x, coefficient)


class DomainHead(nn.Module):
    """``(B, features) -> (B,)`` logit of "this image is not from a classification source"."""

    def __init__(self, features: int, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def forward(self, embedding: torch.Tensor, coefficient: float = 1.0) -> torch.Tensor:
        return self.net(reverse_gradient(embedding, coefficient))[:, 0]
