"""One evaluation set reduced to its metrics, each with a seeded 95% bootstrap confidence interval."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from multimix.evaluation.inference import ImageResults
from multimix.metrics import bootstrap_ci, bootstrap_statistics_ci, classification_metrics

CLS_METRICS = ("accuracy", "f1_normal", "f1_pneumonia", "precision", "recall", "specificity", "auroc")
SEG_METRICS = ("dice", "jaccard", "ssim", "hd", "hd95", "hd_mm", "hd95_mm", "precision", "recall")
LOWER_IS_BETTER = frozenset({"hd", "hd95", "hd_mm", "hd95_mm"})

EMPTY_MASK_RULE = (
    "An empty predicted mask against a reference lung is a miss: Dice, Jaccard, pixel precision and "
    "recall 0, HD and HD95 the image diagonal. Such images stay in every mean; none is dropped."
)
HD_DEFINITION = (
    "HD is the average Hausdorff distance (the larger of the two directed mean distances between the "
    "mask boundaries; the paper's HD), HD95 the 95th percentile of the symmetric boundary distances. "
    "Both in pixels of the evaluated resolution; the mm columns use the source's published pixel size."
)


@dataclass(frozen=True)
class BootstrapSettings:
    """How confidence intervals are computed: percentile bootstrap over images."""

    n_resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0


def summarise_classification(
    probs: np.ndarray, labels: np.ndarray, *, threshold: float, boot: BootstrapSettings
) -> dict[str, Any]:
    """Every classification metric with its CI, plus the confusion matrix at ``threshold``."""

    def statistics(idx: np.ndarray) -> dict[str, float | None]:
        values = classification_metrics(probs[idx], labels[idx], threshold)
        return {name: values[name] for name in CLS_METRICS}

    intervals = bootstrap_statistics_ci(
        statistics, len(probs), n_resamples=boot.n_resamples, confidence=boot.confidence, seed=boot.seed
    )
    metrics = {name: {"value": _num(v), "ci": [_num(lo), _num(hi)]} for name, (v, lo, hi) in intervals.items()}
    point = classification_metrics(probs, labels, threshold)
    auroc_low, sensitivity = intervals["auroc"][1], intervals["recall"][0]
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=2)
    return {
        "num_images": int(len(probs)),
        "threshold": threshold,
        "metrics": metrics,
        "confusion_matrix": point["confusion_matrix"],
        # what calling every image the commoner class scores: the accuracy a model that ranks nothing reaches
        "majority_accuracy": float(counts.max() / counts.sum()),
        "ranks": ranks_images(_num(auroc_low), _num(sensitivity)),
    }


NO_RANKING = (
    "the model does not rank these images: its AUROC interval contains 0.5 or it finds fewer than half "
    "of the pneumonia cases, so no threshold makes its calls useful here"
)


def fitted_here_note(fitted: int, images: int) -> str:
    """The sentence for an evaluation set holding images its operating point was chosen on."""
    return (
        f"the operating point was chosen on {fitted} of these {images} images, so accuracy, F1, "
        "sensitivity and specificity at it are optimistic here (AUROC does not depend on it); "
        "evaluate on images it was not chosen on"
    )


def ranks_images(auroc_low: float | None, sensitivity: float | None) -> bool | None:
    """Whether a classifier separates the classes of an evaluation set: the lower end of its AUROC
    interval above 0.5 and a sensitivity of at least 0.5 (None when the AUROC is undefined)."""
    if auroc_low is None:
        return None
    return bool(auroc_low > 0.5 and (sensitivity is None or sensitivity >= 0.5))


def summarise_segmentation(results: ImageResults, *, boot: BootstrapSettings) -> dict[str, Any]:
    """Mean, std and CI of every per-image segmentation metric over the images with a reference mask."""
    masked = results.has_mask
    metrics = {}
    for name in SEG_METRICS:
        if name not in results.seg:
            continue
        values = results.seg[name][masked]
        values = values[~np.isnan(values)]  # only the mm metrics can be NaN: images of unknown spacing
        if values.size == 0:
            continue
        mean, low, high = bootstrap_ci(values, n_resamples=boot.n_resamples, confidence=boot.confidence, seed=boot.seed)
        metrics[name] = {"mean": mean, "std": float(values.std()), "ci": [low, high], "num_images": int(values.size)}
    empty = 0
    if results.pred_fraction is not None:
        empty = int(np.sum(masked & (results.pred_fraction == 0)))
    return {"num_images": int(masked.sum()), "metrics": metrics, "empty_predictions": empty}


def summarise_results(
    results: ImageResults, *, threshold: float = 0.5, boot: BootstrapSettings | None = None
) -> dict[str, Any]:
    """``{"num_images", "classification"?, "segmentation"?}`` for one model on one evaluation set.

    Classification covers the labeled images (absent for a model without a class head or a set
    without labels); segmentation the images with a reference mask (absent likewise).
    """
    boot = boot or BootstrapSettings()
    summary: dict[str, Any] = {"num_images": len(results)}
    labeled = results.labels >= 0
    if results.prob_pneumonia is not None and labeled.any():
        summary["classification"] = summarise_classification(
            results.prob_pneumonia[labeled], results.labels[labeled], threshold=threshold, boot=boot
        )
    if results.seg and results.has_mask.any():
        summary["segmentation"] = summarise_segmentation(results, boot=boot)
    return summary


def point_value(summary: dict[str, Any], task: str, metric: str) -> float | None:
    """The point estimate of ``metric`` (``task`` = ``classification`` or ``segmentation``), or ``None``."""
    entry = summary.get(task, {}).get("metrics", {}).get(metric)
    if entry is None:
        return None
    value = entry.get("value", entry.get("mean"))
    return None if value is None else float(value)


def _num(x: float | None) -> float | None:
    """JSON-safe number: NaN and None become None."""
    return None if x is None or not np.isfinite(x) else float(x)
