"""Multi-process training under ``torchrun``: process group set-up, rank roles, small collectives.

``torchrun`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; without them (a plain
``multimix train``) everything here is a no-op for a single process, so the training
code has one path. The backend is NCCL when every rank has a GPU, else gloo.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in the job."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, evaluates and writes checkpoints."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device: str = "auto") -> DistributedContext:
    """Join the process group ``torchrun`` describes (idempotent); a single process otherwise.

    Args:
        device: the run's device setting; ``cpu`` forces gloo even where GPUs exist.
    """
    if not launched_by_torchrun():
        return DistributedContext()
    rank, local_rank, world = (int(os.environ[k]) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
    use_cuda = device != "cpu" and torch.cuda.is_available()
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistributedContext(rank=rank, local_rank=local_rank, world_size=world, backend=backend)


def rank_device(context: DistributedContext, device: torch.device) -> torch.device:
    """Each rank's own GPU under NCCL; the resolved device otherwise."""
    if context.enabled and device.type == "cuda":
        return torch.device("cuda", context.local_rank)
    return device


def barrier(context: DistributedContext) -> None:
    if context.enabled:
        dist.barrier()


def all_gather(context: DistributedContext, value: Any) -> list[Any]:
    """``value`` of every rank (picklable plain data), in rank order."""
    if not context.enabled:
        return [value]
    gathered: list[Any] = [None] * context.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def broadcast_buffers(context: DistributedContext, module: torch.nn.Module) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics).

    DistributedDataParallel copies rank 0's buffers to the others at the start of each forward,
    so after the last step each rank still holds its own last update; this makes the replicas
    equal to what rank 0 saves."""
    if context.enabled:
        for buffer in module.buffers():
            dist.broadcast(buffer.data, src=0)


def any_rank(context: DistributedContext, flag: bool, device: torch.device) -> bool:
    """True when ``flag`` is true on at least one rank (so every rank takes the same branch)."""
    if not context.enabled:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)


def parameter_digest(module: torch.nn.Module) -> str:
    """SHA-256 of every parameter's bytes: equal digests mean bit-identical weights."""
    digest = hashlib.sha256()
    for name, param in module.state_dict().items():
        digest.update(name.encode())
        digest.update(param.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def shutdown(context: DistributedContext) -> None:
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()


def with_process_group(device: str, body: Callable[[DistributedContext], T]) -> T:
    """``body(context)`` between :func:`init_distributed` and :func:`shutdown` (also on error)."""
    context = init_distributed(device)
    try:
        return body(context)
    finally:
        shutdown(context)
