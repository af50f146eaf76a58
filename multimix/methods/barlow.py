"""Barlow Twins: an alternative stage 1 (cross-correlation of the two views' projections)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from multimix.config.schema import Config
from multimix.losses import barlow_twins_loss
from multimix.methods.base import register_method
from multimix.methods.simclr import SimCLRMethod


@register_method("barlow")
@dataclass
class BarlowTwinsMethod(SimCLRMethod):
    """The SimCLR step with the Barlow Twins loss in place of NT-Xent (same views, same probe)."""

    lambda_offdiag: float = 5e-3

    display_name = "Barlow"

    @classmethod
    def head_spec(cls, cfg: Config) -> dict[str, Any]:
        """The Barlow Twins projector: hidden layers ``ssl.barlow_dims``."""
        return {"kind": "barlow", "hidden_dims": list(cfg.ssl.barlow_dims)}

    @classmethod
    def from_config(cls, cfg: Config, **context: Any) -> BarlowTwinsMethod:
        """``ssl.barlow_lambda`` and ``ssl.optimizer``."""
        return cls(lambda_offdiag=cfg.ssl.barlow_lambda, optimizer=cfg.ssl.optimizer)

    def ssl_loss(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return barlow_twins_loss(z1, z2, self.lambda_offdiag)
