"""Procedural chest X-rays: the library's embedded default data.

Every image is drawn from closed-form shapes on a coordinate grid, so the whole library runs
anywhere with no download. Each case has

* anatomy: body outline, two asymmetric lung fields (the patient's left lung, on the image's
  right, is smaller and carries the cardiac notch), heart, mediastinum and spine, posterior and
  anterior ribs, clavicles, diaphragm domes, hilar vessels and mild lung texture;
* an exact binary lung mask (both lungs, heart excluded, as in the SCR / Montgomery masks);
* for pneumonia, 1-3 patchy opacities confined to the lungs, about a quarter of them subtle;
* a hospital "site" acquisition style (:class:`SiteStyle`): intensity curve, window, noise,
  blur, field of view, collimation border and burned-in markers.

Display polarity is the radiological one: air dark, bone and soft tissue bright.

Geometry lives in *canonical* chest coordinates (the chest spans about ``[-1, 1]`` in x, y points
down) so that a case looks the same at every ``image_size``; only pixel noise depends on the
size. Image ``i`` of a call is drawn from its own child seed, so it does not depend on ``n``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from multimix.data.records import NORMAL, PNEUMONIA, Record

__all__ = ["SITES", "SiteStyle", "generate_arrays", "generate_records"]

_Array = np.ndarray


# --------------------------------------------------------------------------------------------
# Site styles
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def generate_arrays(
    n: int,
    *,
    site: str = "chex",
    image_size: int = 128,
    seed: int = 0,
    pneumonia_fraction: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate ``n`` synthetic chest X-rays of one site.

    Args:
        n: number of images (>= 0).
        site: a key of :data:`SITES`.
        image_size: side ``S`` of the square images in pixels (>= 16).
        seed: non-negative seed; the same arguments always give identical arrays.
        pneumonia_fraction: share of pneumonia images; exactly ``round(n * fraction)`` are
            pneumonia, in a seeded random order.

    Returns:
        ``(images, masks, labels)``: float32 ``(n, S, S)`` in ``[0, 1]``, uint8 ``(n, S, S)``
        lung masks in ``{0, 1}``, int64 ``(n,)`` labels (0 normal, 1 pneumonia).
    """
    cases = _generate_cases(n, site, image_size, seed, pneumonia_fraction)
    images = np.zeros((n, image_size, image_size), np.float32)
    masks = np.zeros((n, image_size, image_size), np.uint8)
    labels = np.zeros(n, np.int64)
    for i, case in enumerate(cases):
        images[i], masks[i], labels[i] = case.image, case.mask, case.label
    return images, masks, labels


def generate_records(
    n: int,
    *,
    site: str = "chex",
    image_size: int = 128,
    seed: int = 0,
    pneumonia_fraction: float = 0.5,
    uid_prefix: str | None = None,
) -> list[Record]:
    """Generate ``n`` synthetic chest X-rays as :class:`Record` objects.

    Same arguments and images as :func:`generate_arrays`. Each record has ``image`` float32
    ``(S, S)``, ``mask`` uint8 ``(S, S)``, ``label``, ``source="synthetic-<site>"``, a unique
    ``uid`` ``"<prefix>-<seed>-<i:05d>"`` (prefix defaults to ``"synthetic-<site>"``),
    ``patient_id=uid`` and ``meta={"site", "opacities", "subtle"}``.
    """
    cases = _generate_cases(n, site, image_size, seed, pneumonia_fraction)
    prefix = uid_prefix or f"synthetic-{site}"
    records = []
    for i, case in enumerate(cases):
        uid = f"{prefix}-{seed}-{i:05d}"
        meta = {"site": site, "opacities": case.n_opacities, "subtle": case.subtle}
        records.append(
            Record(
                uid=uid,
                source=f"synthetic-{site}",
                label=case.label,
                image=case.image,
                mask=case.mask,
                patient_id=uid,
                meta=meta,
            )
        )
    return records


# --------------------------------------------------------------------------------------------
# Orchestration and seeding
# --------------------------------------------------------------------------------------------


@dataclass
class _Case:
    """One rendered case; ``opacity`` is the pathology layer before site styling."""

    image: _Array
    mask: _Array
    label: int
    opacity: _Array
    n_opacities: int
    subtle: bool


def _validate(n: int, site: str, image_size: int, seed: int, pneumonia_fraction: float) -> None:
    if site not in SITES:
        raise ValueError(f"unknown site {site!r}; known sites: {', '.join(sorted(SITES))}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if image_size < 16:
        raise ValueError(f"image_size must be >= 16 pixels, got {image_size}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not 0.0 <= pneumonia_fraction <= 1.0:
        raise ValueError(f"pneumonia_fraction must lie in [0, 1], got {pneumonia_fraction}")


def _generate_cases(n: int, site: str, image_size: int, seed: int, pneumonia_fraction: float) -> Iterator[_Case]:
    """Validate eagerly, then render lazily so callers never hold every case at once."""
    _validate(n, site, image_size, seed, pneumonia_fraction)
    labels = _label_order(n, site, seed, pneumonia_fraction)
    return (_render_case(site, seed, i, int(labels[i]), image_size) for i in range(n))


def _site_entropy(site: str, seed: int) -> list[int]:
    # crc32 is stable across runs (unlike hash()); mixing in the site keeps two sites generated
    # with the same seed from sharing patients.
    return [seed, zlib.crc32(site.encode())]


def _label_order(n: int, site: str, seed: int, pneumonia_fraction: float) -> _Array:
    n_pneumonia = round(n * pneumonia_fraction)
    labels = np.full(n, NORMAL, np.int64)
    labels[:n_pneumonia] = PNEUMONIA
    # spawn_key (1,) is a stream of its own, disjoint from the per-image keys (0, i).
    rng = np.random.default_rng(np.random.SeedSequence(_site_entropy(site, seed), spawn_key=(1,)))
    return rng.permutation(labels)


def _case_rngs(site: str, seed: int, index: int) -> tuple[np.random.Generator, ...]:
    """Independent anatomy, pathology and acquisition streams of image ``index``."""
    root = np.random.SeedSequence(_site_entropy(site, seed), spawn_key=(0, index))
    return tuple(np.random.default_rng(child) for child in root.spawn(3))


def _render_case(site: str, seed: int, index: int, label: int, size: int) -> _Case:
    """Render one case. Anatomy and acquisition do not depend on the label, so the normal and
    pneumonia renderings of one index differ only by the opacities."""
    style = SITES[site]
    anatomy_rng, pathology_rng, acquisition_rng = _case_rngs(site, seed, index)
    anatomy = _sample_anatomy(anatomy_rng)
    acquisition = _sample_acquisition(acquisition_rng, style)
    x, y = _canonical_grid(size, acquisition.pose)
    shapes = _shape_fields(x, y, anatomy, pixel=2.0 / (size * acquisition.pose.scale))
    mask = _clean_mask(shapes.mask_sdf > 0, x)
    radiograph = _anatomy_image(x, y, anatomy, shapes)
    lesions = _sample_opacities(pathology_rng, anatomy) if label == PNEUMONIA else []
    opacity = _opacity_layer(x, y, lesions, shapes, mask)
    image = _apply_acquisition(radiograph + opacity, mask, style, acquisition, acquisition_rng)
    subtle = bool(lesions) and all(lesion.subtle for lesion in lesions)
    return _Case(image, mask.astype(np.uint8), label, opacity, len(lesions), subtle)


# --------------------------------------------------------------------------------------------
# Geometry helpers: pose, canonical grid, soft edges, smooth noise
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pose:
    """Maps pixels to canonical chest coordinates (patient placement in the field)."""

    scale: float
    shift_x: float
    shift_y: float
    angle: float


def _canonical_grid(size: int, pose: _Pose) -> tuple[_Array, _Array]:
    """Canonical (x, y) of every pixel centre; image and mask share this one transform."""
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0
    px, py = np.meshgrid(coords - pose.shift_x, coords - pose.shift_y)
    return _rotate(px / pose.scale, py / pose.scale, 0.0, 0.0, pose.angle)


def _rotate(x: _Array, y: _Array, cx: float, cy: float, angle: float) -> tuple[_Array, _Array]:
    # math.cos keeps Python floats: numpy float64 scalars would promote float32 grids.
    cos, sin = math.cos(angle), math.sin(angle)
    dx, dy = x - cx, y - cy
    return cos * dx + sin * dy, -sin * dx + cos * dy


def _ramp(sdf: _Array, width: float) -> _Array:
    """Soft inside indicator of a signed distance (positive inside), 0.5 on the boundary."""
    return np.clip(sdf * (1.0 / width) + 0.5, 0.0, 1.0)


def _smooth_grid(rng: np.random.Generator, cells: int, sigma: float) -> _Array:
    """Unit-variance smooth random field on a small grid (size independent by construction)."""
    grid = ndimage.gaussian_filter(rng.standard_normal((cells, cells)), sigma, mode="wrap")
    return (grid / (grid.std() + 1e-8)).astype(np.float32)


def _sample_grid(grid: _Array, u: _Array, v: _Array) -> _Array:
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


# --------------------------------------------------------------------------------------------
# Anatomy parameters
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Lung:
    """A lung field: tapered superellipse with a Fourier-perturbed outline and a diaphragm dome.

    ``side`` is -1 for the image-left lung (patient's right) and +1 for the image-right lung.
    """

    side: int
    cx: float
    cy: float
    half_width: float
    half_height: float
    angle: float
    exponent: float
    apex_width: float
    harmonics: tuple[tuple[int, float, float], ...]  # (order, amplitude, phase)
    dome_height: float
    dome_peak: float


@dataclass(frozen=True)
class _Anatomy:
    lungs: tuple[_Lung, _Lung]
    heart: tuple[float, float, float, float, float]  # cx, cy, rx, ry, angle
    body_half_width: float
    arms: float | None  # gap between torso and arms, None when the arms are raised out of view
    mediastinum: float
    spine_x: float
    rib_spacing: float
    rib_start: tuple[float, float]
    rib_curvature: tuple[float, float]
    clavicle_y: float
    hila: tuple[tuple[float, float], tuple[float, float]]
    vessel_modes: tuple[tuple[tuple[int, float, float], ...], ...]
    vessel_strength: float
    texture: _Array
    texture_strength: float
    stomach_gas: float  # strength of the gastric air bubble under the left hemidiaphragm
    nodule: tuple[float, float, float] | None  # x, y, radius of a calcified granuloma


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def _sample_lung(rng: np.random.Generator, side: int, size_factor: float) -> _Lung:
    harmonics = tuple((k, _uniform(rng, 0, 0.05 / k), _uniform(rng, 0, 2 * np.pi)) for k in (2, 3, 4, 5))
    # The right hemidiaphragm (image left) sits higher because of the liver.
    liver_lift = -0.03 if side < 0 else 0.0
    return _Lung(
        side=side,
        cx=side * _uniform(rng, 0.45, 0.5),
        cy=_uniform(rng, -0.1, -0.04) + liver_lift,
        half_width=size_factor * _uniform(rng, 0.37, 0.42),
        half_height=size_factor * _uniform(rng, 0.66, 0.74),
        angle=side * _uniform(rng, -0.03, 0.06),
        exponent=_uniform(rng, 2.2, 2.8),
        apex_width=_uniform(rng, 0.3, 0.45),
        harmonics=harmonics,
        dome_height=_uniform(rng, 0.1, 0.18),
        dome_peak=_uniform(rng, -0.35, -0.05),
    )


def _sample_vessel_modes(rng: np.random.Generator) -> tuple[tuple[int, float, float], ...]:
    # Angular modes around a hilum: their zero sets are curves radiating from it.
    return tuple((int(rng.integers(3, 8)), _uniform(rng, -5, 5), _uniform(rng, 0, 2 * np.pi)) for _ in range(3))


def _sample_nodule(rng: np.random.Generator) -> tuple[float, float, float] | None:
    if rng.random() >= 0.15:
        return None
    side = 1 if rng.random() < 0.5 else -1
    return side * _uniform(rng, 0.3, 0.65), _uniform(rng, -0.5, 0.2), _uniform(rng, 0.012, 0.022)


def _sample_anatomy(rng: np.random.Generator) -> _Anatomy:
    size = _uniform(rng, 0.93, 1.05)
    right = _sample_lung(rng, -1, size)
    left = _sample_lung(rng, +1, size * _uniform(rng, 0.88, 0.96))
    heart = (
        _uniform(rng, 0.08, 0.16),
        _uniform(rng, 0.3, 0.38),
        _uniform(rng, 0.3, 0.4),
        _uniform(rng, 0.22, 0.28),
        _uniform(rng, -0.45, -0.2),
    )
    hila = (
        (-_uniform(rng, 0.18, 0.24), _uniform(rng, -0.12, 0.0)),
        (_uniform(rng, 0.17, 0.23), _uniform(rng, -0.14, -0.02)),
    )
    return _Anatomy(
        lungs=(right, left),
        heart=heart,
        body_half_width=_uniform(rng, 0.92, 1.0),
        arms=_uniform(rng, 0.02, 0.1) if rng.random() < 0.7 else None,
        mediastinum=_uniform(rng, 0.08, 0.11),
        spine_x=_uniform(rng, -0.02, 0.02),
        rib_spacing=_uniform(rng, 0.13, 0.16),
        rib_start=(_uniform(rng, -0.92, -0.82), _uniform(rng, -0.92, -0.82)),
        rib_curvature=(_uniform(rng, 0.45, 0.6), _uniform(rng, 0.45, 0.6)),
        clavicle_y=_uniform(rng, -0.84, -0.74),
        hila=hila,
        vessel_modes=(_sample_vessel_modes(rng), _sample_vessel_modes(rng)),
        vessel_strength=_uniform(rng, 0.05, 0.11),
        texture=_smooth_grid(rng, 24, 1.2),
        texture_strength=_uniform(rng, 0.01, 0.03),
        stomach_gas=_uniform(rng, 0.0, 0.18),
        nodule=_sample_nodule(rng),
    )


# --------------------------------------------------------------------------------------------
# Shapes as signed distances (canonical units, positive inside)
# --------------------------------------------------------------------------------------------


@dataclass
class _Shapes:
    """Signed distances of the main structures on the pixel grid, computed once per image."""

    right_lung: _Array
    left_lung: _Array
    heart: _Array
    body: _Array
    pixel: float  # canonical size of one pixel, to keep edges anti-aliased at every size

    @property
    def lungs(self) -> _Array:
        return np.maximum(self.right_lung, self.left_lung)

    @property
    def mask_sdf(self) -> _Array:
        return np.minimum(self.lungs, -self.heart)


def _shape_fields(x: _Array, y: _Array, anatomy: _Anatomy, pixel: float) -> _Shapes:
    right, left = anatomy.lungs
    return _Shapes(
        right_lung=_lung_field_sdf(x, y, anatomy, right),
        left_lung=_lung_field_sdf(x, y, anatomy, left),
        heart=_heart_sdf(x, y, anatomy),
        body=_body_sdf(x, y, anatomy),
        pixel=pixel,
    )


def _outline_harmonics(p: _Array, q: _Array, harmonics: tuple[tuple[int, float, float], ...]):
    """``1 + sum a_k cos(k theta + phi_k)`` with theta the polar angle of (p, q); cos/sin of
    k*theta come from the angle-addition recursion (much cheaper than arctan2 + cos)."""
    norm = 1.0 / (np.sqrt(p * p + q * q) + 1e-6)
    cos1, sin1 = p * norm, q * norm
    cos_k, sin_k = cos1, sin1
    outline = np.ones_like(p)
    orders = {k: (a, phi) for k, a, phi in harmonics}
    for k in range(2, max(orders) + 1):
        cos_k, sin_k = cos_k * cos1 - sin_k * sin1, sin_k * cos1 + cos_k * sin1
        if k in orders:
            amplitude, phase = orders[k]
            outline += amplitude * math.cos(phase) * cos_k - amplitude * math.sin(phase) * sin_k
    return outline


def _lung_outline_sdf(x: _Array, y: _Array, lung: _Lung) -> _Array:
    u, v = _rotate(x, y, lung.cx, lung.cy, lung.angle)
    u = lung.side * u  # lateral is positive for both lungs
    q = v * (1.0 / lung.half_height)
    # Narrow apex, wide base: the half width grows from apex_width to 1 down the lung.
    taper = lung.apex_width + (1 - lung.apex_width) * np.sqrt(np.clip((q + 1) * 0.5, 0, 1))
    width = lung.half_width * taper
    p = u / width
    e = lung.exponent
    radius = (np.abs(p) ** e + np.abs(q) ** e) ** (1 / e)
    outline = _outline_harmonics(p, q, lung.harmonics)
    # Diaphragm dome: highest near the middle, deepest at the lateral costophrenic angle.
    across = np.clip((u - lung.dome_peak * lung.half_width) * (1.0 / lung.half_width), -1, 1)
    dome_base = 0.92 * lung.half_height - lung.dome_height * (1 - across * across)
    return np.minimum((outline - radius) * width, dome_base - v)


def _mediastinum_half_width(y: _Array, anatomy: _Anatomy, side: int) -> _Array:
    half_width = anatomy.mediastinum + 0.03 * np.clip(y + 0.3, 0, 1)
    if side > 0:  # the aortic knob bulges into the patient's left (image right) upper lung
        half_width = half_width + 0.06 * np.exp(-(((y + 0.42) * (1 / 0.09)) ** 2))
    return half_width


def _lung_field_sdf(x: _Array, y: _Array, anatomy: _Anatomy, lung: _Lung) -> _Array:
    """One lung with the mediastinum clipped off (the heart still included).

    Only the sign and the values near the outline matter, so the shape is evaluated inside a
    generous box around the lung (it never reaches past it) and set to -1 elsewhere: cheaper.
    """
    near = (np.abs(x - lung.cx) < 1.45 * lung.half_width) & (np.abs(y - lung.cy) < 1.3 * lung.half_height)
    xs, ys = x[near], y[near]
    medial = lung.side * (xs - anatomy.spine_x) - _mediastinum_half_width(ys, anatomy, lung.side)
    sdf = np.full_like(x, -1.0)
    sdf[near] = np.minimum(_lung_outline_sdf(xs, ys, lung), medial)
    return sdf


def _heart_sdf(x: _Array, y: _Array, anatomy: _Anatomy) -> _Array:
    cx, cy, rx, ry, angle = anatomy.heart
    u, v = _rotate(x, y, cx, cy, angle)
    return (1 - np.sqrt((u * (1 / rx)) ** 2 + (v * (1 / ry)) ** 2)) * min(rx, ry)


def _lung_mask_sdf(x: _Array, y: _Array, anatomy: _Anatomy) -> _Array:
    """The segmentation target: both lung fields minus the heart shadow."""
    right, left = anatomy.lungs
    lungs = np.maximum(_lung_field_sdf(x, y, anatomy, right), _lung_field_sdf(x, y, anatomy, left))
    return np.minimum(lungs, -_heart_sdf(x, y, anatomy))


def _body_sdf(x: _Array, y: _Array, anatomy: _Anatomy) -> _Array:
    width, centre, half_height = anatomy.body_half_width, 0.25, 1.3
    radius = (np.abs(x * (1 / width)) ** 3 + np.abs((y - centre) * (1 / half_height)) ** 3) ** (1 / 3)
    body = np.maximum((1 - radius) * width, np.minimum(0.24 - np.abs(x - anatomy.spine_x), -y))
    if anatomy.arms is not None:
        for side in (-1, 1):
            u, v = _rotate(x, y, side * (width + anatomy.arms + 0.15), -0.55, side * 0.12)
            body = np.maximum(body, (1 - np.sqrt((u / 0.15) ** 2 + (v / 0.75) ** 2)) * 0.15)
    return body


_EIGHT_CONNECTED = np.ones((3, 3), bool)


def _clean_mask(mask: _Array, x: _Array) -> _Array:
    """Guarantee exactly two 8-connected lungs, one each side of the midline.

    The geometry nearly always gives that already; at tiny sizes a lung can shed a speck
    past the heart or touch the other lung, so keep the largest piece per side and, if needed,
    open a one-pixel gap at the midline.
    """
    image_left = x < 0
    labels, count = ndimage.label(mask, structure=_EIGHT_CONNECTED)
    if count == 2 and _one_label(labels[mask & image_left]) + _one_label(labels[mask & ~image_left]) == 3:
        return mask  # the usual case (ids 1 and 2, one per side): nothing to repair
    right_lung = _largest_component(mask & image_left)
    apart = ~ndimage.binary_dilation(right_lung, structure=_EIGHT_CONNECTED)
    return right_lung | _largest_component(mask & ~image_left & apart)


def _one_label(labels: _Array) -> int:
    """The single component id in ``labels``, or 0 if there are none or several."""
    if labels.size == 0 or labels.min() != labels.max():
        return 0
    return int(labels[0])


def _largest_component(mask: _Array) -> _Array:
    labels, count = ndimage.label(mask, structure=_EIGHT_CONNECTED)
    if count <= 1:
        return mask
    return labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))


# --------------------------------------------------------------------------------------------
# Anatomy layers (attenuation: brighter = denser)
# --------------------------------------------------------------------------------------------


def _anatomy_image(x: _Array, y: _Array, anatomy: _Anatomy, shapes: _Shapes) -> _Array:
    """The noise-free radiograph of the (normal) chest, roughly in [0, 1]."""
    edge = max(0.015, 1.5 * shapes.pixel)
    lungs = shapes.lungs
    lung_soft = _ramp(lungs, edge)
    heart_soft = _ramp(shapes.heart, 0.04)
    body = _ramp(shapes.body, 0.1)
    lung_window = lung_soft * (1 - heart_soft)  # where lung detail is visible
    # The heart is simply where the lungs give way to soft tissue; it merges with the
    # diaphragm below, as on real films.
    image = 0.06 + 0.52 * body
    image -= lung_soft * _air_depth(lungs, y) * (1 - 0.9 * heart_soft)
    image -= _stomach_gas(x, y, anatomy)
    bones = _rib_layer(x, y, anatomy, shapes.pixel) * (0.35 + 0.65 * lung_window)
    bones += _spine_layer(x, y, anatomy) + _clavicle_layer(x, y, anatomy, shapes.pixel)
    image += body * bones
    # Lung detail only matters where the lungs show; evaluating it there alone saves time.
    visible = lung_window > 0
    xs, ys = x[visible], y[visible]
    detail = _vessel_layer(xs, ys, anatomy) + _texture_layer(xs, ys, anatomy)
    detail += _nodule_layer(xs, ys, anatomy, shapes.pixel)
    image[visible] += lung_window[visible] * detail
    return image


def _air_depth(lungs_sdf: _Array, y: _Array) -> _Array:
    # Darkest in the thick central lung; the periphery and the bases (breast and diaphragm
    # overlap) stay brighter.
    depth = np.clip(lungs_sdf * (1 / 0.12), 0, 1)
    base_haze = 0.08 * np.clip((y - 0.1) * 2.0, 0, 1)
    return 0.29 + 0.08 * depth - base_haze


def _stomach_gas(x: _Array, y: _Array, anatomy: _Anatomy) -> _Array:
    left = anatomy.lungs[1]
    bubble = (x - left.cx - 0.05) ** 2 / 0.03 + (y - left.cy - left.half_height - 0.12) ** 2 / 0.01
    return anatomy.stomach_gas * np.clip(1.0 - bubble, 0, 1)


def _band(distance: _Array, half_width: float, edge: float) -> _Array:
    """Bright bone band with slightly brighter cortical margins."""
    inside = np.clip((half_width - distance) * (1 / edge) + 0.5, 0, 1)
    return inside * (0.75 + 0.25 * np.clip(distance * (1 / half_width), 0, 1) ** 2)


def _rib_layer(x: _Array, y: _Array, anatomy: _Anatomy, pixel: float) -> _Array:
    lateral = np.abs(x - anatomy.spine_x)
    image_left = x < anatomy.spine_x
    start = np.where(image_left, *anatomy.rib_start).astype(np.float32)
    curvature = np.where(image_left, *anatomy.rib_curvature).astype(np.float32)
    edge = max(0.015, pixel)
    spacing = anatomy.rib_spacing
    # Posterior ribs leave the spine nearly level, arch laterally and fall at the chest wall.
    along = y + 0.15 * lateral - curvature * lateral * lateral - start
    along = along * (1 - 0.06 * along)  # lower ribs are spaced a little wider
    index = np.round(along * (1 / spacing))
    posterior = _band(np.abs(along - index * spacing), 0.3 * spacing, edge)
    posterior *= (index >= 0) & (index < 10)
    posterior *= np.clip((lateral - 0.06) * 20, 0, 1)
    # Anterior ribs are fainter and slope down towards the sternum, crossing the posterior ones.
    along_ant = y + 0.5 * lateral - start - 0.1
    index_ant = np.round(along_ant * (1 / (1.4 * spacing)))
    anterior = _band(np.abs(along_ant - index_ant * 1.4 * spacing), 0.25 * spacing, 2 * edge)
    anterior *= ((index_ant >= 1) & (index_ant < 7)) * np.clip((lateral - 0.25) * 10, 0, 1)
    cage = _ramp(anatomy.body_half_width - 0.05 - lateral, 0.1)
    return cage * (0.08 * posterior + 0.03 * anterior)


def _clavicle_layer(x: _Array, y: _Array, anatomy: _Anatomy, pixel: float) -> _Array:
    lateral = np.abs(x - anatomy.spine_x)
    centre = anatomy.clavicle_y - 0.2 * lateral + 0.04 * np.sin(lateral * (np.pi / 0.35))
    extent = np.clip((lateral - 0.07) * 25, 0, 1) * np.clip((0.75 - lateral) * 16, 0, 1)
    return 0.2 * extent * _band(np.abs(y - centre), 0.035, max(0.012, pixel))


def _spine_layer(x: _Array, y: _Array, anatomy: _Anatomy) -> _Array:
    column = _ramp(0.075 - np.abs(x - anatomy.spine_x), 0.02)
    vertebrae = 0.8 + 0.2 * np.cos(y * (2 * np.pi / anatomy.rib_spacing))  # dark disc spaces
    return 0.1 * column * vertebrae


def _vessel_layer(x: _Array, y: _Array, anatomy: _Anatomy) -> _Array:
    """Branching bright streaks radiating from both hila (a confounder for opacities)."""
    layer = np.zeros_like(x)
    # Break the rays into branch-like segments of uneven brightness.
    breaks = np.clip(0.5 + 0.6 * _sample_grid(anatomy.texture, x * 0.2 + 0.5, y * 0.2 + 0.3), 0, 1)
    for (hx, hy), modes in zip(anatomy.hila, anatomy.vessel_modes, strict=True):
        dx, dy = x - hx, y - hy
        rho = np.sqrt(dx * dx + dy * dy) + 1e-3
        cos1, sin1 = dx / rho, dy / rho
        field = np.zeros_like(x)
        for order, twist, phase in modes:
            field += _angular_mode(cos1, sin1, order, twist * rho + phase)
        # The angular gradient falls like 1/rho, so scaling the field by rho**1.5 makes the
        # streaks narrow as they run out, like vessels.
        streaks = np.exp(-((field * rho * np.sqrt(rho) * (1 / 0.03)) ** 2))
        fade = np.clip(1 - rho * (1 / 0.6), 0, 1) ** 2
        layer += breaks * streaks * fade + 0.5 * np.exp(-((rho * (1 / 0.07)) ** 2))
    return anatomy.vessel_strength * layer


def _angular_mode(cos1: _Array, sin1: _Array, order: int, phase: _Array) -> _Array:
    """cos(order * phi + phase) from cos(phi), sin(phi) via the angle-addition recursion."""
    cos_k, sin_k = cos1, sin1
    for _ in range(order - 1):
        cos_k, sin_k = cos_k * cos1 - sin_k * sin1, sin_k * cos1 + cos_k * sin1
    return cos_k * np.cos(phase) - sin_k * np.sin(phase)


def _texture_layer(x: _Array, y: _Array, anatomy: _Anatomy) -> _Array:
    texture = _sample_grid(anatomy.texture, (x + 1.5) * (1 / 3.0), (y + 1.5) * (1 / 3.0))
    return anatomy.texture_strength * texture


def _nodule_layer(x: _Array, y: _Array, anatomy: _Anatomy, pixel: float) -> _Array:
    if anatomy.nodule is None:
        return np.zeros_like(x)
    nx, ny, radius = anatomy.nodule
    distance = np.sqrt((x - nx) ** 2 + (y - ny) ** 2)
    return 0.2 * _ramp(radius - distance, max(0.008, pixel))


# --------------------------------------------------------------------------------------------
# Pneumonia opacities
# --------------------------------------------------------------------------------------------


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
    patches: _Array
    fissure: tuple[float, float, float] | None


def _sample_opacities(rng: np.random.Generator, anatomy: _Anatomy) -> list[_Opacity]:
    subtle = rng.random() < 0.25
    count = 1 if subtle else int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
    return [_sample_opacity(rng, anatomy, subtle) for _ in range(count)]


def _sample_opacity(rng: np.random.Generator, anatomy: _Anatomy, subtle: bool) -> _Opacity:
    cx, cy = _sample_point_in_lungs(rng, anatomy)
    radius = _uniform(rng, 0.09, 0.14) if subtle else _uniform(rng, 0.14, 0.28)
    strength = _uniform(rng, 0.12, 0.18) if subtle else _uniform(rng, 0.25, 0.45)
    aspect = _uniform(rng, 0.65, 1.5)
    fissure = None
    if not subtle and rng.random() < 0.3:
        direction = _uniform(rng, 0, 2 * np.pi)
        fissure = (math.cos(direction), math.sin(direction), _uniform(rng, -0.3, 0.5) * radius)
    return _Opacity(
        cx=cx,
        cy=cy,
        rx=radius * math.sqrt(aspect),
        ry=radius / math.sqrt(aspect),
        angle=_uniform(rng, 0, np.pi),
        strength=strength,
        subtle=subtle,
        patches=_smooth_grid(rng, 16, 1.0),
        fissure=fissure,
    )


def _sample_point_in_lungs(rng: np.random.Generator, anatomy: _Anatomy) -> tuple[float, float]:
    """Rejection-sample a point well inside the lung mask (independent of the image size)."""
    lung = anatomy.lungs[int(rng.integers(2))]
    px = lung.cx + rng.uniform(-1, 1, 64) * lung.half_width
    py = lung.cy + rng.uniform(-1, 1, 64) * lung.half_height
    inside = np.flatnonzero(_lung_mask_sdf(px, py, anatomy) > 0.05)
    if inside.size == 0:  # practically never: most of the bounding box is lung
        return lung.cx, lung.cy
    return float(px[inside[0]]), float(py[inside[0]])


_OPACITY_EXTENT = 2.6  # lesion radii beyond which a Gaussian blob is negligible


def _opacity_layer(x: _Array, y: _Array, lesions: list[_Opacity], shapes: _Shapes, mask: _Array) -> _Array:
    """Sum of the opacities, confined to the lung mask (exactly zero outside it)."""
    layer = np.zeros_like(x)
    for lesion in lesions:
        u, v = _rotate(x, y, lesion.cx, lesion.cy, lesion.angle)
        su, sv = u * (1 / lesion.rx), v * (1 / lesion.ry)
        near = (np.abs(su) < _OPACITY_EXTENT) & (np.abs(sv) < _OPACITY_EXTENT)
        layer[near] += lesion.strength * _lesion_density(lesion, su[near], sv[near], x[near], y[near])
    # Fade in over ~2 pixels from the pleura so the blur cannot push much density outside.
    inside = np.clip(shapes.mask_sdf * (1 / (2 * shapes.pixel)), 0, 1) * mask
    return layer * inside


def _lesion_density(lesion: _Opacity, su: _Array, sv: _Array, x: _Array, y: _Array) -> _Array:
    blob = np.exp(-0.5 * (su * su + sv * sv))
    to_grid = 1 / (2 * _OPACITY_EXTENT)
    gu, gv = (su + _OPACITY_EXTENT) * to_grid, (sv + _OPACITY_EXTENT) * to_grid
    # Two octaves of patchiness (acinar clusters inside a lobular cloud), no plateau: the
    # density keeps varying like real airspace disease rather than a flat white disc.
    patches = 0.3 * _sample_grid(lesion.patches, gu, gv)
    patches += 0.15 * _sample_grid(lesion.patches, 2.7 * gu + 0.3, 2.7 * gv + 0.6)
    density = np.clip(blob * (0.85 + patches) - 0.08, 0, None) * (1 / 0.92)
    if lesion.fissure is not None:
        nx, ny, offset = lesion.fissure
        density *= _ramp(nx * (x - lesion.cx) + ny * (y - lesion.cy) - offset, 0.02)
    return density


# --------------------------------------------------------------------------------------------
# Acquisition: pose, site style, border, markers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Acquisition:
    pose: _Pose
    gamma: float
    brightness: float
    border: tuple[float, float, float, float] | None  # top, bottom, left, right fractions
    marker: tuple[str, int, float] | None  # text, corner index, grey level


def _sample_acquisition(rng: np.random.Generator, style: SiteStyle) -> _Acquisition:
    pose = _Pose(
        scale=style.scale * _uniform(rng, 0.95, 1.05),
        shift_x=_uniform(rng, -0.04, 0.04),
        shift_y=style.vertical_offset + _uniform(rng, -0.04, 0.04),
        angle=_uniform(rng, -0.06, 0.06),
    )
    border: tuple[float, float, float, float] | None = None
    if rng.random() < style.border_probability:
        top, bottom, left, right = (float(w) for w in rng.uniform(*style.border_width, 4))
        border = (top, bottom, left, right)
    marker = None
    if style.marker != "none" and rng.random() < style.marker_probability:
        marker = (_marker_text(rng, style.marker), int(rng.integers(4)), _uniform(rng, 0.85, 1.0))
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


def _apply_acquisition(
    radiograph: _Array,
    mask: _Array,
    style: SiteStyle,
    acquisition: _Acquisition,
    rng: np.random.Generator,
) -> _Array:
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


def _draw_border(image: _Array, mask: _Array, widths: tuple[float, float, float, float], value: float) -> int:
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


def _glyph_bitmap(text: str, cell: int) -> _Array:
    """Render ``text`` with the 4x5 glyphs above, one blank column between glyphs."""
    pieces = []
    for char in text:
        pieces.append(np.array([[c == "1" for c in row] for row in _GLYPHS[char]]))
        pieces.append(np.zeros((5, 1), bool))
    return np.kron(np.concatenate(pieces[:-1], axis=1), np.ones((cell, cell), bool))


def _draw_marker(image: _Array, mask: _Array, marker: tuple[str, int, float], margin: int) -> None:
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
