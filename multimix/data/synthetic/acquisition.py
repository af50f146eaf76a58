"""Acquisition of a synthetic case: pose, the site's intensity curve, noise, blur, collimation
border and burned-in markers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from multimix.data.synthetic.geometry import Array, Pose, uniform
from multimix.data.synthetic.styles import SiteStyle


@dataclass(frozen=True)
class _Acquisition:
    pose: Pose
    gamma: float
    brightness: float
    border: tuple[float, float, float, float] | None  # top, bottom, left, right fractions
    marker: tuple[str, int, float] | None  # text, corner index, grey level


def sample_acquisition(rng: np.random.Generator, style: SiteStyle) -> _Acquisition:
    """A case's acquisition drawn from its site's style: pose, gamma, brightness, border, marker."""
    pose = Pose(
        scale=style.scale * uniform(rng, 0.95, 1.05),
        shift_x=uniform(rng, -0.04, 0.04),
        shift_y=style.vertical_offset + uniform(rng, -0.04, 0.04),
        angle=uniform(rng, -0.06, 0.06),
    )
    border: tuple[float, float, float, float] | None = None
    if rng.random() < style.border_probability:
        top, bottom, left, right = (float(w) for w in rng.uniform(*style.border_width, 4))
        border = (top, bottom, left, right)
    marker = None
    if style.marker != "none" and rng.random() < style.marker_probability:
        marker = (_marker_text(rng, style.marker), int(rng.integers(4)), uniform(rng, 0.85, 1.0))
    return _Acquisition(
        pose=pose,
        gamma=style.gamma * math.exp(float(rng.normal(0, style.exposure_jitter))),
        brightness=style.brightness + float(rng.normal(0, style.exposure_jitter / 3)),
        border=border,
        marker=marker,
    )


def _marker_text(rng: np.random.Generator, kind: str) -> str:
    """A side letter, or a short scanner-annotation string of 3-6 glyphs."""
    if kind == "letter":
        return "L" if rng.random() < 0.5 else "R"
    alphabet = "0123456789AP#"
    return "".join(alphabet[i] for i in rng.integers(len(alphabet), size=int(rng.integers(3, 7))))


def apply_acquisition(
    radiograph: Array,
    mask: Array,
    style: SiteStyle,
    acquisition: _Acquisition,
    rng: np.random.Generator,
) -> Array:
    """The attenuation image as the site's scanner would show it: intensity curve, blur, noise,
    collimation border and marker."""
    size = radiograph.shape[0]
    image = np.clip(radiograph, 0, 1) ** acquisition.gamma
    image = (image - 0.5) * style.contrast + 0.5 + acquisition.brightness
    image = ndimage.gaussian_filter(image, sigma=style.blur * size)
    # Noise is drawn last: everything before it is independent of the image size.
    noise = rng.standard_normal((size, size), dtype=np.float32)
    image += style.noise_std * (0.6 + 0.8 * np.clip(image, 0, 1)) * noise
    margin = 0
    if acquisition.border is not None:
        margin = _draw_border(image, mask, acquisition.border, style.border_value)
    if acquisition.marker is not None:
        _draw_marker(image, mask, acquisition.marker, margin)
    return np.clip(image, 0, 1).astype(np.float32)


def _draw_border(image: Array, mask: Array, widths: tuple[float, float, float, float], value: float) -> int:
    """Draw a collimation frame kept clear of the lungs (so the whole mask stays visible);
    return its widest side in pixels."""
    size = image.shape[0]
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size:
        room = (rows[0], size - 1 - rows[-1], cols[0], size - 1 - cols[-1])
    else:
        room = (size // 4,) * 4
    top, bottom, left, right = (max(0, min(round(w * size), int(r) - 2)) for w, r in zip(widths, room, strict=True))
    image[:top] = value
    image[size - bottom :] = value
    image[:, :left] = value
    image[:, size - right :] = value
    return max(top, bottom, left, right)


_GLYPHS = {
    "L": ("1000", "1000", "1000", "1000", "1111"),
    "R": ("1110", "1001", "1110", "1010", "1001"),
    "A": ("0110", "1001", "1111", "1001", "1001"),
    "P": ("1110", "1001", "1110", "1000", "1000"),
    "#": ("0101", "1111", "0101", "1111", "0101"),
    "0": ("0110", "1001", "1001", "1001", "0110"),
    "1": ("0100", "1100", "0100", "0100", "1110"),
    "2": ("1110", "0001", "0110", "1000", "1111"),
    "3": ("1110", "0001", "0110", "0001", "1110"),
    "4": ("1001", "1001", "1111", "0001", "0001"),
    "5": ("1111", "1000", "1110", "0001", "1110"),
    "6": ("0111", "1000", "1110", "1001", "0110"),
    "7": ("1111", "0001", "0010", "0100", "0100"),
    "8": ("0110", "1001", "0110", "1001", "0110"),
    "9": ("0110", "1001", "0111", "0001", "1110"),
}


def _glyph_bitmap(text: str, cell: int) -> Array:
    """Render ``text`` with the 4x5 glyphs above, one blank column between glyphs."""
    pieces = []
    for char in text:
        pieces.append(np.array([[c == "1" for c in row] for row in _GLYPHS[char]]))
        pieces.append(np.zeros((5, 1), bool))
    return np.kron(np.concatenate(pieces[:-1], axis=1), np.ones((cell, cell), bool))


def _draw_marker(image: Array, mask: Array, marker: tuple[str, int, float], margin: int) -> None:
    text, corner, value = marker
    size = image.shape[0]
    bitmap = _glyph_bitmap(text, cell=max(1, size // 80))
    height, width = bitmap.shape
    margin += max(2, size // 32)
    if height + 2 * margin > size or width + 2 * margin > size:
        return
    top = margin if corner < 2 else size - margin - height
    left = margin if corner % 2 == 0 else size - margin - width
    if mask[top : top + height, left : left + width].any():
        return  # never burn text over the lungs: the mask must stay truthful
    image[top : top + height, left : left + width][bitmap] = value
