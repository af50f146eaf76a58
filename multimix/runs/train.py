"""One training run end to end: data pools, split, model, method, trainer, final evaluation.

``multimix train`` (and ``scripts/train.py``) is a thin command line over :func:`run_training`.
"""

from __future__ import annotations

import logging
from typing import Any

from multimix.config.schema import Config
from multimix.engine.distributed import DistributedContext, with_process_group
from multimix.methods import build_method
from multimix.models.factory import load_pretrained_encoder, make_model
from multimix.runs.fit import fit_and_evaluate, write_summary
from multimix.runs.folder import holding_run_folder
from multimix.runs.wiring import class_prior, labeled_classes, open_run, stream_records

logger = logging.getLogger(__name__)


def run_training(cfg: Config, *, resume: bool = False, progress: bool = True) -> dict[str, Any] | None:
    """Train ``cfg`` and evaluate the best checkpoint in- and cross-domain; returns the summary.

    Writes into the run folder: ``config.yaml``, ``environment.json``, ``split.json``,
    ``checkpoints/{best,last}.pt``, ``tb/``, ``metrics.jsonl`` and ``summary.json``.
    Under ``torchrun`` every rank trains its shard of each stream with DistributedDataParallel;
    rank 0 alone writes, logs and evaluates, and only rank 0 gets the summary (others ``None``).
    """
    return with_process_group(
        cfg.train.device,
        lambda context: holding_run_folder(
            cfg, context, lambda: _train_and_evaluate(cfg, context, resume=resume, progress=progress)
        ),
    )


def _train_and_evaluate(
    cfg: Config, context: DistributedContext, *, resume: bool, progress: bool
) -> dict[str, Any] | None:
    run = open_run(cfg, context, resume=resume, progress=progress)
    model = make_model(cfg)
    if cfg.model.init_encoder and not resume:
        load_pretrained_encoder(model, cfg.model.init_encoder)
        if context.is_main:
            logger.info(f"encoder initialised from {cfg.model.init_encoder}")
    labels = labeled_classes(run)
    method = build_method(cfg.method.name, cfg, labeled_class_labels=labels)
    streams = stream_records(run.split, run.records, method.streams(model))
    method.bind_streams({name: len(pool) for name, pool in streams.items()})
    summary = fit_and_evaluate(
        cfg,
        context,
        run,
        model,
        method,
        streams,
        resume=resume,
        progress=progress,
        run_info={"class_prior": class_prior(cfg, labels)},
    )
    if summary is not None:
        write_summary(run.out_dir, summary)
    return summary
