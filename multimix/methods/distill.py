"""Stage 3 of the SimCLRv2 route: distil a trained teacher into a (smaller) student."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from multimix.config.schema import Config
from multimix.data.keys import CLS_U, CLS_W, CLS_X, CLS_Y, Batch
from multimix.losses import cross_entropy, distillation_loss
from multimix.methods.base import Method, class_weights_for, register_method
from multimix.models.base import as_task_model


@register_method("distill")
@dataclass
class DistillationMethod(Method):
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))`` on unlabeled images (``cls_w``),
    plus ``labeled_weight`` times the cross-entropy on labeled ones (``cls_x``) if asked.

    The teacher is frozen: it runs in eval mode without a graph, and never enters the optimiser
    (only the trained model's parameters do). Keep it on the training device.

    Args:
        teacher: any model with ``classify(x).cls_logits`` (a fine-tuned classifier or MultiMix).
        temperature: softening temperature ``T``.
        labeled_weight: weight of the labeled cross-entropy; 0 distils from unlabeled images only.
        class_weights: optional class weights of that cross-entropy.
    """

    teacher: nn.Module
    temperature: float = 1.0
    labeled_weight: float = 0.0
    class_weights: torch.Tensor | None = None
    optimizer: str = "adam"

    config_section = "distill"

    @classmethod
    def from_config(
        cls, cfg: Config, *, teacher: nn.Module | None = None, labeled_class_labels: Sequence[int] = (), **context: Any
    ) -> DistillationMethod:
        """The ``distill`` section; ``teacher`` is the loaded teacher network (on the training device)."""
        if teacher is None:
            raise ValueError("distillation needs the teacher network (distill.teacher)")
        return cls(
            teacher,
            temperature=cfg.distill.temperature,
            labeled_weight=cfg.distill.labeled_weight,
            class_weights=class_weights_for(cfg, list(labeled_class_labels)),
            optimizer=cfg.distill.optimizer,
        )

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"distillation temperature must be > 0, got {self.temperature}")
        self.teacher.eval().requires_grad_(False)
        self._teacher = as_task_model(self.teacher)  # checked once, not every step

    def streams(self, model: nn.Module) -> list[str]:
        return [CLS_U, CLS_X] if self.labeled_weight > 0 else [CLS_U]

    def train_step(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        unlabeled = batch[CLS_W]
        with torch.no_grad():
            teacher_logits = self._teacher.classify(unlabeled).required("cls_logits")
        labeled = batch.get(CLS_X) if self.labeled_weight > 0 else None
        images = unlabeled if labeled is None else torch.cat([unlabeled, labeled])
        logits = as_task_model(model).classify(images).required("cls_logits").float()
        student_logits = logits[: unlabeled.shape[0]]
        loss = distillation_loss(student_logits, teacher_logits, self.temperature)
        agreement = (student_logits.argmax(dim=1) == teacher_logits.argmax(dim=1)).float().mean()
        logs = {"distill": float(loss.detach()), "agreement": float(agreement), "images": images.shape[0]}
        if labeled is not None:
            ce = cross_entropy(logits[unlabeled.shape[0] :], batch[CLS_Y], self.class_weights)
            loss = loss + self.labeled_weight * ce
            logs["ce"] = float(ce.detach())
        return loss, logs
