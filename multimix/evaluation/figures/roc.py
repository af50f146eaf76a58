"""ROC curves per domain: :func:`roc_curves`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes

from multimix.evaluation.figures.canvas import (
    SMALL,
    PathLike,
    model_colour,
    new_figure,
    save,
    unique_in_order,
)


def _roc_points(curve: tuple[np.ndarray, np.ndarray], where: str) -> tuple[np.ndarray, np.ndarray]:
    fpr, tpr = (np.asarray(a, dtype=np.float64).reshape(-1) for a in curve)
    if fpr.shape != tpr.shape or fpr.size < 2:
        raise ValueError(f"{where}: fpr and tpr need the same length >= 2, got {fpr.size}, {tpr.size}")
    if np.any(np.diff(fpr) < 0):
        raise ValueError(f"{where}: fpr must be non-decreasing")
    if not (np.all((fpr >= 0) & (fpr <= 1)) and np.all((tpr >= 0) & (tpr <= 1))):
        raise ValueError(f"{where}: rates must lie in [0, 1]")
    return fpr, tpr


def roc_curves(curves: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]], path: PathLike) -> Path:
    """ROC curves, one panel per domain and one line per model with its AUC in the legend.

    The AUC is the trapezoidal area under the given points. A model missing in a domain is
    left out of that panel.

    Args:
        curves: ``curves[model][domain] = (fpr, tpr)``, fpr non-decreasing, rates in ``[0, 1]``
            (as from :func:`sklearn.metrics.roc_curve`); model order sets the colours.
        path: where to write the PNG.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: when there is no curve, or on a malformed curve.
    """
    points = {
        (m, d): _roc_points(c, f"curves[{m!r}][{d!r}]")
        for m, per_domain in curves.items()
        for d, c in per_domain.items()
    }
    if not points:
        raise ValueError("roc_curves: no curves")
    domains = unique_in_order(d for _, d in points)
    fig = new_figure(3.8 * len(domains) + 0.2, 4.2)
    axes = fig.subplots(1, len(domains), squeeze=False)[0]
    for ax, domain in zip(axes, domains):
        ax.plot([0, 1], [0, 1], linestyle="--", color="0.6", linewidth=1, label="chance")
        for i, model in enumerate(curves):
            if (model, domain) in points:
                fpr, tpr = points[model, domain]
                auc = float(np.trapezoid(tpr, fpr))
                ax.plot(
                    fpr,
                    tpr,
                    color=model_colour(i),
                    linewidth=1.8,
                    label=f"{model} (AUC {auc:.3f})",
                )
        _roc_axes(ax, domain)
    axes[0].set_ylabel("true positive rate (sensitivity)")
    fig.suptitle("ROC curves")
    return save(fig, path)


def _roc_axes(ax: Axes, domain: str) -> None:
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.set_title(domain)
    ax.set_xlabel("false positive rate (1 - specificity)")
    ax.legend(loc="lower right", fontsize=SMALL)
