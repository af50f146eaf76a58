"""Stage 1 of the SimCLRv2 route: contrastive pretraining, with an online linear probe.

The network is :class:`PretrainNet`: a backbone, a projection head (the loss lives in its
output space) and a linear *probe* trained on the backbone's detached features with whatever
labels the batch carries, so the representation's quality is visible while it trains without
the labels ever shaping the backbone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from multimix.config.schema import Config
from multimix.data.keys import VIEW1, VIEW2, Batch
from multimix.losses import nt_xent_loss
from multimix.methods.base import Method, register_method
from multimix.models import SSLModel


class PretrainNet(nn.Module):
    """Backbone + self-supervised head + online linear probe."""

    def __init__(self, ssl: SSLModel, num_classes: int = 2) -> None:
        super().__init__()
        self.ssl = ssl
        # standardised features: pooled InstanceNorm activations differ little between images
        # next to their common offset, and an unscaled linear probe barely moves on them
        self.probe = nn.Sequential(
            nn.BatchNorm1d(ssl.backbone.out_dim, affine=False), nn.Linear(ssl.backbone.out_dim, num_classes)
        )

    @property
    def backbone(self) -> nn.Module:
        return self.ssl.backbone

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features (what the probe and later stages use)."""
        return self.ssl.backbone(x)


def probe_terms(
    model: PretrainNet, features: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy of the probe on the labeled rows, on detached features (no gradient reaches
    the backbone; every row feeds the probe's normalisation statistics). With no labeled row the
    term is a zero that still touches the probe, so distributed training never sees an unused
    parameter."""
    logits = model.probe(features.detach().float())
    labeled = labels >= 0
    if not labeled.any():
        return logits.sum() * 0.0, {}
    loss = F.cross_entropy(logits[labeled], labels[labeled])
    accuracy = (logits[labeled].argmax(dim=1) == labels[labeled]).float().mean()
    return loss, {"probe_ce": float(loss.detach()), "probe_acc": float(accuracy)}


@register_method("simclr")
@dataclass
class SimCLRMethod(Method):
    """NT-Xent between the projections of two views of every image (plus the probe term)."""

    temperature: float = 0.1
    optimizer: str = "adam"

    config_section = "ssl"
    display_name = "SimCLR"
    pretraining = True

    @classmethod
    def head_spec(cls, cfg: Config) -> dict[str, Any]:
        """SimCLRv2's deep projection head: ``ssl.proj_depth`` layers to ``ssl.proj_dim``."""
        return {"kind": "simclr", "out_dim": cfg.ssl.proj_dim, "depth": cfg.ssl.proj_depth}

    @classmethod
    def from_config(cls, cfg: Config, **context: Any) -> SimCLRMethod:
        """``ssl.temperature`` and ``ssl.optimizer``."""
        return cls(temperature=cfg.ssl.temperature, optimizer=cfg.ssl.optimizer)

    def ssl_loss(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return nt_xent_loss(z1, z2, self.temperature)

    def train_step(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        if not isinstance(model, PretrainNet):
            raise TypeError(f"contrastive pretraining trains a PretrainNet, got {type(model).__name__}")
        n = batch[VIEW1].shape[0]
        features, projections = model.ssl(torch.cat([batch[VIEW1], batch[VIEW2]]))
        z1, z2 = projections.float().chunk(2)
        ssl = self.ssl_loss(z1, z2)
        probe, logs = probe_terms(model, features[:n], batch["label"])
        return ssl + probe, {"ssl_loss": float(ssl.detach()), "images": 2 * n, **logs}
