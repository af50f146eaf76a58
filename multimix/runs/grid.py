"""Grids of ordinary training runs (``multimix ablation``, ``multimix devloop``): one run folder per
cell, so a grid can be stopped and continued at will.

A finished cell (its ``summary.json`` exists) is skipped; an interrupted one (a ``last.pt`` and
no summary) resumes from its own ``config.yaml``, never from values given again, so a changed
file or flag cannot alter a run half-way; any other cell trains from the base config and its values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from multimix.config import load_config
from multimix.runs.train import run_training


def cell_state(run_dir: Path) -> str:
    """``finished``, ``interrupted`` or ``new``."""
    if (run_dir / "summary.json").exists():
        return "finished"
    if (run_dir / "checkpoints" / "last.pt").exists():
        return "interrupted"
    return "new"


def train_or_resume(run_dir: Path, *, base_config: str | Path, values: dict[str, Any], progress: bool) -> Path:
    """Train one cell into ``run_dir`` (``base_config`` with ``values``; ``train.out`` is set to
    ``run_dir``), resume it, or skip it when finished; returns ``run_dir``."""
    state = cell_state(run_dir)
    if state == "finished":
        return run_dir
    resume = state == "interrupted"
    own = run_dir / "config.yaml"
    if resume and own.exists():
        cfg = load_config(own, {})
    else:
        cfg = load_config(base_config, {**values, "train.out": str(run_dir)})
    run_training(cfg, resume=resume, progress=progress)
    return run_dir
