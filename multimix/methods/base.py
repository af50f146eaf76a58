"""The method contract and the registry of methods by name.

A method is one training algorithm: it reads a batch (:mod:`multimix.data.keys`) and returns the
loss to minimise with scalar logs. The trainer (:mod:`multimix.engine.trainer`) calls every hook
below and knows nothing else of it; the run layer builds a method by name from its own config
section (:func:`build_method`) and lets it choose the optimiser and schedule
(:meth:`Method.configure_optimizer`), which it hands to the trainer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from multimix.config.schema import Config, TrainConfig
from multimix.data.keys import Batch
from multimix.losses import balanced_class_weights
from multimix.methods.optim import build_optimizer, warmup_cosine_scheduler
from multimix.utils.registry import Registry


class Method:
    """Base class of every training algorithm.

    Subclasses implement :meth:`train_step` and :meth:`from_config`; the other hooks have
    do-nothing defaults. ``config_section`` names the :class:`~multimix.config.Config` section
    that holds the method's options, ``optimizer`` (a name of :mod:`multimix.methods.optim`)
    among them.
    """

    name: ClassVar[str] = ""
    config_section: ClassVar[str] = "method"
    display_name: ClassVar[str] = ""  # how reports name it (and what was pretrained with it); default: name
    pretraining: ClassVar[bool] = False  # a stage-1 method of `multimix pretrain` (see head_spec)
    optimizer: str = "adam"

    @classmethod
    def head_spec(cls, cfg: Config) -> dict[str, Any] | None:
        """For a pretraining method: the projection head its loss works on, as plain data for
        :func:`multimix.models.classifier.build_head` (``{"kind": ..., ...}``, options from
        ``cfg``). ``None`` for every other method."""
        return None

    @classmethod
    def from_config(cls, cfg: Config, **context: Any) -> Method:
        """The method with the options of ``cfg``; ``context`` carries what only the run knows
        (labeled class labels, a teacher network)."""
        raise NotImplementedError

    def streams(self, model: nn.Module) -> list[str]:
        """The record streams (:data:`multimix.data.keys.STREAM_NAMES`) a batch must hold for ``model``."""
        return []

    def train_step(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss to minimise and scalar logs; ``logs["images"]`` (if present) counts images seen."""
        raise NotImplementedError

    def set_progress(self, step: int, total_steps: int) -> None:
        """Called before every step (for schedules such as an unsupervised-loss ramp-up)."""

    def attach_teacher(self, teacher: nn.Module | None) -> None:
        """Receives the trainer's EMA copy of the model (``None`` when it keeps none)."""

    def state_dict(self) -> dict[str, Any]:
        """State of the method's own (running statistics), saved in ``last.pt``."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""

    def bind_streams(self, sizes: Mapping[str, int]) -> None:
        """Told the pool size of each stream before training starts (and before a resumed run's
        state is loaded); a method that remembers images by their pool index sizes its memory here."""

    def configure_optimizer(
        self, model: nn.Module, train: TrainConfig
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        """The optimiser of ``model``'s parameters (``self.optimizer``, learning rate and weight
        decay of ``train``) and its warm-up + cosine/constant schedule."""
        optimizer = build_optimizer(self.optimizer, model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
        return optimizer, warmup_cosine_scheduler(optimizer, train.total_steps, train.warmup_steps, train.schedule)


METHODS: Registry[type[Method]] = Registry("method")
M = TypeVar("M", bound=type[Method])


def register_method(name: str) -> Callable[[M], M]:
    """Class decorator: make a :class:`Method` buildable by ``name``."""

    def register(cls: M) -> M:
        METHODS.register(name, cls)
        cls.name = name
        if "display_name" not in vars(cls):  # a subclass never inherits its parent's display name
            cls.display_name = name
        return cls

    return register


def available_methods(*, pretraining: bool | None = None) -> list[str]:
    """Names :func:`build_method` accepts; ``pretraining=True`` only stage-1 methods (the choices
    of ``multimix pretrain --method``), ``False`` only the others."""
    return sorted(name for name, cls in METHODS.items() if pretraining is None or cls.pretraining == pretraining)


def method_class(name: str) -> type[Method]:
    """The registered class of ``name`` (``ValueError`` listing the registered ones)."""
    return METHODS.get(name)


def build_method(name: str, cfg: Config, **context: Any) -> Method:
    """The registered method ``name`` with its options from ``cfg``.

    Raises:
        ValueError: no method of that name (the message lists the registered ones).
    """
    return method_class(name).from_config(cfg, **context)


def class_weights_for(cfg: Config, labels: list[int]) -> torch.Tensor | None:
    """``method.class_weights``: ``balanced`` (inverse class frequency of ``labels``) or ``none``."""
    if cfg.method.class_weights not in ("none", "balanced"):
        raise ValueError(f"method.class_weights must be 'none' or 'balanced', got {cfg.method.class_weights!r}")
    if cfg.method.class_weights == "balanced" and labels:
        return balanced_class_weights(labels, cfg.model.num_classes)
    return None
