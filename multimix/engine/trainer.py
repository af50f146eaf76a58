"""The generic training loop. It knows nothing about chest X-rays: it is handed a model, a
method (``train_step(model, batch) -> (loss, logs)``), a source of batches and an evaluation hook.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from multimix.config import TrainConfig
from multimix.data.keys import Batch
from multimix.engine.distributed import DistributedContext, any_rank, broadcast_buffers, rank_device
from multimix.engine.logging import RunLogger
from multimix.utils.checkpoints import load_checkpoint, save_checkpoint
from multimix.utils.device import resolve_device
from multimix.utils.precision import PRECISION_DTYPES, precision_warning, resolve_precision
from multimix.utils.seeding import capture_rng_state, restore_rng_state

logger = logging.getLogger(__name__)


class TrainingMethod(Protocol):
    """What the trainer calls on a method (:class:`multimix.methods.Method` implements every hook)."""

    def train_step(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss to minimise and scalar logs; ``logs["images"]`` (if present) counts images seen."""

    def set_progress(self, step: int, total_steps: int) -> None:
        """Called before every step (for schedules such as an unsupervised-loss ramp-up)."""

    def attach_teacher(self, teacher: nn.Module | None) -> None:
        """Receives the EMA weights (or ``None``) once, when the trainer is built."""

    def state_dict(self) -> dict[str, Any]:
        """The method's own state (running statistics), saved in ``last.pt``."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stopped before the bad update."""


@dataclass
class FitResult:
    steps: int
    best_score: float | None
    best_step: int | None
    train_seconds: float
    images_per_second: float
    last_metrics: dict[str, float] = field(default_factory=dict)


def move_to(batch: Batch, device: torch.device, *, channels_last: bool = False) -> Batch:
    """Tensors of ``batch`` on ``device``; 4-D image tensors in channels-last layout if asked."""

    def move(v: torch.Tensor) -> torch.Tensor:
        v = v.to(device, non_blocking=True)
        return v.contiguous(memory_format=torch.channels_last) if channels_last and v.ndim == 4 else v

    return {k: move(v) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


class StepModule(nn.Module):
    """Model and method as one module whose ``forward(batch)`` is the training loss.

    DistributedDataParallel synchronises gradients of whatever its wrapped module's forward
    computed; wrapping the whole step (classification pass, full pass with the saliency's input
    gradient, all loss terms) gives it exactly one forward per backward.
    """

    def __init__(self, model: nn.Module, method: TrainingMethod) -> None:
        super().__init__()
        self.model = model
        self.method = method

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        return self.method.train_step(self.model, batch)


class Trainer:
    """Backward, step, schedule, EMA, mixed precision, evaluation, checkpoints and logs.

    Args:
        model: the network (moved to the resolved device here).
        method: a :class:`TrainingMethod` (``train_step(model, batch) -> (loss, logs)`` and its hooks).
        batches: ``batches(start_step)`` yields the batch of every step from ``start_step`` on;
            making batches a function of the step is what lets ``resume`` continue exactly.
        config: :class:`~multimix.config.TrainConfig`.
        out_dir: run folder; checkpoints go to ``out_dir/checkpoints/{last,best}.pt``.
        optimizer: the optimiser of ``model``'s parameters (the method chooses it, see
            :meth:`multimix.methods.Method.configure_optimizer`).
        scheduler: stepped once per training step; ``None`` keeps the learning rate constant.
        evaluate: ``evaluate(model) -> metrics`` run after every epoch; ``metrics[score_key]``
            (higher is better) chooses ``best.pt``.
        run_info: plain data stored in every checkpoint (resolved config, split, versions...).
        context: this process's place in a ``torchrun`` job; the model is then wrapped in
            DistributedDataParallel, and only rank 0 evaluates, logs and writes checkpoints.
    """

    def __init__(
        self,
        model: nn.Module,
        method: TrainingMethod,
        batches: Callable[[int], Iterable[Batch]],
        config: TrainConfig,
        out_dir: str | Path,
        *,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
        score_key: str = "score",
        run_info: dict[str, Any] | None = None,
        context: DistributedContext | None = None,
    ) -> None:
        self.config = config
        self.context = context or DistributedContext()
        self.device = rank_device(self.context, resolve_device(config.device))
        if self.context.enabled and self.device.type == "cuda":
            # batch statistics over the whole global batch, as SimCLR's global BN (CUDA only in PyTorch)
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model.to(self.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.method = method
        self.step_module: nn.Module = StepModule(self.model, method)
        if self.context.enabled:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.step_module = nn.parallel.DistributedDataParallel(self.step_module, device_ids=device_ids)
        self.batches = batches
        self.evaluate_fn = evaluate
        self.score_key = score_key
        self.run_info = run_info or {}
        self.out_dir = Path(out_dir)
        self.checkpoint_dir = self.out_dir / "checkpoints"
        self.total_steps = config.total_steps
        self.optimizer = optimizer
        self.scheduler = scheduler or torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        self.autocast_dtype = self._autocast_dtype()
        if self.context.is_main and (slow := precision_warning(config.precision, self.device)):
            logger.warning(f"warning: {slow}")
        if self.context.is_main:
            logger.info(f"precision: {self.precision_name} (train.precision {config.precision})")
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.autocast_dtype == torch.float16)
        self.ema: AveragedModel | None = None
        if config.ema_decay > 0:
            self.ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
        method.attach_teacher(
            self.ema.module if self.ema is not None else None
        )  # e.g. pseudo-labels from the EMA weights
        self.step = 0
        self.best_score: float | None = None
        self.best_step: int | None = None

    def _autocast_dtype(self) -> torch.dtype | None:
        return resolve_precision(self.config.precision, self.device)

    @property
    def precision_name(self) -> str:
        """The arithmetic this run trains in: ``fp32``, ``bf16`` or ``fp16`` (autocast)."""
        return next(name for name, dtype in PRECISION_DTYPES.items() if dtype == self.autocast_dtype)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    @property
    def eval_model(self) -> nn.Module:
        """The weights used for evaluation and ``best.pt``: the EMA copy when EMA is on."""
        return self.ema.module if self.ema is not None else self.model

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "best_score": self.best_score,
            "best_step": self.best_step,
            "rng": capture_rng_state(),
            "method": self.method.state_dict(),
            "run": self.run_info,
            "precision": self.precision_name,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.config.precision == "auto" and state.get("precision") in PRECISION_DTYPES:
            # `auto` measures the CPU, and a busy machine may measure otherwise: a resumed run
            # keeps the arithmetic it started with
            self.autocast_dtype = PRECISION_DTYPES[state["precision"]]
            self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.autocast_dtype == torch.float16)
        self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.best_score, self.best_step = state.get("best_score"), state.get("best_step")
        if state.get("method"):
            self.method.load_state_dict(state["method"])
        restore_rng_state(state["rng"])

    def resume(self) -> bool:
        """Continue from ``checkpoints/last.pt`` if it exists; returns whether it did."""
        if self.context.is_main:
            for stale in self.checkpoint_dir.glob(".*.tmp"):  # a write cut short by a kill
                stale.unlink(missing_ok=True)
        last = self.checkpoint_dir / "last.pt"
        if not last.exists():
            return False
        self.load_state_dict(load_checkpoint(last, map_location=self.device))
        return True

    def _save_best(self, metrics: dict[str, float]) -> None:
        state = {
            "model": self.eval_model.state_dict(),
            "step": self.step,
            "metrics": metrics,
            "run": self.run_info,
            "precision": self.precision_name,
        }
        save_checkpoint(state, self.checkpoint_dir / "best.pt")

    # ----------------------------------------------------------------- loop
    def train_step(self, batch: Batch) -> dict[str, float]:
        self.model.train()
        self.method.set_progress(self.step, self.total_steps)
        with self.autocast():
            loss, logs = self.step_module(batch)
        # every rank must stop together, or the others would wait forever in the next all-reduce
        if any_rank(self.context, not torch.isfinite(loss.detach()).item(), self.device):
            terms = ", ".join(f"{k}={v:.4g}" for k, v in logs.items())
            last = self.checkpoint_dir / "last.pt"
            saved = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was written before it"
            raise NonFiniteLossError(
                f"loss became {loss.item()} at step {self.step} ({terms}); stopped before the update, {saved}. "
                "Lower train.lr or check the data."
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            logs["grad_norm"] = float(nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        logs["loss"] = float(loss.detach())
        logs["lr"] = self.scheduler.get_last_lr()[0]
        return logs

    def run_evaluation(self) -> dict[str, float]:
        if self.evaluate_fn is None or not self.context.is_main:
            return {}
        self.eval_model.eval()
        metrics = self.evaluate_fn(self.eval_model)
        score = metrics.get(self.score_key)
        if score is not None and (self.best_score is None or score > self.best_score):
            self.best_score, self.best_step = float(score), self.step
            self._save_best(metrics)
        return metrics

    def fit(self, *, resume: bool = False, progress: bool = True) -> FitResult:
        """Train to ``config.total_steps`` (continuing from ``last.pt`` when ``resume``)."""
        if resume:
            self.resume()
        main = self.context.is_main
        logger = RunLogger(self.out_dir, start_step=self.step, enabled=main)
        steps_per_epoch = max(1, self.config.steps_per_epoch)
        images, seconds, metrics = 0, 0.0, {}
        bar = tqdm(
            total=self.total_steps, initial=self.step, disable=not (progress and main), desc="train", dynamic_ncols=True
        )
        batches: Iterator[Batch] = iter(self.batches(self.step))
        try:
            while self.step < self.total_steps:
                started = time.perf_counter()
                logs = self.train_step(move_to(next(batches), self.device, channels_last=self.config.channels_last))
                seconds += time.perf_counter() - started
                images += int(logs.pop("images", 0)) * self.context.world_size  # every rank runs the same batch sizes
                self.step += 1
                logs["images_per_second"] = images / max(seconds, 1e-9)
                if self.step % self.config.log_every == 0 or self.step == self.total_steps:
                    logger.log(self.step, "train", logs)
                bar.update(1)
                bar.set_postfix(_postfix(logs), refresh=False)
                if self.step % steps_per_epoch == 0 or self.step == self.total_steps:
                    metrics = self.run_evaluation()
                    if metrics:
                        logger.log(self.step, "val", metrics)
                        bar.write(f"step {self.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
                    if main:
                        save_checkpoint(self.state_dict(), self.checkpoint_dir / "last.pt")
        finally:
            bar.close()
            logger.close()
        broadcast_buffers(self.context, self.model)
        if self.evaluate_fn is None and main:
            self._save_best({})
        return FitResult(
            steps=self.step,
            best_score=self.best_score,
            best_step=self.best_step,
            train_seconds=seconds,
            images_per_second=images / max(seconds, 1e-9),
            last_metrics=metrics,
        )


def _postfix(logs: dict[str, float]) -> dict[str, str]:
    shown = ("loss", "pass_rate", "images_per_second")
    names = {"images_per_second": "img/s"}
    return {names.get(k, k): f"{logs[k]:.3g}" for k in shown if k in logs}
