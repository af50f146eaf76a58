"""Stage 3 of the SimCLRv2 route end to end: distil a trained classifier into a smaller student.

``multimix distill`` is a thin command line over :func:`run_distillation`. The student
(``distill.backbone``: a U-Net encoder of ``distill.widths``, by default half of ``model.widths``, or
a ResNet) with a linear classifier learns ``softmax(teacher / T)`` on every training image of
the data, labels unused; ``distill.labeled_weight > 0`` adds the cross-entropy on the teacher
run's labeled images. The teacher run's ``split.json`` is reused, so both are evaluated on the
same held-out images, and ``summary.json`` reports the teacher's numbers beside the student's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torch import nn

from multimix.config import Config
from multimix.data.keys import CLS_U, CLS_X
from multimix.engine.distributed import DistributedContext, rank_device, with_process_group
from multimix.evaluation.validation import evaluate_records
from multimix.methods import build_method
from multimix.models.classifier import (
    Architecture,
    build_classifier,
    classifier_architecture,
    ssl_architecture,
)
from multimix.models.factory import TrainedModel, load_trained_model
from multimix.runs.fit import fit_and_evaluate, write_summary
from multimix.runs.folder import holding_run_folder
from multimix.runs.wiring import labeled_classes, open_run
from multimix.utils.device import resolve_device
from multimix.utils.seeding import seed_everything

logger = logging.getLogger(__name__)


def student_architecture(cfg: Config) -> Architecture:
    """Backbone (``distill.backbone``) + linear classifier, as plain data."""
    d, m = cfg.distill, cfg.model
    if d.backbone == "unet":
        widths = d.widths or [max(1, w // 2) for w in m.widths]
        kwargs: dict[str, Any] = dict(
            widths=list(widths),
            in_channels=m.in_channels,
            dropout=m.dropout,
            norm=m.norm,
            negative_slope=m.negative_slope,
        )
    else:
        kwargs = dict(width_multiplier=d.width_multiplier, in_channels=m.in_channels)
    name = (
        f"Student ({d.backbone} {'-'.join(map(str, kwargs['widths']))})"
        if d.backbone == "unet"
        else f"Student ({d.backbone} x{d.width_multiplier:g})"
    )
    return classifier_architecture(ssl_architecture(d.backbone, kwargs, None), 0, m.num_classes, name)


def parameter_count(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def load_teacher(cfg: Config) -> TrainedModel:
    """The frozen teacher of ``distill.teacher``; its run's ``split.json`` becomes ``data.split_file``
    unless one is set. Raises ``ValueError`` if it cannot teach (no class head, other image size)."""
    path = cfg.distill.teacher
    if not path:
        raise ValueError("distillation needs a teacher checkpoint (--teacher or distill.teacher)")
    teacher, teacher_cfg = load_trained_model(path)
    if not teacher.has_cls_head:
        raise ValueError(f"{path}: this model has no class head to distil")
    if teacher_cfg.data.image_size != cfg.data.image_size:
        raise ValueError(
            f"{path}: the teacher was trained at {teacher_cfg.data.image_size} px; distil at the "
            f"same size (--image-size {teacher_cfg.data.image_size}), not {cfg.data.image_size}"
        )
    split_file = Path(path).resolve().parent.parent / "split.json"
    if not cfg.data.split_file and split_file.exists():
        cfg.data.split_file = str(split_file)
    return teacher


def run_distillation(cfg: Config, *, resume: bool = False, progress: bool = True) -> dict[str, Any] | None:
    """Distil, then evaluate the student's ``best.pt`` and the teacher in- and cross-domain."""
    return with_process_group(
        cfg.train.device,
        lambda context: holding_run_folder(
            cfg, context, lambda: _distill(cfg, context, resume=resume, progress=progress)
        ),
    )


def _distill(cfg: Config, context: DistributedContext, *, resume: bool, progress: bool) -> dict[str, Any] | None:
    teacher = load_teacher(cfg)
    architecture = student_architecture(cfg)
    seed_everything(cfg.train.seed)  # the student's initial weights follow --seed
    student = build_classifier(architecture)
    run = open_run(cfg, context, resume=resume, progress=progress)
    device = rank_device(context, resolve_device(cfg.train.device))
    labels = labeled_classes(run)
    method = build_method("distill", cfg, teacher=teacher.to(device), labeled_class_labels=labels)
    images = list({r.uid: r for r in [*run.pools.seg_pool, *run.pools.cls_pool]}.values())
    streams = {CLS_U: images}
    if cfg.distill.labeled_weight > 0:
        streams[CLS_X] = [run.records[uid] for uid in run.split.cls.labeled]
    sizes = {"teacher_parameters": parameter_count(teacher), "student_parameters": parameter_count(student)}
    if context.is_main:
        logger.info(
            f"distilling {cfg.distill.teacher} ({sizes['teacher_parameters']:,} parameters) into a "
            f"{cfg.distill.backbone} student ({sizes['student_parameters']:,}) at T={cfg.distill.temperature}"
        )
    run_info = {"stage": "distill", "architecture": architecture}
    summary = fit_and_evaluate(
        cfg,
        context,
        run,
        student,
        method,
        streams,
        resume=resume,
        progress=progress,
        run_info=run_info,
        strong_views=False,
    )
    if summary is None:
        return None
    eval_kw = dict(
        image_size=cfg.data.image_size,
        intensity=cfg.data.intensity,
        batch_size=cfg.train.eval_batch_size,
        device=device,
    )
    summary["teacher"] = {
        "checkpoint": cfg.distill.teacher,
        "in_domain": evaluate_records(teacher, [run.records[u] for u in run.split.test], **eval_kw),
        "cross_domain": evaluate_records(teacher, [run.records[u] for u in run.split.cross], **eval_kw),
    }
    summary.update(sizes)
    write_summary(run.out_dir, summary)
    return summary
