"""Reference and predicted lung outlines over the X-rays: :func:`boundary_overlays`."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from skimage.measure import find_contours

from multimix.evaluation.figures.canvas import (
    PREDICTION_COLOUR,
    REFERENCE_COLOUR,
    SMALL,
    PathLike,
    new_figure,
    same_shape,
    save,
    show_grey,
    stack,
)


def _dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """Dice with :func:`multimix.metrics.dice_per_image`'s rule that two empty masks give 1."""
    total = int(pred.sum()) + int(ref.sum())
    return 2.0 * int(np.sum(pred & ref)) / total if total else 1.0


def _draw_contour(ax: Axes, mask: np.ndarray, colour: str, style: str | tuple[int, tuple[float, float]]) -> None:
    # zero padding closes the outlines of masks that touch the image border
    for line in find_contours(np.pad(mask.astype(np.float32), 1), 0.5):
        ax.plot(line[:, 1] - 1, line[:, 0] - 1, color=colour, linestyle=style, linewidth=1.4)


def _corner_text(ax: Axes, text: str) -> None:
    ax.text(
        0.03,
        0.97,
        text,
        transform=ax.transAxes,
        ha="left",
        va="top",
        color="white",
        fontsize=SMALL,
        bbox={"facecolor": "black", "alpha": 0.6, "pad": 2, "linewidth": 0},
    )


def _boundary_cell(ax: Axes, image: np.ndarray, ref: np.ndarray, pred: np.ndarray) -> None:
    show_grey(ax, image)
    _draw_contour(ax, ref, REFERENCE_COLOUR, "-")
    _draw_contour(ax, pred, PREDICTION_COLOUR, (0, (3, 1.5)))
    _corner_text(ax, f"Dice {_dice(pred, ref):.3f}" if ref.any() else "no reference")
    ax.set_xlim(-0.5, image.shape[1] - 0.5)
    ax.set_ylim(image.shape[0] - 0.5, -0.5)


def _check_overlays(
    images: np.ndarray,
    references: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    row_titles: Sequence[str] | None,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    images = stack(images, "images", 3)
    if images.shape[0] == 0:
        raise ValueError("boundary_overlays: no images")
    references = stack(references, "references", 3).astype(bool)
    same_shape(images, references, "images", "references")
    if not predictions:
        raise ValueError("boundary_overlays: no model predictions")
    preds = {}
    for model, pred in predictions.items():
        preds[model] = np.asarray(pred).astype(bool)
        same_shape(images, preds[model], "images", f"predictions[{model!r}]")
    if row_titles is not None and len(row_titles) != images.shape[0]:
        raise ValueError(f"got {len(row_titles)} row titles for {images.shape[0]} images")
    return images, references, preds


def _wrapped(title: str, width: int = 22) -> str:
    """A column title broken into lines of at most ``width`` characters (at ``+`` where it can),
    so long variant names do not run into the next column."""

    return "\n".join(textwrap.wrap(title.replace("+", "+ "), width)).replace("+ ", "+")


def row_label(title: str, width: int = 24) -> str:
    """A row title that fits beside one panel: an image id's file name (not its folders), its
    middle elided when longer than ``width`` characters."""
    name = title.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or title
    if len(name) <= width:
        return name
    keep = (width - 1) // 2
    return f"{name[:keep]}…{name[-(width - 1 - keep) :]}"


def boundary_overlays(
    images: np.ndarray,
    references: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    path: PathLike,
    *,
    row_titles: Sequence[str] | None = None,
) -> Path:
    """Grid of reference vs predicted lung outlines: rows = images, columns = models.

    Each cell shows the grey X-ray, the reference outline (green, solid), the model's predicted
    outline (magenta, dashed) and the Dice in the top-left corner; an image whose reference
    mask is empty shows only the prediction and "no reference".

    Args:
        images: ``(K, H, W)`` grey images in ``[0, 1]``.
        references: ``(K, H, W)`` boolean reference masks.
        predictions: model name -> ``(K, H, W)`` boolean predicted masks (column order).
        path: where to write the PNG.
        row_titles: optional ``K`` labels written left of each row (e.g. image ids; shown by
            :func:`row_label`, the file name alone, so a long path never runs over the next panel).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: on no images, no models, mismatched shapes or a wrong number of row titles.
    """
    images, references, preds = _check_overlays(images, references, predictions, row_titles)
    k, m = images.shape[0], len(preds)
    fig = new_figure(2.1 * m + 0.5, 2.1 * k + 0.6)
    axes = fig.subplots(k, m, squeeze=False)
    for j, (model, pred) in enumerate(preds.items()):
        axes[0, j].set_title(_wrapped(model), fontsize="medium")
        for i in range(k):
            _boundary_cell(axes[i, j], images[i], references[i], pred[i])
    for i in range(k):
        if row_titles is not None:
            axes[i, 0].set_ylabel(row_label(row_titles[i]), fontsize=SMALL)
    handles = [
        Line2D([], [], color=REFERENCE_COLOUR, linewidth=2, label="reference"),
        Line2D(
            [],
            [],
            color=PREDICTION_COLOUR,
            linewidth=2,
            linestyle=(0, (3, 1.5)),
            label="prediction",
        ),
    ]
    legend = fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=2,
        fontsize=SMALL,
        facecolor="0.25",
        labelcolor="white",
    )
    legend.get_frame().set_edgecolor("0.25")
    return save(fig, path)
