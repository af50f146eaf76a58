"""Stage 1 of the SimCLRv2 route end to end: pools, model, contrastive streams, trainer, probes.

``multimix pretrain`` is a thin command line over :func:`run_pretraining`. The run folder has
the same shape as a training run's (``config.yaml``, ``environment.json``, ``checkpoints/``,
``tb/``, ``metrics.jsonl``, ``summary.json``); ``best.pt`` is chosen by the online probe's
validation accuracy.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from multimix.config import Config
from multimix.config.run_info import RunInfo
from multimix.data.records import Record
from multimix.data.streams import ContrastiveBatches, EvalDataset, step_loader
from multimix.engine.distributed import rank_device, with_process_group
from multimix.methods import Method, PretrainNet, available_methods, method_class
from multimix.models import SSLModel
from multimix.models.classifier import Architecture, build_ssl_model, ssl_architecture
from multimix.runs.fit import build_trainer
from multimix.runs.folder import holding_run_folder
from multimix.runs.wiring import start_run
from multimix.utils.atomic import atomic_write_text
from multimix.utils.checkpoints import load_checkpoint
from multimix.utils.device import resolve_device

logger = logging.getLogger(__name__)

SSL_PREFIX = "ssl."  # the backbone + head inside a PretrainNet's state dict


def pretrain_architecture(cfg: Config) -> Architecture:
    """The stage-1 network of ``cfg`` as plain data (stored in its checkpoints): backbone
    (``ssl.backbone``; the U-Net encoder takes ``model.widths``) and head (``ssl.method``)."""
    s, m = cfg.ssl, cfg.model
    if s.backbone == "unet":
        kwargs = dict(
            widths=list(m.widths),
            in_channels=m.in_channels,
            dropout=m.dropout,
            norm=m.norm,
            negative_slope=m.negative_slope,
        )
    else:
        kwargs = dict(width_multiplier=s.width_multiplier, in_channels=m.in_channels)
    head = pretraining_method(cfg).head_spec(cfg)
    return {**ssl_architecture(s.backbone, kwargs, head), "method": s.method}


def make_pretrain_model(cfg: Config) -> PretrainNet:
    """Backbone (``ssl.backbone``), head (SimCLRv2 projection or Barlow projector) and probe."""
    return PretrainNet(build_ssl_model(pretrain_architecture(cfg)), num_classes=cfg.model.num_classes)


def load_pretrained_ssl(path: str | Path) -> tuple[SSLModel, Architecture]:
    """Backbone + projection head of a stage-1 checkpoint (``multimix pretrain``), with weights.

    Raises:
        ValueError: if ``path`` is not a pretraining checkpoint.
    """
    state = load_checkpoint(path)
    if not RunInfo.recorded(state):
        raise ValueError(f"{path}: not a pretraining checkpoint (multimix pretrain writes those)")
    run = RunInfo.from_checkpoint(state, origin=str(path))
    if run.stage != "pretrain":
        raise ValueError(f"{path}: not a pretraining checkpoint (multimix pretrain writes those)")
    architecture = run.architecture or pretrain_architecture(Config.from_dict(run.config, origin=str(path)))
    model = build_ssl_model(architecture)
    weights = {k[len(SSL_PREFIX) :]: v for k, v in state["model"].items() if k.startswith(SSL_PREFIX)}
    model.load_state_dict(weights)
    return model, architecture


def pretraining_method(cfg: Config) -> type[Method]:
    """The registered class of ``ssl.method``; ``ValueError`` unless it is a pretraining method."""
    choices = available_methods(pretraining=True)
    if cfg.ssl.method not in choices:
        raise ValueError(f"ssl.method must be one of {', '.join(choices)}, got {cfg.ssl.method!r}")
    return method_class(cfg.ssl.method)


def make_pretrain_method(cfg: Config) -> Method:
    """The registered pretraining method ``ssl.method`` with its options from ``cfg``."""
    return pretraining_method(cfg).from_config(cfg)


def pretrained_with(architecture: dict[str, Any]) -> str:
    """How reports name what a pretraining network was trained with: its method's display name
    (older checkpoints name only their head's kind, which was the method's name)."""
    name = architecture.get("method") or (architecture.get("head") or {}).get("kind", "")
    return method_class(name).display_name if name in available_methods(pretraining=True) else str(name)


@torch.no_grad()
def backbone_features(
    model: PretrainNet,
    records: Sequence[Record],
    *,
    image_size: int,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    intensity: str = "none",
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features (eval mode, unaugmented) and labels (-1 where none) of ``records``."""
    model.eval()
    features, labels = [], []
    for batch in DataLoader(EvalDataset(records, image_size, intensity=intensity), batch_size=batch_size):
        features.append(model.features(batch["image"].to(device)).float().cpu().numpy())
        labels.append(batch["label"].numpy())
    return np.concatenate(features), np.concatenate(labels)


def probe_accuracy(model: PretrainNet, records: Sequence[Record], **kwargs: Any) -> float:
    """Accuracy of the online probe on the labeled ``records``."""
    features, labels = backbone_features(model, records, **kwargs)
    keep = labels >= 0
    with torch.no_grad():
        logits = model.probe(torch.from_numpy(features[keep]).to(next(model.parameters()).device))
    return float((logits.argmax(dim=1).cpu().numpy() == labels[keep]).mean())


def linear_probe(model: PretrainNet, train: Sequence[Record], test: Sequence[Record], **kwargs: Any) -> float:
    """Test accuracy of a logistic regression fitted on frozen features of ``train`` (the
    standard linear evaluation of a representation; independent of the online probe)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x_train, y_train = backbone_features(model, train, **kwargs)
    x_test, y_test = backbone_features(model, test, **kwargs)
    train_keep, test_keep = y_train >= 0, y_test >= 0
    scaler = StandardScaler().fit(x_train[train_keep])
    classifier = LogisticRegression(max_iter=2000).fit(scaler.transform(x_train[train_keep]), y_train[train_keep])
    return float(classifier.score(scaler.transform(x_test[test_keep]), y_test[test_keep]))


def run_pretraining(cfg: Config, *, resume: bool = False, progress: bool = True) -> dict[str, Any] | None:
    """Pretrain ``cfg.ssl`` on every training image of ``cfg.data`` (labels ignored by the loss).

    Returns the summary on rank 0: the online probe's validation accuracy and the linear-probe
    test accuracy of the pretrained backbone against the same backbone freshly initialised.
    """
    return with_process_group(
        cfg.train.device,
        lambda context: holding_run_folder(
            cfg, context, lambda: _pretrain(cfg, context, resume=resume, progress=progress)
        ),
    )


def _pretrain(cfg: Config, context, *, resume: bool, progress: bool) -> dict[str, Any] | None:
    run = start_run(cfg, context, resume=resume, progress=progress)
    out_dir, pools = run.out_dir, run.pools
    # every training source's images, and those of data.unlabeled_sources
    # (e.g. a target hospital's pixels, never its labels)
    images = list({r.uid: r for r in [*pools.seg_pool, *pools.cls_pool, *pools.extra_unlabeled]}.values())
    probe_val = [r for r in pools.val if r.has_label]
    model = make_pretrain_model(cfg)
    method = make_pretrain_method(cfg)
    device = rank_device(context, resolve_device(cfg.train.device))
    size = cfg.data.image_size
    if context.is_main:
        logger.info(f"run folder: {out_dir}\npretraining {cfg.ssl.method} ({cfg.ssl.backbone}) on {len(images)} images")

    def batches(start_step: int):
        dataset = ContrastiveBatches(
            images,
            image_size=size,
            batch_size=cfg.data.batch_size,
            seed=cfg.train.seed,
            total_steps=cfg.train.total_steps,
            start_step=start_step,
            crop_scale=(cfg.ssl.crop_scale_min, 1.0),
            intensity=cfg.data.intensity,
            rank=context.rank,
            world_size=context.world_size,
        )
        return step_loader(dataset, num_workers=cfg.data.num_workers, pin_memory=device.type == "cuda")

    def evaluate(eval_model: nn.Module) -> dict[str, float]:
        accuracy = probe_accuracy(
            as_pretrain_net(eval_model), probe_val, image_size=size, intensity=cfg.data.intensity, device=device
        )
        return {"probe_accuracy": accuracy, "score": accuracy}

    run_info = {"stage": "pretrain", "architecture": pretrain_architecture(cfg)}
    evaluation = evaluate if probe_val else None
    trainer = build_trainer(cfg, context, out_dir, run.environment, model, method, batches, evaluation, run_info)
    result = trainer.fit(resume=resume, progress=progress)
    if not context.is_main:
        return None
    summary = _probe_summary(cfg, as_pretrain_net(trainer.eval_model), pools, probe_val, device)
    summary.update(
        {
            "pretraining_images": len(images),
            "steps": result.steps,
            "best_step": result.best_step,
            "wall_seconds": round(time.perf_counter() - run.started, 2),
            "train_images_per_second": round(result.images_per_second, 2),
        }
    )
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    logger.info(
        json.dumps({k: summary[k] for k in ("online_probe_val_accuracy", "linear_probe") if k in summary}, indent=2)
    )
    return summary


def as_pretrain_net(model: nn.Module) -> PretrainNet:
    if not isinstance(model, PretrainNet):
        raise TypeError(f"expected the pretraining network, got {type(model).__name__}")
    return model


def _probe_summary(
    cfg: Config, model: PretrainNet, pools, probe_val: list[Record], device: torch.device
) -> dict[str, Any]:
    """Online probe on validation; linear probe on frozen features, pretrained vs random init."""
    kwargs = dict(image_size=cfg.data.image_size, intensity=cfg.data.intensity, device=device)
    labeled_train = [r for r in pools.cls_pool if r.has_label]
    labeled_test = [r for r in pools.test if r.has_label]
    summary: dict[str, Any] = {}
    if probe_val:
        summary["online_probe_val_accuracy"] = probe_accuracy(model, probe_val, **kwargs)
    if labeled_train and labeled_test and len({r.label for r in labeled_train}) > 1:
        torch.manual_seed(cfg.train.seed)
        random_init = make_pretrain_model(cfg).to(device)
        summary["linear_probe"] = {
            "pretrained": linear_probe(model, labeled_train, labeled_test, **kwargs),
            "random_init": linear_probe(random_init, labeled_train, labeled_test, **kwargs),
            "train_images": len(labeled_train),
            "test_images": len(labeled_test),
        }
    return summary
