"""Stage 2 of the SimCLRv2 route: supervised fine-tuning of every layer on the labeled images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from multimix.config.schema import Config
from multimix.data.keys import CLS_X, CLS_Y, Batch
from multimix.losses import cross_entropy
from multimix.methods.base import Method, class_weights_for, register_method
from multimix.models.base import as_task_model


@register_method("finetune")
@dataclass
class FineTuneMethod(Method):
    """Cross-entropy (optionally class-weighted) of the classifier on the labeled stream ``cls_x``.

    Args:
        class_weights: ``(num_classes,)`` weights, e.g. from
            :func:`~multimix.losses.balanced_class_weights`, or ``None`` for the plain loss.
    """

    class_weights: torch.Tensor | None = None
    optimizer: str = "adam"

    config_section = "ssl"

    @classmethod
    def from_config(cls, cfg: Config, *, labeled_class_labels: Sequence[int] = (), **context: Any) -> FineTuneMethod:
        """``method.class_weights`` over ``labeled_class_labels``, and ``ssl.optimizer``."""
        return cls(class_weights=class_weights_for(cfg, list(labeled_class_labels)), optimizer=cfg.ssl.optimizer)

    def streams(self, model: nn.Module) -> list[str]:
        return [CLS_X]

    def train_step(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        logits = as_task_model(model).classify(batch[CLS_X]).required("cls_logits").float()
        loss = cross_entropy(logits, batch[CLS_Y], self.class_weights)
        accuracy = (logits.argmax(dim=1) == batch[CLS_Y]).float().mean()
        return loss, {"ce": float(loss.detach()), "acc": float(accuracy), "images": batch[CLS_X].shape[0]}
