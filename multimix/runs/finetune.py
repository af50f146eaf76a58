"""Stage 2 of the SimCLRv2 route end to end: a pretrained network fine-tuned on a label budget.

``multimix finetune`` is a thin command line over :func:`run_finetuning`. The classifier keeps
the backbone and the first ``ssl.from_proj_layer`` layers of the stage-1 projection head
(SimCLRv2's choice is 1), puts a fresh linear classifier on top and trains every layer with the
cross-entropy on the split's labeled classification images (``data.cls_labels`` or ``--split``).
Without ``ssl.pretrained`` the same network starts from random weights: the supervised control.
The run folder is a training run's, and ``best.pt`` loads with
:func:`multimix.models.load_trained_model`, so ``multimix evaluate`` and
``multimix select-labels`` accept it.
"""

from __future__ import annotations

import logging
from typing import Any

from multimix.config import Config
from multimix.engine.distributed import DistributedContext, with_process_group
from multimix.methods import build_method
from multimix.models.classifier import (
    Architecture,
    SSLClassifier,
    build_ssl_model,
    classifier_architecture,
    classifier_on,
)
from multimix.runs.fit import fit_and_evaluate, write_summary
from multimix.runs.folder import holding_run_folder
from multimix.runs.pretrain import load_pretrained_ssl, pretrain_architecture, pretrained_with
from multimix.runs.wiring import labeled_classes, open_run, stream_records
from multimix.utils.seeding import seed_everything

logger = logging.getLogger(__name__)


def make_finetune_model(cfg: Config) -> tuple[SSLClassifier, Architecture]:
    """The stage-2 classifier: from ``ssl.pretrained`` (its own architecture and weights) or, if
    unset, the architecture ``cfg.ssl`` describes with random weights."""
    if cfg.ssl.pretrained:
        ssl_model, ssl_arch = load_pretrained_ssl(cfg.ssl.pretrained)
    else:
        ssl_arch = pretrain_architecture(cfg)
        ssl_model = build_ssl_model(ssl_arch)
    start = pretrained_with(ssl_arch) if cfg.ssl.pretrained else "Scratch"
    name = f"{start}-FT ({ssl_arch['backbone']})"
    k, classes = cfg.ssl.from_proj_layer, cfg.model.num_classes
    return classifier_on(ssl_model, k, classes, name), classifier_architecture(ssl_arch, k, classes, name)


def run_finetuning(cfg: Config, *, resume: bool = False, progress: bool = True) -> dict[str, Any] | None:
    """Fine-tune, then evaluate ``best.pt`` in- and cross-domain; returns the summary on rank 0.

    Writes the same run folder as :func:`multimix.runs.train.run_training`.
    """
    return with_process_group(
        cfg.train.device,
        lambda context: holding_run_folder(
            cfg, context, lambda: _finetune(cfg, context, resume=resume, progress=progress)
        ),
    )


def _finetune(cfg: Config, context: DistributedContext, *, resume: bool, progress: bool) -> dict[str, Any] | None:
    seed_everything(cfg.train.seed)  # the new layers' initial weights follow --seed
    model, architecture = make_finetune_model(cfg)  # before the run folder: a bad checkpoint leaves none behind
    run = open_run(cfg, context, resume=resume, progress=progress)
    labels = labeled_classes(run)
    method = build_method("finetune", cfg, labeled_class_labels=labels)
    streams = stream_records(run.split, run.records, method.streams(model))
    if context.is_main:
        start = cfg.ssl.pretrained or "random weights (no --pretrained)"
        logger.info(
            f"fine-tuning from {start}, {cfg.ssl.from_proj_layer} projection layer(s) kept, "
            f"{len(labels)} labeled images ({sum(labels)} pneumonia)"
        )
    run_info = {"stage": "finetune", "architecture": architecture}
    summary = fit_and_evaluate(
        cfg, context, run, model, method, streams, resume=resume, progress=progress, run_info=run_info
    )
    if summary is not None:
        summary.update(
            {
                "labeled_images": len(labels),
                "pretrained": cfg.ssl.pretrained,
                "from_proj_layer": cfg.ssl.from_proj_layer,
            }
        )
        write_summary(run.out_dir, summary)
    return summary
