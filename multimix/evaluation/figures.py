"""Report figures, rendered to PNG with Matplotlib's Agg canvas.

Every function takes plain NumPy inputs, writes one PNG at ``path`` (creating parent folders, via
:func:`multimix.utils.atomic.atomic_write`, so a crash never leaves a half-written file) and returns
the path. Figures are built as standalone :class:`matplotlib.figure.Figure` objects, never
through ``pyplot``: no global figure registry, no window, safe to call from worker threads.

Models always take their colour from one fixed colour-blind-safe palette (Okabe-Ito), by their
position in the mapping passed in, so the same model keeps its colour across figures when the
caller keeps the order.

* :func:`dice_boxplot`: the distribution of a per-image segmentation score, one panel per
  evaluation domain (e.g. in-domain vs cross-domain), one box per model with every image as a
  jittered dot and the mean as a diamond. Shows both the typical quality and the failures.
* :func:`boundary_overlays`: a grid of X-rays (rows) by models (columns), each cell with the
  reference lung outline (solid) and the model's predicted outline (dashed) and its Dice.
  Shows *where* the masks disagree (apices, costophrenic angles, the cardiac border).
* :func:`saliency_overlays`: the classifier's saliency as a heat map over the X-ray, one row of
  correctly and one of wrongly classified images, each captioned with true and predicted class.
  Shows what the classification branch (and so the saliency bridge) attends to.
* :func:`roc_curves`: ROC curves per domain, one line per model with its AUC.
* :func:`embedding_map`: a 2-D t-SNE (or PCA) map of image embeddings, colour = class, marker =
  source dataset. Shows the domain gap: clusters by marker mean features separate the sites.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from skimage.measure import find_contours
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from multimix.utils.atomic import atomic_write

__all__ = [
    "MODEL_COLOURS",
    "boundary_overlays",
    "dice_boxplot",
    "embed_2d",
    "embedding_map",
    "roc_curves",
    "saliency_overlays",
]

PathLike = str | os.PathLike

#: Okabe-Ito qualitative palette (yellow last: it is hard to see on white).
MODEL_COLOURS = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#F0E442",
)
_UNLABELED_COLOUR = "#9A9A9A"
_REFERENCE_COLOUR = "#2BFF4A"
_PREDICTION_COLOUR = "#FF2BD6"
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_HEAT_MAP = "inferno"
_HEAT_ALPHA = (0.2, 0.7)  # opacity of the heat map at saliency 0 and 1
_PANEL = 1.8  # inches per image panel of the saliency grid
_DPI = 120
_SMALL = 8
_CLASS_NAMES = ("normal", "pneumonia")


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def _model_colour(index: int) -> str:
    return MODEL_COLOURS[index % len(MODEL_COLOURS)]


def _new_figure(width: float, height: float) -> Figure:
    """A standalone figure on an Agg canvas (no pyplot), with constrained layout."""
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: PathLike) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically, then release its artists."""
    try:
        return atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=_DPI))
    finally:
        fig.clear()


def _unique_in_order(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _clear_ticks(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _interpolation(image: np.ndarray) -> str:
    # small images are enlarged smoothly; large ones are shrunk with an anti-aliasing filter
    return "bilinear" if max(image.shape) <= 256 else "antialiased"


def _show_grey(ax: Axes, image: np.ndarray) -> None:
    ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation=_interpolation(image))
    _clear_ticks(ax)


def _stack(array: np.ndarray, name: str, ndim: int) -> np.ndarray:
    a = np.asarray(array)
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    return a


def _same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_b} shape {b.shape} does not match {name_a} shape {a.shape}")


# --------------------------------------------------------------------------------------------
# Per-image score distributions
# --------------------------------------------------------------------------------------------


def _finite(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    return v[np.isfinite(v)]


def _draw_boxes(ax: Axes, groups: list[np.ndarray], colours: list[str], rng: np.random.Generator) -> None:
    """One box per non-empty group at x = 1, 2, ..., jittered dots and the mean on top."""
    for pos, (values, colour) in enumerate(zip(groups, colours), start=1):
        if values.size == 0:
            ax.text(
                pos,
                0.5,
                "no data",
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="center",
                rotation=90,
                color="0.5",
                fontsize=_SMALL,
            )
            continue
        box = ax.boxplot(
            values,
            positions=[pos],
            widths=0.55,
            patch_artist=True,
            showfliers=False,
            medianprops={"color": "black", "linewidth": 1.5},
        )
        box["boxes"][0].set(facecolor=colour, alpha=0.35, edgecolor=colour)
        jitter = rng.uniform(-0.16, 0.16, values.size)
        ax.scatter(pos + jitter, values, s=9, color=colour, alpha=0.45, linewidths=0, zorder=3)
        ax.scatter(
            [pos],
            [values.mean()],
            marker="D",
            s=34,
            facecolor="white",
            edgecolor="black",
            linewidths=1.0,
            zorder=4,
        )


def _tick_labels(ax: Axes, names: list[str], groups: list[np.ndarray]) -> None:
    ax.set_xticks(range(1, len(names) + 1))
    labels = [f"{textwrap.fill(name, 12)}\nn={v.size}" for name, v in zip(names, groups)]
    ax.set_xticklabels(labels, fontsize=_SMALL + 1)
    ax.set_xlim(0.4, len(names) + 0.6)


def dice_boxplot(
    scores: Mapping[str, Mapping[str, np.ndarray]],
    path: PathLike,
    *,
    metric_name: str = "Dice",
) -> Path:
    """Box plots of a per-image score, one panel per domain and one box per model.

    Non-finite values (e.g. the NaN Dice of an image without a reference mask) are dropped.
    Models or domains left with no values are skipped; a model missing from one domain only
    keeps its slot there, marked "no data", so boxes line up across panels. The y axis spans
    ``[0, 1]`` when every value lies in it (Dice, Jaccard), otherwise it is automatic.

    Args:
        scores: ``scores[model][domain]`` = per-image values; model order sets the colours.
        path: where to write the PNG.
        metric_name: y-axis label and title word.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: when there is no finite value at all.
    """
    values = {(m, d): _finite(v) for m, per_domain in scores.items() for d, v in per_domain.items()}
    present = [key for key, v in values.items() if v.size]
    if not present:
        raise ValueError("dice_boxplot: no finite score for any model and domain")
    colours = {m: _model_colour(i) for i, m in enumerate(scores)}
    models = _unique_in_order(m for m, _ in present)
    domains = _unique_in_order(d for _, d in present)
    empty = np.zeros(0)

    width = max(3.0, 1.05 * len(models) + 0.6)
    fig = _new_figure(width * len(domains) + 0.4, 4.0)
    axes = fig.subplots(1, len(domains), sharey=True, squeeze=False)[0]
    for ax, domain in zip(axes, domains):
        groups = [values.get((m, domain), empty) for m in models]
        _draw_boxes(ax, groups, [colours[m] for m in models], np.random.default_rng(0))
        _tick_labels(ax, models, groups)
        ax.set_title(domain)
        ax.grid(axis="y", alpha=0.3)
    _set_score_range(axes[0], [values[k] for k in present])
    axes[0].set_ylabel(metric_name)
    fig.suptitle(f"Per-image {metric_name}")
    mean = Line2D(
        [],
        [],
        marker="D",
        linestyle="none",
        markerfacecolor="white",
        markeredgecolor="black",
        label="mean",
    )
    median = Line2D([], [], color="black", linewidth=1.5, label="median")
    fig.legend(handles=[median, mean], loc="outside lower center", fontsize=_SMALL, ncols=2, frameon=False)
    return _save(fig, path)


def _set_score_range(ax: Axes, groups: list[np.ndarray]) -> None:
    """Scores in [0, 1] end at 1; the axis starts a little below the lowest value (in steps of
    0.1) so that good models, all above 0.9, are not squashed into a line at the top."""
    if all(v.min() >= 0.0 and v.max() <= 1.0 for v in groups):
        low = max(0.0, np.floor(min(v.min() for v in groups) * 10) / 10)
        pad = 0.03 * (1.0 - low)
        ax.set_ylim(low - pad, 1.0 + pad)


# --------------------------------------------------------------------------------------------
# Segmentation boundaries
# --------------------------------------------------------------------------------------------


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
        fontsize=_SMALL,
        bbox={"facecolor": "black", "alpha": 0.6, "pad": 2, "linewidth": 0},
    )


def _boundary_cell(ax: Axes, image: np.ndarray, ref: np.ndarray, pred: np.ndarray) -> None:
    _show_grey(ax, image)
    _draw_contour(ax, ref, _REFERENCE_COLOUR, "-")
    _draw_contour(ax, pred, _PREDICTION_COLOUR, (0, (3, 1.5)))
    _corner_text(ax, f"Dice {_dice(pred, ref):.3f}" if ref.any() else "no reference")
    ax.set_xlim(-0.5, image.shape[1] - 0.5)
    ax.set_ylim(image.shape[0] - 0.5, -0.5)


def _check_overlays(
    images: np.ndarray,
    references: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    row_titles: Sequence[str] | None,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    images = _stack(images, "images", 3)
    if images.shape[0] == 0:
        raise ValueError("boundary_overlays: no images")
    references = _stack(references, "references", 3).astype(bool)
    _same_shape(images, references, "images", "references")
    if not predictions:
        raise ValueError("boundary_overlays: no model predictions")
    preds = {}
    for model, pred in predictions.items():
        preds[model] = np.asarray(pred).astype(bool)
        _same_shape(images, preds[model], "images", f"predictions[{model!r}]")
    if row_titles is not None and len(row_titles) != images.shape[0]:
        raise ValueError(f"got {len(row_titles)} row titles for {images.shape[0]} images")
    return images, references, preds


def _wrapped(title: str, width: int = 22) -> str:
    """A column title broken into lines of at most ``width`` characters (at ``+`` where it can),
    so long variant names do not run into the next column."""
    import textwrap

    return "\n".join(textwrap.wrap(title.replace("+", "+ "), width)).replace("+ ", "+")


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
        row_titles: optional ``K`` labels written left of each row (e.g. image ids).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: on no images, no models, mismatched shapes or a wrong number of row titles.
    """
    images, references, preds = _check_overlays(images, references, predictions, row_titles)
    k, m = images.shape[0], len(preds)
    fig = _new_figure(2.1 * m + 0.5, 2.1 * k + 0.6)
    axes = fig.subplots(k, m, squeeze=False)
    for j, (model, pred) in enumerate(preds.items()):
        axes[0, j].set_title(_wrapped(model), fontsize="medium")
        for i in range(k):
            _boundary_cell(axes[i, j], images[i], references[i], pred[i])
    for i in range(k):
        if row_titles is not None:
            axes[i, 0].set_ylabel(row_titles[i])
    handles = [
        Line2D([], [], color=_REFERENCE_COLOUR, linewidth=2, label="reference"),
        Line2D(
            [],
            [],
            color=_PREDICTION_COLOUR,
            linewidth=2,
            linestyle=(0, (3, 1.5)),
            label="prediction",
        ),
    ]
    legend = fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=2,
        fontsize=_SMALL,
        facecolor="0.25",
        labelcolor="white",
    )
    legend.get_frame().set_edgecolor("0.25")
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# Saliency
# --------------------------------------------------------------------------------------------


def _check_saliency(
    images: np.ndarray,
    saliency: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    probabilities: np.ndarray,
    n_classes: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    images = _stack(images, "images", 3)
    saliency = _stack(saliency, "saliency", 3)
    _same_shape(images, saliency, "images", "saliency")
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
    alpha = _HEAT_ALPHA[0] + (_HEAT_ALPHA[1] - _HEAT_ALPHA[0]) * saliency
    ax.imshow(
        saliency,
        cmap=_HEAT_MAP,
        vmin=0.0,
        vmax=1.0,
        alpha=alpha,
        interpolation=_interpolation(saliency),
    )


def _empty_row(ax: Axes, label: str) -> None:
    _clear_ticks(ax)
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
    class_names: Sequence[str] = _CLASS_NAMES,
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
    fig = _new_figure(_PANEL * ncols + 1.6, 2 * 2.2 + (0.4 if title else 0.0))
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
            _show_grey(ax, images[i])
            _show_heat(ax, saliency[i])
            ax.set_title(
                f"true: {class_names[labels[i]]}\npred: {class_names[preds[i]]} ({probs[i]:.2f})",
                fontsize=_SMALL,
            )
            if c == 0:
                ax.set_ylabel(label)
    if len(labels):
        heat = ScalarMappable(Normalize(0.0, 1.0), cmap=_HEAT_MAP)
        # pad is a fraction of the panels' width: about 0.15 inch whatever the column count
        pad = 0.15 / (_PANEL * ncols)
        fig.colorbar(heat, ax=axes, shrink=0.7, aspect=25, pad=pad, label="saliency")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# ROC curves
# --------------------------------------------------------------------------------------------


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
    domains = _unique_in_order(d for _, d in points)
    fig = _new_figure(3.8 * len(domains) + 0.2, 4.2)
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
                    color=_model_colour(i),
                    linewidth=1.8,
                    label=f"{model} (AUC {auc:.3f})",
                )
        _roc_axes(ax, domain)
    axes[0].set_ylabel("true positive rate (sensitivity)")
    fig.suptitle("ROC curves")
    return _save(fig, path)


def _roc_axes(ax: Axes, domain: str) -> None:
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.set_title(domain)
    ax.set_xlabel("false positive rate (1 - specificity)")
    ax.legend(loc="lower right", fontsize=_SMALL)


# --------------------------------------------------------------------------------------------
# Embedding map
# --------------------------------------------------------------------------------------------


def embed_2d(embeddings: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """Project ``(N, D)`` embeddings to 2-D for :func:`embedding_map`.

    Features are standardised first. ``"tsne"`` then reduces to ``min(50, D, N)`` principal
    components and runs t-SNE (PCA initialisation, perplexity ``min(30, (N - 1) / 3)``);
    ``"pca"`` keeps the first two principal components. Same inputs and seed, same output.

    Args:
        embeddings: ``(N, D)`` finite feature vectors, ``N >= 5``.
        method: ``"tsne"`` or ``"pca"``.
        seed: random state of t-SNE.

    Returns:
        ``(N, 2)`` float64 coordinates.

    Raises:
        ValueError: on a bad shape, ``N < 5``, non-finite values or an unknown method.
    """
    x = _stack(embeddings, "embeddings", 2).astype(np.float64)
    n, d = x.shape
    if n < 5:
        raise ValueError(f"an embedding map needs at least 5 points, got {n}")
    if not np.all(np.isfinite(x)):
        raise ValueError("embeddings contain NaN or infinite values")
    std = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    if method == "pca":
        if d < 2:
            raise ValueError("method='pca' needs at least 2 features")
        return PCA(2, svd_solver="full").fit_transform(x)
    if method != "tsne":
        raise ValueError(f"method must be 'tsne' or 'pca', got {method!r}")
    reduced = PCA(min(50, d, n), svd_solver="full").fit_transform(x)
    tsne = TSNE(2, init="pca", random_state=seed, perplexity=min(30.0, (n - 1) / 3))
    return tsne.fit_transform(reduced).astype(np.float64)


def _label_styles(labels: np.ndarray, class_names: Sequence[str]) -> list[tuple[int, str, str]]:
    """(label value, legend name, colour) for the labels present, unlabeled first."""
    colours = ["#0072B2", "#D55E00", *MODEL_COLOURS[2:]]
    styles = [(-1, "unlabeled", _UNLABELED_COLOUR)] if np.any(labels == -1) else []
    styles += [(c, class_names[c], colours[c % len(colours)]) for c in range(len(class_names)) if np.any(labels == c)]
    return styles


def _check_embedding_inputs(
    embeddings: np.ndarray, labels: np.ndarray, sources: Sequence[str], n_classes: int
) -> np.ndarray:
    n = np.asarray(embeddings).shape[0] if np.ndim(embeddings) else 0
    y = np.asarray(labels).reshape(-1)
    if y.shape[0] != n or len(sources) != n:
        raise ValueError(f"got {n} embeddings, {y.shape[0]} labels and {len(sources)} sources")
    if not np.all(np.isin(y, np.arange(-1, n_classes))):
        raise ValueError(f"labels must be -1 (unlabeled) or in [0, {n_classes}), got {np.unique(y)}")
    return y.astype(np.int64)


def embedding_map(
    embeddings: np.ndarray,
    labels: np.ndarray,
    sources: Sequence[str],
    path: PathLike,
    *,
    method: str = "tsne",
    seed: int = 0,
    title: str = "",
    class_names: Sequence[str] = _CLASS_NAMES,
) -> Path:
    """2-D map of image embeddings: colour = class, marker = source dataset.

    Points of one source clustering apart from the others, whatever their class, reveal the
    domain gap. Coordinates come from :func:`embed_2d`.

    Args:
        embeddings: ``(N, D)`` feature vectors, ``N >= 5``.
        labels: ``(N,)`` class indices, ``-1`` for unlabeled images.
        sources: ``N`` source (site / dataset) names; markers follow first appearance.
        path: where to write the PNG.
        method: ``"tsne"`` or ``"pca"``.
        seed: t-SNE random state.
        title: figure title (default: the method's name).
        class_names: names of the class indices.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: on mismatched lengths, ``N < 5``, labels out of range or an unknown method.
    """
    y = _check_embedding_inputs(embeddings, labels, sources, len(class_names))
    xy = embed_2d(embeddings, method, seed)
    src = np.asarray(sources, dtype=object)
    source_names = _unique_in_order(sources)
    markers = {s: _MARKERS[i % len(_MARKERS)] for i, s in enumerate(source_names)}
    styles = _label_styles(y, class_names)

    fig = _new_figure(6.6, 4.8)
    ax = fig.subplots()
    for value, _, colour in styles:
        for s in source_names:
            keep = (y == value) & (src == s)
            ax.scatter(
                xy[keep, 0],
                xy[keep, 1],
                marker=markers[s],
                s=30,
                color=colour,
                edgecolor="white",
                linewidths=0.4,
                alpha=0.85,
            )
    _embedding_legends(fig, styles, markers)
    name = "t-SNE" if method == "tsne" else "PCA"
    ax.set_xlabel(f"{name} 1")
    ax.set_ylabel(f"{name} 2")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"{name} map of the embeddings (N={len(y)})")
    return _save(fig, path)


def _embedding_legends(fig: Figure, styles: list[tuple[int, str, str]], markers: dict[str, str]) -> None:
    """One legend right of the map: a "class" section (colours), then a "source" one (markers)."""
    handles = [_legend_header("class")]
    handles += [Line2D([], [], marker="o", linestyle="none", color=c, label=name) for _, name, c in styles]
    handles.append(_legend_header("source"))
    handles += [
        Line2D([], [], marker=m, linestyle="none", color="0.3", markerfacecolor="none", label=s)
        for s, m in markers.items()
    ]
    legend = fig.legend(handles=handles, loc="outside right upper", fontsize=_SMALL + 1)
    for text, handle in zip(legend.get_texts(), handles):
        if handle.get_gid() == "header":
            text.set_fontweight("bold")


def _legend_header(name: str) -> Line2D:
    return Line2D([], [], linestyle="none", label=name, gid="header")
