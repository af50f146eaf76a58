"""The classifier's saliency over the X-rays: :func:`saliency_overlays`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize

from multimix.data.records import CLASS_NAMES
from multimix.evaluation.figures.canvas import (
    HEAT_ALPHA,
    HEAT_MAP,
    PANEL,
    SMALL,
    PathLike,
    clear_ticks,
    interpolation,
    new_figure,
    same_shape,
    save,
    show_grey,
    stack,
)


def _check_saliency(
    images: np.ndarray,
    saliency: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    probabilities: np.ndarray,
    n_classes: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    images = stack(images, "images", 3)
    saliency = stack(saliency, "saliency", 3)
    same_shape(images, saliency, "images", "saliency")
    k = images.shape[0]
    columns = []
    for name, values in (("labels", labels), ("predictions", predictions)):
        v = np.asarray(values).reshape(-1)
        if v.shape[0] != k:
            raise ValueError(f"got {v.shape[0]} {name} for {k} images")
        if not np.all(np.isin(v, np.arange(n_classes))):
            raise ValueError(f"{name} must be class indices in [0, {n_classes}), got {np.unique(v)}")
        columns.append(v.astype(np.int64))
    probs = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if probs.shape[0] != k:
        raise ValueError(f"got {probs.shape[0]} probabilities for {k} images")
    return images, np.clip(saliency, 0.0, 1.0), columns[0], columns[1], probs


def _show_heat(ax: Axes, saliency: np.ndarray) -> None:
    # opacity grows with the saliency, so the X-ray stays readable where the network looks away
    alpha = HEAT_ALPHA[0] + (HEAT_ALPHA[1] - HEAT_ALPHA[0]) * saliency
    ax.imshow(
        saliency,
        cmap=HEAT_MAP,
        vmin=0.0,
        vmax=1.0,
        alpha=alpha,
        interpolation=interpolation(saliency),
    )


def _empty_row(ax: Axes, label: str) -> None:
    clear_ticks(ax)
    ax.set_aspect("equal")  # square, like the image panels
    ax.text(0.5, 0.5, "none", transform=ax.transAxes, ha="center", va="center", color="0.4")
    ax.set_ylabel(label)
    for spine in ax.spines.values():
        spine.set_color("0.8")


def saliency_overlays(
    images: np.ndarray,
    saliency: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    probabilities: np.ndarray,
    path: PathLike,
    *,
    title: str = "",
    class_names: Sequence[str] = CLASS_NAMES,
    max_per_row: int = 8,
) -> Path:
    """Saliency heat maps over the X-rays: top row correctly, bottom row wrongly classified.

    Each panel shows the grey image under the saliency in the ``inferno`` colour map, with an
    opacity rising from 0.2 (saliency 0) to 0.7 (saliency 1), and a caption "true: ... / pred: ... (probability)".
    An empty row says "none".

    Args:
        images: ``(K, H, W)`` grey images in ``[0, 1]``.
        saliency: ``(K, H, W)`` saliency maps in ``[0, 1]``.
        labels: ``(K,)`` true class indices.
        predictions: ``(K,)`` predicted class indices.
        probabilities: ``(K,)`` probability of the predicted class.
        path: where to write the PNG.
        title: figure title.
        class_names: names of the class indices.
        max_per_row: at most this many panels per row (the first ones); the row label says
            how many there are in all.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: on mismatched shapes or lengths, or class indices outside ``class_names``.
    """
    images, saliency, labels, preds, probs = _check_saliency(
        images, saliency, labels, predictions, probabilities, len(class_names)
    )
    rows = [
        ("correct", np.flatnonzero(labels == preds)),
        ("wrong", np.flatnonzero(labels != preds)),
    ]
    ncols = max(1, min(max_per_row, max(len(idx) for _, idx in rows)))
    fig = new_figure(PANEL * ncols + 1.6, 2 * 2.2 + (0.4 if title else 0.0))
    axes = fig.subplots(2, ncols, squeeze=False)
    for r, (name, idx) in enumerate(rows):
        label = f"{name} ({len(idx)})"
        if len(idx) == 0:
            _empty_row(axes[r, 0], label)
        for c in range(ncols):
            ax = axes[r, c]
            if c >= len(idx):
                if c or len(idx):
                    ax.set_axis_off()
                continue
            i = idx[c]
            show_grey(ax, images[i])
            _show_heat(ax, saliency[i])
            ax.set_title(
                f"true: {class_names[labels[i]]}\npred: {class_names[preds[i]]} ({probs[i]:.2f})",
                fontsize=SMALL,
            )
            if c == 0:
                ax.set_ylabel(label)
    if len(labels):
        heat = ScalarMappable(Normalize(0.0, 1.0), cmap=HEAT_MAP)
        # pad is a fraction of the panels' width: about 0.15 inch whatever the column count
        pad = 0.15 / (PANEL * ncols)
        fig.colorbar(heat, ax=axes, shrink=0.7, aspect=25, pad=pad, label="saliency")
    if title:
        fig.suptitle(title)
    return save(fig, path)
