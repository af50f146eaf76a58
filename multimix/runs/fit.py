"""Training a prepared run to its end: the trainer with the method's optimiser, validation that
picks ``best.pt``, the checks across processes, the calibration of ``best.pt``'s classifier on the
validation images (stored in it), and the evaluation of ``best.pt`` on the held-out images written
to ``summary.json``."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from multimix.config import Config
from multimix.config.run_info import RunInfo
from multimix.data.records import CLASS_NAMES
from multimix.data.streams import StepBatches, step_loader
from multimix.engine.distributed import (
    DistributedContext,
    all_gather,
    parameter_digest,
    rank_device,
)
from multimix.engine.trainer import Trainer
from multimix.evaluation.validation import evaluate_records, selection_score, validation_calibration
from multimix.methods import Method
from multimix.metrics.calibration import CHECKPOINT_KEY as CALIBRATION_KEY
from multimix.models.factory import describe_network
from multimix.runs.model_card import write_card
from multimix.runs.wiring import RunStart, step_batches
from multimix.utils.atomic import atomic_write_text
from multimix.utils.checkpoints import load_checkpoint, save_checkpoint
from multimix.utils.device import resolve_device

logger = logging.getLogger(__name__)

SUMMARY_KEYS = ("accuracy", "f1_normal", "f1_pneumonia", "dice")


def format_table(summary: dict[str, Any]) -> str:
    """The final results as a small fixed-width table."""
    header = f"{'':<14}" + "".join(f"{k:>14}" for k in SUMMARY_KEYS)
    rows = [header]
    for domain in ("in_domain", "cross_domain"):
        values = summary.get(domain, {})
        cells = "".join(f"{values[k]:>14.4f}" if k in values else f"{'-':>14}" for k in SUMMARY_KEYS)
        rows.append(f"{domain:<14}{cells}")
    return "\n".join(rows)


def check_replicas(context: DistributedContext, model: torch.nn.Module, batches: StepBatches) -> dict[str, Any]:
    """After training: are the weights bit-identical on every rank, and did the ranks draw
    disjoint images (first step of every stream)? Recorded in ``summary.json``."""
    first_step = {
        name: sorted(batches.streams[name][i].uid for i in batches.indices(name, 0)) for name in batches.streams
    }
    digests = all_gather(context, parameter_digest(model))
    draws = all_gather(context, first_step)
    disjoint = all(not set(a[name]) & set(b[name]) for i, a in enumerate(draws) for b in draws[i + 1 :] for name in a)
    return {
        "world_size": context.world_size,
        "backend": context.backend,
        "parameters_identical": len(set(digests)) == 1,
        "ranks_drew_disjoint_images": disjoint,
    }


def build_trainer(
    cfg: Config,
    context: DistributedContext,
    out_dir: Path,
    environment: dict[str, Any],
    model: torch.nn.Module,
    method: Method,
    batches: Callable[[int], Any],
    evaluate: Callable[[torch.nn.Module], dict[str, float]] | None,
    run_info: dict[str, Any] | None = None,
) -> Trainer:
    """The trainer of every kind of run: the method's optimiser and schedule, and checkpoints
    that carry the run record (:class:`~multimix.config.run_info.RunInfo`: the config, the
    environment, the network's description and ``run_info``'s fields: stage, architecture,
    class prior)."""
    extra = dict(run_info or {})
    # the checkpoint rebuilds its network from its description alone
    network = describe_network(model, extra.get("architecture"))
    info = RunInfo(
        config=cfg.to_dict(), environment=environment, class_names=CLASS_NAMES, network=network, **extra
    ).to_dict()
    optimizer, scheduler = method.configure_optimizer(model, cfg.train)
    return Trainer(
        model,
        method,
        batches,
        cfg.train,
        out_dir,
        optimizer=optimizer,
        scheduler=scheduler,
        evaluate=evaluate,
        run_info=info,
        context=context,
    )


def fit_and_evaluate(
    cfg: Config,
    context: DistributedContext,
    run: RunStart,
    model: torch.nn.Module,
    method: Method,
    streams: dict[str, list],
    *,
    resume: bool,
    progress: bool,
    run_info: dict[str, Any] | None = None,
    strong_views: bool = True,
) -> dict[str, Any] | None:
    """Train ``model`` with ``method`` on ``streams`` (validation picks ``best.pt``), then evaluate
    ``best.pt`` on the split's test and cross-domain images; writes and returns ``summary.json``'s
    content on rank 0 (``None`` on other ranks). ``run_info`` adds to what every checkpoint stores."""
    split, records = run.split, run.records
    if context.is_main:
        logger.info(
            f"run folder: {run.out_dir}"
            + (f" ({context.world_size} processes, {context.backend})" if context.enabled else "")
        )
        logger.info("streams: " + ", ".join(f"{name} {len(pool)}" for name, pool in streams.items()))
        logger.info(f"held out: val {len(split.val)}, test {len(split.test)}, cross-domain {len(split.cross)}")
    device = rank_device(context, resolve_device(cfg.train.device))
    eval_kw = dict(
        image_size=cfg.data.image_size,
        intensity=cfg.data.intensity,
        batch_size=cfg.train.eval_batch_size,
        device=device,
    )
    val_records = [records[uid] for uid in split.val]

    def batches(start_step: int):
        dataset = step_batches(cfg, streams, context, start_step, strong_views)
        return step_loader(dataset, num_workers=cfg.data.num_workers, pin_memory=device.type == "cuda")

    def evaluate(eval_model):
        metrics = evaluate_records(eval_model, val_records, **eval_kw)
        metrics["score"] = selection_score(metrics, cfg.train.select_by)
        return metrics

    trainer = build_trainer(cfg, context, run.out_dir, run.environment, model, method, batches, evaluate, run_info)
    result = trainer.fit(resume=resume, progress=progress)
    replicas = (
        check_replicas(context, trainer.model, step_batches(cfg, streams, context, 0)) if context.enabled else None
    )
    if not context.is_main:
        return None

    best_path = run.out_dir / "checkpoints" / "best.pt"
    best = load_checkpoint(best_path, map_location=device)
    model.load_state_dict(best["model"])
    # the probabilities adapt and predict will see: the same test-time flips
    calibration = validation_calibration(model, val_records, flip_tta=cfg.inference.flip_tta, **eval_kw)
    if calibration is not None:  # label-free adaptation reads honest posteriors from it
        save_checkpoint({**best, CALIBRATION_KEY: calibration.to_dict()}, best_path)
    summary = {
        "in_domain": evaluate_records(model, [records[u] for u in split.test], **eval_kw),
        "cross_domain": evaluate_records(model, [records[u] for u in split.cross], **eval_kw),
        "best_step": result.best_step,
        "steps": result.steps,
        "wall_seconds": round(time.perf_counter() - run.started, 2),
        "train_images_per_second": round(result.images_per_second, 2),
        "precision": trainer.precision_name,
    }
    if calibration is not None:
        summary["calibration"] = calibration.to_dict()
    if replicas is not None:
        summary["distributed"] = replicas
    return summary


def write_summary(out_dir: Path, summary: dict[str, Any]) -> None:
    """``summary.json`` (atomic), the model card of ``best.pt`` and the results table on the console."""
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    best = out_dir / "checkpoints" / "best.pt"
    if best.exists():
        write_card(best)
    logger.info(format_table(summary))
    logger.info(
        f"wall time {summary['wall_seconds']:.1f} s, "
        f"training throughput {summary['train_images_per_second']:.1f} images/s"
    )
