"""Evaluation metrics: binary classification, per-image segmentation, bootstrap intervals."""

from __future__ import annotations

from multimix.metrics.bootstrap import bootstrap_ci, bootstrap_statistic_ci, bootstrap_statistics_ci
from multimix.metrics.classification import binary_auroc, classification_metrics, roc_curve
from multimix.metrics.segmentation import (
    average_hausdorff_per_image,
    binarize,
    dice_per_image,
    hausdorff_per_image,
    jaccard_per_image,
    pixel_precision_recall_per_image,
    segmentation_metrics_per_image,
    segmentation_summary,
    ssim_per_image,
)

__all__ = [
    "average_hausdorff_per_image",
    "binarize",
    "binary_auroc",
    "bootstrap_ci",
    "bootstrap_statistic_ci",
    "bootstrap_statistics_ci",
    "classification_metrics",
    "dice_per_image",
    "hausdorff_per_image",
    "jaccard_per_image",
    "pixel_precision_recall_per_image",
    "roc_curve",
    "segmentation_metrics_per_image",
    "segmentation_summary",
    "ssim_per_image",
]
