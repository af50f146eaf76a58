"""The pictures a prediction comes with: lung mask, boundary overlay, saliency overlay (uint8 arrays)."""

from __future__ import annotations

import os

import numpy as np
from matplotlib import colormaps
from scipy import ndimage
from skimage.segmentation import find_boundaries

from multimix.utils.atomic import atomic_write, write_all

BOUNDARY_COLOUR = (0, 230, 90)
SALIENCY_COLOURMAP = "inferno"
SALIENCY_FLOOR = 0.15  # saliency below this share of the image's maximum is not drawn


def _grey_rgb(image: np.ndarray) -> np.ndarray:
    grey = (np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def mask_image(mask: np.ndarray) -> np.ndarray:
    """A boolean mask as a uint8 image: 255 lung, 0 background."""
    return np.where(mask, 255, 0).astype(np.uint8)


def boundary_overlay(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = BOUNDARY_COLOUR) -> np.ndarray:
    """The image in grey with the mask's outline drawn over it, ``(H, W, 3)`` uint8.

    The outline is about 1/256 of the image side thick (at least one pixel), so it stays
    visible on full-resolution radiographs.
    """
    if image.shape != mask.shape:
        raise ValueError(f"image {image.shape} and mask {mask.shape} differ in shape")
    outline = find_boundaries(mask.astype(bool), mode="inner")
    thickness = max(1, max(mask.shape) // 256)
    if thickness > 1:
        outline = ndimage.binary_dilation(outline, iterations=thickness - 1) & mask.astype(bool)
    rgb = _grey_rgb(image)
    rgb[outline] = colour
    return rgb


def saliency_overlay(image: np.ndarray, saliency: np.ndarray, alpha: float = 0.75) -> np.ndarray:
    """The saliency as a heat map blended over the grey image, ``(H, W, 3)`` uint8; the blend
    weight grows with the saliency, so unimportant regions keep the radiograph visible."""
    if image.shape != saliency.shape:
        raise ValueError(f"image {image.shape} and saliency {saliency.shape} differ in shape")
    heat = np.clip(saliency, 0.0, 1.0)
    colour = colormaps[SALIENCY_COLOURMAP](heat)[..., :3] * 255
    # below the floor is noise that would wash the whole film in colour; above it the square
    # root lifts the sparse tail of the map into view
    visible = np.clip((heat - SALIENCY_FLOOR) / (1 - SALIENCY_FLOOR), 0.0, 1.0)
    weight = (alpha * np.sqrt(visible))[..., None]
    blended = (1 - weight) * _grey_rgb(image) + weight * colour
    return blended.round().astype(np.uint8)


def prediction_pictures(
    image: np.ndarray, lung_mask: np.ndarray | None, saliency: np.ndarray | None
) -> dict[str, np.ndarray]:
    """The pictures of one prediction, by name: ``mask``, ``boundary`` (with a mask) and
    ``saliency`` (with a saliency map); mask and saliency must have the image's shape."""
    pictures = {}
    if lung_mask is not None:
        pictures["mask"] = mask_image(lung_mask)
        pictures["boundary"] = boundary_overlay(image, lung_mask)
    if saliency is not None:
        pictures["saliency"] = saliency_overlay(image, saliency)
    return pictures


def png_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 grey ``(H, W)`` or RGB ``(H, W, 3)`` array as PNG."""
    import imageio.v3 as iio

    # zlib level 1: about 3.5x faster than the default on full-resolution radiographs, for files
    # a little larger (PNG stays lossless either way)
    return iio.imwrite("<bytes>", array, extension=".png", compress_level=1)


def write_png(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as a PNG file atomically."""
    data = png_bytes(array)
    atomic_write(path, lambda handle: write_all(handle, data))
