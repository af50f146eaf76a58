"""Optimisers and learning-rate schedules a method can choose (``<section>.optimizer``)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

OPTIMIZERS = ("adam", "adamw", "sgd")


def build_optimizer(
    name: str, parameters: Iterable[nn.Parameter], *, lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    """``adam`` (the paper's), ``adamw`` (decoupled weight decay) or ``sgd`` (momentum 0.9, Nesterov)."""
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, weight_decay=weight_decay, momentum=0.9, nesterov=True)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


class WarmupCosine:
    """LR factor: linear warm-up, then cosine decay to ``floor`` (a plain object, so it checkpoints)."""

    def __init__(self, total_steps: int, warmup_steps: int = 0, schedule: str = "cosine", floor: float = 0.01) -> None:
        if schedule not in ("cosine", "constant"):
            raise ValueError(f"unknown schedule {schedule!r}; expected 'cosine' or 'constant'")
        self.total_steps, self.warmup_steps, self.schedule, self.floor = total_steps, warmup_steps, schedule, floor

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))


def warmup_cosine_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, schedule: str
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step scheduler of :class:`WarmupCosine` (``schedule``: ``cosine`` or ``constant``)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(total_steps, warmup_steps, schedule))
