"""The interface task models share, for code that takes any of them (methods, evaluation, prediction).

:class:`~multimix.models.MultiMixNet` (every paper variant) and
:class:`~multimix.models.classifier.SSLClassifier` (fine-tuned and distilled networks) both
implement it; a field a model cannot produce is ``None`` in its :class:`TaskOutput`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from multimix.models.output import TaskOutput


@runtime_checkable
class TaskModel(Protocol):
    """A network with a classification path and (optionally) a segmentation path."""

    @property
    def has_cls_head(self) -> bool: ...

    @property
    def has_seg_head(self) -> bool: ...

    def classify(self, x: torch.Tensor, *, return_embedding: bool = False) -> TaskOutput:
        """The class head only (no decoder): ``cls_logits`` (and ``embedding`` if asked)."""
        ...

    def __call__(self, x: torch.Tensor, *, return_features: bool = False) -> TaskOutput:
        """Every head the model has, with its saliency."""
        ...


def as_task_model(model: object) -> TaskModel:
    """``model`` as a :class:`TaskModel`; ``TypeError`` naming its class when it is none."""
    if not isinstance(model, TaskModel):
        raise TypeError(
            f"{type(model).__name__} is not a task model (it needs classify(), has_cls_head and has_seg_head)"
        )
    return model
