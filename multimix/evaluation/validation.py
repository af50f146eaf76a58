"""The few numbers training needs from an evaluation set: validation metrics, checkpoint selection
and the calibration of the selected checkpoint's classifier."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from multimix.config.schema import SELECT_BY
from multimix.data.records import Record
from multimix.evaluation.inference import ImageResults, infer
from multimix.metrics import classification_metrics
from multimix.metrics.calibration import Calibration, fit_calibration
from multimix.models.factory import as_trained_model


def point_metrics(results: ImageResults) -> dict[str, float]:
    """Accuracy, F1 per class and mean Dice of one evaluation set (keys absent when not defined)."""
    metrics: dict[str, float] = {}
    labeled = results.labels >= 0
    if results.prob_pneumonia is not None and labeled.any():
        cls = classification_metrics(results.prob_pneumonia[labeled], results.labels[labeled])
        metrics.update({k: float(cls[k]) for k in ("accuracy", "f1_normal", "f1_pneumonia")})
        metrics["balanced_accuracy"] = (float(cls["sensitivity"]) + float(cls["specificity"])) / 2
        if cls["auroc"] is not None:
            metrics["auroc"] = float(cls["auroc"])
    if "dice" in results.seg and results.has_mask.any():
        metrics["dice"] = float(np.mean(results.seg["dice"][results.has_mask]))
    return metrics


def evaluate_records(model: nn.Module, records: Sequence[Record], **kwargs) -> dict[str, float]:
    """:func:`~multimix.evaluation.inference.infer` (Dice only) then :func:`point_metrics`."""
    return point_metrics(infer(as_trained_model(model), records, full_metrics=False, **kwargs))


def selection_score(metrics: dict[str, float], by: str = "accuracy") -> float:
    """One number to pick the best checkpoint: the mean of the classification metric ``by``
    (``train.select_by``: accuracy, balanced_accuracy or auroc; accuracy where ``by`` is not
    defined) and Dice, whichever exist.

    Balanced accuracy and AUROC do not reward a checkpoint for calling the validation set's
    majority class, so a hospital with another class mix gets the same choice."""
    if by not in SELECT_BY:
        raise ValueError(f"train.select_by must be one of {SELECT_BY}, got {by!r}")
    classification = by if by in metrics else "accuracy"
    parts = [metrics[k] for k in (classification, "dice") if k in metrics]
    return float(np.mean(parts)) if parts else float("nan")


def validation_calibration(model: nn.Module, records: Sequence[Record], **kwargs: Any) -> Calibration | None:
    """The calibration (:func:`~multimix.metrics.calibration.fit_calibration`) of the classifier
    on the labeled ``records`` (a run's validation images); None for a network without a
    classifier or a split without enough labeled images of both classes."""
    labeled = [r for r in records if r.has_label]
    if not labeled:
        return None
    results = infer(as_trained_model(model), labeled, full_metrics=False, **kwargs)
    if results.prob_pneumonia is None:
        return None
    try:
        return fit_calibration(results.prob_pneumonia, results.labels, fitted_on="validation")
    except ValueError:  # too few labeled validation images, or one class only
        return None
