"""Per-image score distributions: :func:`dice_boxplot`."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from multimix.evaluation.figures.canvas import (
    SMALL,
    PathLike,
    model_colour,
    new_figure,
    save,
    unique_in_order,
)


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
                fontsize=SMALL,
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
    ax.set_xticklabels(labels, fontsize=SMALL + 1)
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
    colours = {m: model_colour(i) for i, m in enumerate(scores)}
    models = unique_in_order(m for m, _ in present)
    domains = unique_in_order(d for _, d in present)
    empty = np.zeros(0)

    width = max(3.0, 1.05 * len(models) + 0.6)
    fig = new_figure(width * len(domains) + 0.4, 4.0)
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
    fig.legend(handles=[median, mean], loc="outside lower center", fontsize=SMALL, ncols=2, frameon=False)
    return save(fig, path)


def _set_score_range(ax: Axes, groups: list[np.ndarray]) -> None:
    """Scores in [0, 1] end at 1; the axis starts a little below the lowest value (in steps of
    0.1) so that good models, all above 0.9, are not squashed into a line at the top."""
    if all(v.min() >= 0.0 and v.max() <= 1.0 for v in groups):
        low = max(0.0, np.floor(min(v.min() for v in groups) * 10) / 10)
        pad = 0.03 * (1.0 - low)
        ax.set_ylim(low - pad, 1.0 + pad)
