"""Pneumonia opacities of the synthetic chest X-rays: patchy, confined to the lungs, some subtle."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from multimix.data.synthetic.anatomy import Anatomy, Shapes, lung_mask_sdf
from multimix.data.synthetic.geometry import Array, ramp, rotate, sample_grid, smooth_grid, uniform


@dataclass(frozen=True)
class _Opacity:
    """A patchy consolidation; ``fissure`` (nx, ny, offset) cuts a sharp lobar edge."""

    cx: float
    cy: float
    rx: float
    ry: float
    angle: float
    strength: float
    subtle: bool
    patches: Array
    fissure: tuple[float, float, float] | None


def sample_opacities(rng: np.random.Generator, anatomy: Anatomy) -> list[_Opacity]:
    """The 1-3 pneumonia lesions of one case (about a quarter subtle), inside the lungs."""
    subtle = rng.random() < 0.25
    count = 1 if subtle else int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
    return [_sample_opacity(rng, anatomy, subtle) for _ in range(count)]


def _sample_opacity(rng: np.random.Generator, anatomy: Anatomy, subtle: bool) -> _Opacity:
    cx, cy = _sample_point_in_lungs(rng, anatomy)
    radius = uniform(rng, 0.09, 0.14) if subtle else uniform(rng, 0.14, 0.28)
    strength = uniform(rng, 0.12, 0.18) if subtle else uniform(rng, 0.25, 0.45)
    aspect = uniform(rng, 0.65, 1.5)
    fissure = None
    if not subtle and rng.random() < 0.3:
        direction = uniform(rng, 0, 2 * np.pi)
        fissure = (math.cos(direction), math.sin(direction), uniform(rng, -0.3, 0.5) * radius)
    return _Opacity(
        cx=cx,
        cy=cy,
        rx=radius * math.sqrt(aspect),
        ry=radius / math.sqrt(aspect),
        angle=uniform(rng, 0, np.pi),
        strength=strength,
        subtle=subtle,
        patches=smooth_grid(rng, 16, 1.0),
        fissure=fissure,
    )


def _sample_point_in_lungs(rng: np.random.Generator, anatomy: Anatomy) -> tuple[float, float]:
    """Rejection-sample a point well inside the lung mask (independent of the image size)."""
    lung = anatomy.lungs[int(rng.integers(2))]
    px = lung.cx + rng.uniform(-1, 1, 64) * lung.half_width
    py = lung.cy + rng.uniform(-1, 1, 64) * lung.half_height
    inside = np.flatnonzero(lung_mask_sdf(px, py, anatomy) > 0.05)
    if inside.size == 0:  # practically never: most of the bounding box is lung
        return lung.cx, lung.cy
    return float(px[inside[0]]), float(py[inside[0]])


_OPACITY_EXTENT = 2.6  # lesion radii beyond which a Gaussian blob is negligible


def opacity_layer(x: Array, y: Array, lesions: list[_Opacity], shapes: Shapes, mask: Array) -> Array:
    """Sum of the opacities, confined to the lung mask (exactly zero outside it)."""
    layer = np.zeros_like(x)
    for lesion in lesions:
        u, v = rotate(x, y, lesion.cx, lesion.cy, lesion.angle)
        su, sv = u * (1 / lesion.rx), v * (1 / lesion.ry)
        near = (np.abs(su) < _OPACITY_EXTENT) & (np.abs(sv) < _OPACITY_EXTENT)
        layer[near] += lesion.strength * _lesion_density(lesion, su[near], sv[near], x[near], y[near])
    # Fade in over ~2 pixels from the pleura so the blur cannot push much density outside.
    inside = np.clip(shapes.mask_sdf * (1 / (2 * shapes.pixel)), 0, 1) * mask
    return layer * inside


def _lesion_density(lesion: _Opacity, su: Array, sv: Array, x: Array, y: Array) -> Array:
    blob = np.exp(-0.5 * (su * su + sv * sv))
    to_grid = 1 / (2 * _OPACITY_EXTENT)
    gu, gv = (su + _OPACITY_EXTENT) * to_grid, (sv + _OPACITY_EXTENT) * to_grid
    # Two octaves of patchiness (acinar clusters inside a lobular cloud), no plateau: the
    # density keeps varying like real airspace disease rather than a flat white disc.
    patches = 0.3 * sample_grid(lesion.patches, gu, gv)
    patches += 0.15 * sample_grid(lesion.patches, 2.7 * gu + 0.3, 2.7 * gv + 0.6)
    density = np.clip(blob * (0.85 + patches) - 0.08, 0, None) * (1 / 0.92)
    if lesion.fissure is not None:
        nx, ny, offset = lesion.fissure
        density *= ramp(nx * (x - lesion.cx) + ny * (y - lesion.cy) - offset, 0.02)
    return density
