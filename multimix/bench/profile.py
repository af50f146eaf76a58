"""Where the time of one MultiMix training step goes: torch.profiler over named scopes.

The method and the model mark their parts (:data:`~multimix.methods.multimix.SCOPE_CLASSIFICATION`
and the others); this module runs a few steps under the profiler and reports each part's
inclusive CPU time per step and its share of the whole step. Shares are what to compare: the
profiler's own bookkeeping slows every operator a little, so the absolute times read high.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from multimix.bench.training_step import SpeedOptions, autocast_context, benchmark_model, make_batch, paper_method
from multimix.engine.trainer import move_to
from multimix.methods.multimix import (
    SCOPE_CLASSIFICATION,
    SCOPE_DOMAIN,
    SCOPE_LOSSES,
    SCOPE_SEGMENTATION,
)
from multimix.models.multimix import SCOPE_DECODER, SCOPE_SALIENCY

SCOPE_FORWARD, SCOPE_BACKWARD, SCOPE_OPTIMIZER = "forward", "backward", "optimizer"
# (scope, depth) in the order of the report: the step's three phases, the forward's parts below it
REPORT_SCOPES: tuple[tuple[str, int], ...] = (
    (SCOPE_FORWARD, 0),
    (SCOPE_CLASSIFICATION, 1),
    (SCOPE_SEGMENTATION, 1),
    (SCOPE_SALIENCY, 2),
    (SCOPE_DECODER, 2),
    (SCOPE_LOSSES, 1),
    (SCOPE_DOMAIN, 1),
    (SCOPE_BACKWARD, 0),
    (SCOPE_OPTIMIZER, 0),
)


@dataclass(frozen=True)
class ScopeTime:
    """One part of the step: inclusive CPU milliseconds per step and share of the step's wall time."""

    name: str
    depth: int
    ms_per_step: float
    share: float


def profile_training_step(
    image_size: int, batch_size: int = 4, *, steps: int = 3, seed: int = 0, options: SpeedOptions | None = None
) -> list[ScopeTime]:
    """Profile ``steps`` MultiMix training steps (after one warm-up step) on the benchmark's
    five-stream batch; CPU only. Parts a step does not run (e.g. no domain head) are left out."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    device = torch.device("cpu")
    options = options or SpeedOptions()
    model = benchmark_model(seed).train()
    method = paper_method()
    batch = move_to(make_batch(image_size, batch_size, seed), device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        with record_function(SCOPE_FORWARD), autocast_context(device, options.autocast):
            loss, _ = method.train_step(model, batch)
        optimizer.zero_grad(set_to_none=True)
        with record_function(SCOPE_BACKWARD):
            loss.backward()
        with record_function(SCOPE_OPTIMIZER):
            optimizer.step()

    step()  # first-call allocations and kernel choices stay out of the measurement
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        wall_ms = (time.perf_counter() - start) * 1000 / steps
    inclusive = {event.key: event.cpu_time_total / 1000 / steps for event in prof.key_averages()}
    return [
        ScopeTime(name, depth, inclusive[name], inclusive[name] / wall_ms)
        for name, depth in REPORT_SCOPES
        if name in inclusive
    ]


def format_profile(rows: list[ScopeTime]) -> str:
    """The rows as an indented text table (part, ms per step, share)."""
    lines = [f"{'part':<28} {'ms/step':>9} {'share':>6}"]
    for row in rows:
        lines.append(f"{'  ' * row.depth + row.name:<28} {row.ms_per_step:>9.1f} {row.share:>6.0%}")
    return "\n".join(lines)
