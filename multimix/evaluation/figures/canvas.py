"""What every report figure shares: the model palette, the Agg canvas, atomic PNG writes and
small drawing helpers."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from multimix.utils.atomic import atomic_write

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
UNLABELED_COLOUR = "#9A9A9A"
REFERENCE_COLOUR = "#2BFF4A"
PREDICTION_COLOUR = "#FF2BD6"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
HEAT_MAP = "inferno"
HEAT_ALPHA = (0.2, 0.7)  # opacity of the heat map at saliency 0 and 1
PANEL = 1.8  # inches per image panel of the saliency grid
DPI = 120
SMALL = 8


def model_colour(index: int) -> str:
    """The palette colour of the ``index``-th model (the palette repeats after eight)."""
    return MODEL_COLOURS[index % len(MODEL_COLOURS)]


def new_figure(width: float, height: float) -> Figure:
    """A standalone figure on an Agg canvas (no pyplot), with constrained layout."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: PathLike) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically, then release its artists."""
    try:
        return atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=DPI))
    finally:
        fig.clear()


def unique_in_order(items: Iterable[str]) -> list[str]:
    """``items`` without repeats, first occurrence first."""
    return list(dict.fromkeys(items))


def clear_ticks(ax: Axes) -> None:
    """No ticks on either axis (image panels)."""
    ax.set_xticks([])
    ax.set_yticks([])


def interpolation(image: np.ndarray) -> str:
    """How Matplotlib should resample ``image`` for display."""
    # small images are enlarged smoothly; large ones are shrunk with an anti-aliasing filter
    return "bilinear" if max(image.shape) <= 256 else "antialiased"


def show_grey(ax: Axes, image: np.ndarray) -> None:
    """``image`` (values in [0, 1]) in grey on ``ax``, without ticks."""
    ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation=interpolation(image))
    clear_ticks(ax)


def stack(array: np.ndarray, name: str, ndim: int) -> np.ndarray:
    """``array`` as an ndarray of ``ndim`` dimensions; ``ValueError`` naming ``name`` otherwise."""
    a = np.asarray(array)
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    return a


def same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """``ValueError`` naming both arrays unless they have one shape."""
    if a.shape != b.shape:
        raise ValueError(f"{name_b} shape {b.shape} does not match {name_a} shape {a.shape}")
