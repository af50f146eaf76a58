"""Evaluation metrics: binary classification and per-image segmentation overlap."""

from __future__ import annotations

from .classification import binary_auroc, classification_metrics
from .segmentation import binarize, dice_per_image, jaccard_per_image, segmentation_summary

__all__ = [
    "binarize",
    "binary_auroc",
    "classification_metrics",
    "dice_per_image",
    "jaccard_per_image",
    "segmentation_summary",
]
