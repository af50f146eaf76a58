"""Barlow Twins: an alternative stage 1 (cross-correlation of the two views' projections)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from multimix.losses import barlow_twins_loss
from multimix.methods.simclr import SimCLRMethod


@dataclass
class BarlowTwinsMethod(SimCLRMethod):
    """The SimCLR step with the Barlow Twins loss in place of NT-Xent (same views, same probe)."""

    lambda_offdiag: float = 5e-3

    def ssl_loss(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return barlow_twins_loss(z1, z2, self.lambda_offdiag)
