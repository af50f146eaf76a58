"""A run folder: its name, its lock (one writer at a time), whether a stopped run may resume
with the given config, and what it holds before training starts (``config.yaml``,
``environment.json``)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from multimix.config import Config, save_config
from multimix.config.run_info import RunInfo
from multimix.engine.distributed import DistributedContext, all_gather
from multimix.utils.atomic import atomic_write_text
from multimix.utils.checkpoints import CheckpointError, load_checkpoint
from multimix.utils.device import resolve_device
from multimix.utils.environment import environment_info
from multimix.utils.locks import exclusive_lock

logger = logging.getLogger(__name__)

T = TypeVar("T")


def fresh_run_path(stem: str, parent: Path = Path("runs")) -> Path:
    """``parent/<stem>-<start time>``, with ``-2``, ``-3``... when two runs start within the
    same second, so a default name never lands on another run's folder."""
    base = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, k = parent / base, 1
    while candidate.exists():
        k += 1
        candidate = parent / f"{base}-{k}"
    return candidate


def default_run_name(cfg: Config) -> str:
    """A fresh run folder's name: the model, the label budgets and the start time."""
    return fresh_run_path(f"{cfg.model.name}-seg{cfg.data.seg_labels}-cls{cfg.data.cls_labels}").name


def resolve_run_folder(cfg: Config, context: DistributedContext | None = None) -> Path:
    """``train.out``, or ``runs/<name>`` when unset; fixed in the config on first use, so the
    timestamped default name is chosen once per run (by rank 0, for every rank)."""
    if not cfg.train.out:
        name = cfg.train.name or default_run_name(cfg)
        if context is not None:
            name = all_gather(context, name)[0]
        cfg.train.out = str(Path("runs") / name)
    return Path(cfg.train.out)


def run_folder(checkpoint: str | Path) -> Path:
    """The run folder of ``runs/<run>/checkpoints/best.pt`` (or the checkpoint's folder)."""
    path = Path(checkpoint).resolve()
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


RUN_LOCK = ".lock"
SKIP_REPORT = "skipped.csv"


def holding_run_folder(cfg: Config, context: DistributedContext, body: Callable[[], T]) -> T:
    """Run ``body`` while this process (rank 0) holds the run folder's lock, so a second
    training into the same ``--out`` refuses instead of interleaving files with this one."""
    out_dir = resolve_run_folder(cfg, context)
    if not context.is_main:
        return body()
    created = not out_dir.exists()
    try:
        with exclusive_lock(out_dir / RUN_LOCK, what=f"run folder {out_dir}"):
            return body()
    except BaseException:
        if created:
            _remove_if_only_setup(out_dir)
        raise


# what a run writes before its first training step; a folder holding nothing else was refused
# during set-up (missing --init-encoder, a --split for other data) and is removed again
SETUP_FILES = frozenset({RUN_LOCK, "config.yaml", "environment.json", "split.json", SKIP_REPORT})


def _remove_if_only_setup(out_dir: Path) -> None:
    if not out_dir.is_dir():
        return
    names = {p.name for p in out_dir.iterdir()}
    if names <= SETUP_FILES:
        for name in names:
            (out_dir / name).unlink()
        out_dir.rmdir()


# settings a resumed run may change: how long it trains and where/how it runs, nothing that
# changes the data, the model or the method its checkpoint was trained with


RESUMABLE_CHANGES = frozenset(
    {
        "train.steps",
        "train.epochs",
        "train.device",
        "train.out",
        "train.name",
        "train.log_every",
        "train.eval_batch_size",
        "data.num_workers",
        "real.root",
        "real.cache_dir",
    }
)


def check_resumable(cfg: Config, last: Path) -> int:
    """Check that ``cfg`` can continue the checkpoint ``last``; returns its step.

    Raises:
        CheckpointError: ``last`` is truncated or not a run checkpoint.
        ValueError: a setting differs from the one the checkpoint was trained with (named).
    """
    state = load_checkpoint(last)
    if not RunInfo.recorded(state):
        raise ValueError(f"{last}: checkpoint carries no run config; it cannot be resumed")
    stored = RunInfo.from_checkpoint(state, origin=str(last)).config
    changes = config_changes(Config.from_dict(stored, origin=str(last)), cfg)
    if changes:
        raise ValueError(
            f"cannot resume {last.parent.parent}: {changes}. Resume without changing "
            "them, or start a new run with another --out (nothing was written)"
        )
    return int(state.get("step", 0))


def config_changes(before: Config, now: Config) -> str:
    """The settings that differ between two configs, beyond :data:`RESUMABLE_CHANGES`, as
    ``key was X, now Y`` (the first four); empty when ``now`` may continue ``before``'s runs."""
    old, new = _flatten(before.to_dict()), _flatten(now.to_dict())
    conflicts = [k for k in new if k not in RESUMABLE_CHANGES and new[k] != old.get(k)]
    return "; ".join(f"{k} was {old.get(k)!r}, now {new[k]!r}" for k in conflicts[:4])


def _flatten(sections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {f"{section}.{key}": value for section, values in sections.items() for key, value in values.items()}


def prepare_run_folder(cfg: Config, context: DistributedContext, *, resume: bool) -> tuple[Path, dict[str, Any]]:
    """Create (or check, when resuming) the run folder; ``config.yaml`` is written only once the
    command is known to fit the run, so a refused ``--resume`` leaves the run as it was."""
    resolve_device(cfg.train.device)  # a missing GPU fails here, before any data is read
    out_dir = resolve_run_folder(cfg, context)
    last = out_dir / "checkpoints" / "last.pt"
    if not resume and last.exists():
        raise FileExistsError(f"{out_dir} already holds a run; pass --resume to continue it or choose another --out")
    if resume and context.is_main:
        if last.exists():
            try:
                step = check_resumable(cfg, last)
            except CheckpointError as err:
                raise CheckpointError(
                    f"{err}; this run cannot continue from it (its best.pt may still be usable)"
                ) from err
            logger.info(f"resuming {out_dir} from step {step} of {cfg.train.total_steps}")
        else:
            logger.info(f"note: --resume: {out_dir} has no checkpoint yet; starting a new run there")
    environment = environment_info()
    if context.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out_dir / "config.yaml")
        atomic_write_text(out_dir / "environment.json", json.dumps(environment, indent=2))
    return out_dir, environment
