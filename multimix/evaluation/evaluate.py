"""Batched inference over held-out records and the metrics of one evaluation set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..data.records import Record
from ..data.streams import EvalDataset
from ..metrics import classification_metrics, dice_per_image


@dataclass
class Predictions:
    """Per-image outputs of :func:`predict` (rows follow the input records)."""

    probs: np.ndarray | None  # (N, C) class probabilities
    labels: np.ndarray  # (N,) class index, -1 where the record has none
    dice: np.ndarray  # (N,) Dice against the reference mask, NaN where the record has none
    has_mask: np.ndarray  # (N,) bool


@torch.no_grad()
def predict(
    model: nn.Module,
    records: Sequence[Record],
    *,
    image_size: int,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> Predictions:
    """Run ``model`` in eval mode over ``records``; segmentation is thresholded at 0.5."""
    model.eval()
    loader = DataLoader(EvalDataset(records, image_size), batch_size=batch_size, shuffle=False)
    probs, labels, dice, has_mask = [], [], [], []
    for batch in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
        images = batch["image"].to(device)
        out = model(images)
        if out.cls_logits is not None:
            probs.append(out.cls_logits.float().softmax(dim=1).cpu().numpy())
        labels.append(batch["label"].numpy())
        has_mask.append(batch["has_mask"].numpy())
        if out.seg_logits is not None:
            pred = (out.seg_logits.float() > 0).cpu().numpy()
            scores = dice_per_image(pred, batch["mask"].numpy() > 0.5).astype(np.float64)
            scores[~batch["has_mask"].numpy()] = np.nan
            dice.append(scores)
        else:
            dice.append(np.full(len(images), np.nan))
    return Predictions(
        probs=np.concatenate(probs) if probs else None,
        labels=np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64),
        dice=np.concatenate(dice) if dice else np.zeros(0),
        has_mask=np.concatenate(has_mask).astype(bool) if has_mask else np.zeros(0, dtype=bool),
    )


def summarise(predictions: Predictions) -> dict[str, float]:
    """Accuracy, F1 per class and mean Dice of one evaluation set (keys absent when not defined)."""
    metrics: dict[str, float] = {}
    labeled = predictions.labels >= 0
    if predictions.probs is not None and labeled.any():
        cls = classification_metrics(predictions.probs[labeled], predictions.labels[labeled])
        metrics.update({k: float(cls[k]) for k in ("accuracy", "f1_normal", "f1_pneumonia")})
    if predictions.has_mask.any() and not np.isnan(predictions.dice[predictions.has_mask]).all():
        metrics["dice"] = float(np.mean(predictions.dice[predictions.has_mask]))
    return metrics


def evaluate_records(model: nn.Module, records: Sequence[Record], **kwargs) -> dict[str, float]:
    """:func:`predict` then :func:`summarise`."""
    return summarise(predict(model, records, **kwargs))


def selection_score(metrics: dict[str, float]) -> float:
    """One number to pick the best checkpoint: the mean of accuracy and Dice (whichever exist)."""
    parts = [metrics[k] for k in ("accuracy", "dice") if k in metrics]
    return float(np.mean(parts)) if parts else float("nan")
