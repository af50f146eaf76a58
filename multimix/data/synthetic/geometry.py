"""Geometry of the synthetic chest X-rays: pose, the canonical grid, soft edges, smooth noise."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

Array = np.ndarray


@dataclass(frozen=True)
class Pose:
    """Maps pixels to canonical chest coordinates (patient placement in the field)."""

    scale: float
    shift_x: float
    shift_y: float
    angle: float


def canonical_grid(size: int, pose: Pose) -> tuple[Array, Array]:
    """Canonical (x, y) of every pixel centre; image and mask share this one transform."""
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0
    px, py = np.meshgrid(coords - pose.shift_x, coords - pose.shift_y)
    return rotate(px / pose.scale, py / pose.scale, 0.0, 0.0, pose.angle)


def rotate(x: Array, y: Array, cx: float, cy: float, angle: float) -> tuple[Array, Array]:
    """``x``, ``y`` rotated by ``angle`` radians about (``cx``, ``cy``)."""
    # math.cos keeps Python floats: numpy float64 scalars would promote float32 grids.
    cos, sin = math.cos(angle), math.sin(angle)
    dx, dy = x - cx, y - cy
    return cos * dx + sin * dy, -sin * dx + cos * dy


def ramp(sdf: Array, width: float) -> Array:
    """Soft inside indicator of a signed distance (positive inside), 0.5 on the boundary."""
    return np.clip(sdf * (1.0 / width) + 0.5, 0.0, 1.0)


def smooth_grid(rng: np.random.Generator, cells: int, sigma: float) -> Array:
    """Unit-variance smooth random field on a small grid (size independent by construction)."""
    grid = ndimage.gaussian_filter(rng.standard_normal((cells, cells)), sigma, mode="wrap")
    return (grid / (grid.std() + 1e-8)).astype(np.float32)


def sample_grid(grid: Array, u: Array, v: Array) -> Array:
    """Bilinear lookup of ``grid`` at coordinates ``u, v`` in [0, 1] (wrapping).

    Hand-written because ``ndimage.map_coordinates`` costs several times more per call here.
    """
    cells = grid.shape[0]
    gu, gv = u * cells, v * cells
    col, row = np.floor(gu), np.floor(gv)
    fu, fv = gu - col, gv - row
    col0, row0 = col.astype(np.intp) % cells, row.astype(np.intp) % cells
    col1, row1 = (col0 + 1) % cells, (row0 + 1) % cells
    top = grid[row0, col0] * (1 - fu) + grid[row0, col1] * fu
    bottom = grid[row1, col0] * (1 - fu) + grid[row1, col1] * fu
    return top * (1 - fv) + bottom * fv


def uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """One draw from U(``low``, ``high``) as a Python float."""
    return float(rng.uniform(low, high))
