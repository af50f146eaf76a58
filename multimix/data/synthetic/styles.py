"""Hospital "sites" of the synthetic data: how each acquires its images (:class:`SiteStyle`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SiteStyle:
    """How one hospital's scanner and post-processing render a chest.

    Attributes:
        gamma: exponent of the intensity curve applied to the [0, 1] radiograph (<1 brightens
            and flattens the lungs, >1 darkens them).
        contrast: window width factor around mid-grey; >1 is a narrower, harsher window.
        brightness: offset added after the window (level).
        noise_std: standard deviation of the additive quantum/detector noise at mid-grey.
        blur: Gaussian blur sigma as a fraction of the image side (detector / resampling blur).
        scale: how much of the field the chest fills (1.0: the body about spans the width).
        vertical_offset: shift of the chest centre, as a fraction of the half image (+ is down).
        exposure_jitter: per-image spread of gamma (log scale) and brightness within the site.
        border_probability: chance that an image carries a collimation / padding frame.
        border_width: (min, max) frame width per side as a fraction of the image side.
        border_value: grey level of the frame (0 black padding, 1 white unexposed film).
        marker: burned-in marker kind: "none", "letter" (an "L" or "R"), or "text" (a short
            block of bright glyph-like pixels, as in scanner annotations).
        marker_probability: chance that an image carries the marker.
    """

    gamma: float = 1.0
    contrast: float = 1.0
    brightness: float = 0.0
    noise_std: float = 0.01
    blur: float = 0.003
    scale: float = 1.0
    vertical_offset: float = 0.0
    exposure_jitter: float = 0.05
    border_probability: float = 0.0
    border_width: tuple[float, float] = (0.0, 0.0)
    border_value: float = 0.0
    marker: str = "none"
    marker_probability: float = 0.0


SITES: dict[str, SiteStyle] = {
    # Paediatric pneumonia clinic: small bodies fill less of the field, harsh window, "R" letters.
    "chex": SiteStyle(
        gamma=0.95,
        contrast=1.3,
        brightness=-0.02,
        noise_std=0.018,
        blur=0.004,
        scale=0.88,
        vertical_offset=-0.06,
        exposure_jitter=0.08,
        marker="letter",
        marker_probability=0.6,
    ),
    # Digitised film archive: clean, low noise, full chest, no annotations.
    "jsrt": SiteStyle(
        gamma=1.0,
        contrast=1.0,
        brightness=0.0,
        noise_std=0.004,
        blur=0.003,
        scale=1.0,
        vertical_offset=0.0,
        exposure_jitter=0.03,
    ),
    # County TB screening: wide black padding frame and burned-in text.
    "montgomery": SiteStyle(
        gamma=1.1,
        contrast=1.05,
        brightness=0.03,
        noise_std=0.012,
        blur=0.004,
        scale=0.9,
        vertical_offset=0.02,
        exposure_jitter=0.05,
        border_probability=0.9,
        border_width=(0.04, 0.09),
        border_value=0.0,
        marker="text",
        marker_probability=0.9,
    ),
    # Large public archive held out as the unseen domain: washed-out curve, low contrast,
    # heavy noise and blur, white collimation frame, corner text.
    "nih": SiteStyle(
        gamma=0.7,
        contrast=0.8,
        brightness=0.06,
        noise_std=0.03,
        blur=0.007,
        scale=1.06,
        vertical_offset=0.04,
        exposure_jitter=0.1,
        border_probability=0.5,
        border_width=(0.015, 0.05),
        border_value=1.0,
        marker="text",
        marker_probability=0.7,
    ),
    # Provincial hospital: darker curve, thin black frame, "L" letters.
    "shenzhen": SiteStyle(
        gamma=1.25,
        contrast=1.1,
        brightness=0.0,
        noise_std=0.015,
        blur=0.004,
        scale=0.95,
        vertical_offset=0.0,
        exposure_jitter=0.06,
        border_probability=0.5,
        border_width=(0.01, 0.03),
        border_value=0.0,
        marker="letter",
        marker_probability=0.7,
    ),
}
