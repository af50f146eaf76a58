"""A 2-D map of image embeddings (t-SNE or PCA, :func:`embed_2d`) by class and source:
:func:`embedding_map`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from multimix.data.records import CLASS_NAMES
from multimix.evaluation.figures.canvas import (
    MARKERS,
    MODEL_COLOURS,
    SMALL,
    UNLABELED_COLOUR,
    PathLike,
    new_figure,
    save,
    stack,
    unique_in_order,
)


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
    x = stack(embeddings, "embeddings", 2).astype(np.float64)
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
    styles = [(-1, "unlabeled", UNLABELED_COLOUR)] if np.any(labels == -1) else []
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
    class_names: Sequence[str] = CLASS_NAMES,
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
    source_names = unique_in_order(sources)
    markers = {s: MARKERS[i % len(MARKERS)] for i, s in enumerate(source_names)}
    styles = _label_styles(y, class_names)

    fig = new_figure(6.6, 4.8)
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
    return save(fig, path)


def _embedding_legends(fig: Figure, styles: list[tuple[int, str, str]], markers: dict[str, str]) -> None:
    """One legend right of the map: a "class" section (colours), then a "source" one (markers)."""
    handles = [_legend_header("class")]
    handles += [Line2D([], [], marker="o", linestyle="none", color=c, label=name) for _, name, c in styles]
    handles.append(_legend_header("source"))
    handles += [
        Line2D([], [], marker=m, linestyle="none", color="0.3", markerfacecolor="none", label=s)
        for s, m in markers.items()
    ]
    legend = fig.legend(handles=handles, loc="outside right upper", fontsize=SMALL + 1)
    for text, handle in zip(legend.get_texts(), handles):
        if handle.get_gid() == "header":
            text.set_fontweight("bold")


def _legend_header(name: str) -> Line2D:
    return Line2D([], [], linestyle="none", label=name, gid="header")
