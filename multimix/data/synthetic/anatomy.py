"""Synthetic anatomy: sampled parameters, shapes as signed distances and the attenuation layers
(bone, soft tissue, air, vessels, texture)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from multimix.data.synthetic.geometry import Array, ramp, rotate, sample_grid, smooth_grid, uniform


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
class Anatomy:
    """One patient's sampled anatomy (canonical units)."""

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
    texture: Array
    texture_strength: float
    stomach_gas: float  # strength of the gastric air bubble under the left hemidiaphragm
    nodule: tuple[float, float, float] | None  # x, y, radius of a calcified granuloma


def _sample_lung(rng: np.random.Generator, side: int, size_factor: float) -> _Lung:
    harmonics = tuple((k, uniform(rng, 0, 0.05 / k), uniform(rng, 0, 2 * np.pi)) for k in (2, 3, 4, 5))
    # The right hemidiaphragm (image left) sits higher because of the liver.
    liver_lift = -0.03 if side < 0 else 0.0
    return _Lung(
        side=side,
        cx=side * uniform(rng, 0.45, 0.5),
        cy=uniform(rng, -0.1, -0.04) + liver_lift,
        half_width=size_factor * uniform(rng, 0.37, 0.42),
        half_height=size_factor * uniform(rng, 0.66, 0.74),
        angle=side * uniform(rng, -0.03, 0.06),
        exponent=uniform(rng, 2.2, 2.8),
        apex_width=uniform(rng, 0.3, 0.45),
        harmonics=harmonics,
        dome_height=uniform(rng, 0.1, 0.18),
        dome_peak=uniform(rng, -0.35, -0.05),
    )


def _sample_vessel_modes(rng: np.random.Generator) -> tuple[tuple[int, float, float], ...]:
    # Angular modes around a hilum: their zero sets are curves radiating from it.
    return tuple((int(rng.integers(3, 8)), uniform(rng, -5, 5), uniform(rng, 0, 2 * np.pi)) for _ in range(3))


def _sample_nodule(rng: np.random.Generator) -> tuple[float, float, float] | None:
    if rng.random() >= 0.15:
        return None
    side = 1 if rng.random() < 0.5 else -1
    return side * uniform(rng, 0.3, 0.65), uniform(rng, -0.5, 0.2), uniform(rng, 0.012, 0.022)


def sample_anatomy(rng: np.random.Generator) -> Anatomy:
    """A random patient: body, lungs, heart, ribs, vessels and an optional nodule."""
    size = uniform(rng, 0.93, 1.05)
    right = _sample_lung(rng, -1, size)
    left = _sample_lung(rng, +1, size * uniform(rng, 0.88, 0.96))
    heart = (
        uniform(rng, 0.08, 0.16),
        uniform(rng, 0.3, 0.38),
        uniform(rng, 0.3, 0.4),
        uniform(rng, 0.22, 0.28),
        uniform(rng, -0.45, -0.2),
    )
    hila = (
        (-uniform(rng, 0.18, 0.24), uniform(rng, -0.12, 0.0)),
        (uniform(rng, 0.17, 0.23), uniform(rng, -0.14, -0.02)),
    )
    return Anatomy(
        lungs=(right, left),
        heart=heart,
        body_half_width=uniform(rng, 0.92, 1.0),
        arms=uniform(rng, 0.02, 0.1) if rng.random() < 0.7 else None,
        mediastinum=uniform(rng, 0.08, 0.11),
        spine_x=uniform(rng, -0.02, 0.02),
        rib_spacing=uniform(rng, 0.13, 0.16),
        rib_start=(uniform(rng, -0.92, -0.82), uniform(rng, -0.92, -0.82)),
        rib_curvature=(uniform(rng, 0.45, 0.6), uniform(rng, 0.45, 0.6)),
        clavicle_y=uniform(rng, -0.84, -0.74),
        hila=hila,
        vessel_modes=(_sample_vessel_modes(rng), _sample_vessel_modes(rng)),
        vessel_strength=uniform(rng, 0.05, 0.11),
        texture=smooth_grid(rng, 24, 1.2),
        texture_strength=uniform(rng, 0.01, 0.03),
        stomach_gas=uniform(rng, 0.0, 0.18),
        nodule=_sample_nodule(rng),
    )


@dataclass
class Shapes:
    """Signed distances of the main structures on the pixel grid, computed once per image."""

    right_lung: Array
    left_lung: Array
    heart: Array
    body: Array
    pixel: float  # canonical size of one pixel, to keep edges anti-aliased at every size

    @property
    def lungs(self) -> Array:
        return np.maximum(self.right_lung, self.left_lung)

    @property
    def mask_sdf(self) -> Array:
        return np.minimum(self.lungs, -self.heart)


def shape_fields(x: Array, y: Array, anatomy: Anatomy, pixel: float) -> Shapes:
    """Every anatomical shape of ``anatomy`` as a signed distance on the grid ``x``, ``y``."""
    right, left = anatomy.lungs
    return Shapes(
        right_lung=_lung_field_sdf(x, y, anatomy, right),
        left_lung=_lung_field_sdf(x, y, anatomy, left),
        heart=_heart_sdf(x, y, anatomy),
        body=_body_sdf(x, y, anatomy),
        pixel=pixel,
    )


def _outline_harmonics(p: Array, q: Array, harmonics: tuple[tuple[int, float, float], ...]):
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


def _lung_outline_sdf(x: Array, y: Array, lung: _Lung) -> Array:
    u, v = rotate(x, y, lung.cx, lung.cy, lung.angle)
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


def _mediastinum_half_width(y: Array, anatomy: Anatomy, side: int) -> Array:
    half_width = anatomy.mediastinum + 0.03 * np.clip(y + 0.3, 0, 1)
    if side > 0:  # the aortic knob bulges into the patient's left (image right) upper lung
        half_width = half_width + 0.06 * np.exp(-(((y + 0.42) * (1 / 0.09)) ** 2))
    return half_width


def _lung_field_sdf(x: Array, y: Array, anatomy: Anatomy, lung: _Lung) -> Array:
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


def _heart_sdf(x: Array, y: Array, anatomy: Anatomy) -> Array:
    cx, cy, rx, ry, angle = anatomy.heart
    u, v = rotate(x, y, cx, cy, angle)
    return (1 - np.sqrt((u * (1 / rx)) ** 2 + (v * (1 / ry)) ** 2)) * min(rx, ry)


def lung_mask_sdf(x: Array, y: Array, anatomy: Anatomy) -> Array:
    """The segmentation target: both lung fields minus the heart shadow."""
    right, left = anatomy.lungs
    lungs = np.maximum(_lung_field_sdf(x, y, anatomy, right), _lung_field_sdf(x, y, anatomy, left))
    return np.minimum(lungs, -_heart_sdf(x, y, anatomy))


def _body_sdf(x: Array, y: Array, anatomy: Anatomy) -> Array:
    width, centre, half_height = anatomy.body_half_width, 0.25, 1.3
    radius = (np.abs(x * (1 / width)) ** 3 + np.abs((y - centre) * (1 / half_height)) ** 3) ** (1 / 3)
    body = np.maximum((1 - radius) * width, np.minimum(0.24 - np.abs(x - anatomy.spine_x), -y))
    if anatomy.arms is not None:
        for side in (-1, 1):
            u, v = rotate(x, y, side * (width + anatomy.arms + 0.15), -0.55, side * 0.12)
            body = np.maximum(body, (1 - np.sqrt((u / 0.15) ** 2 + (v / 0.75) ** 2)) * 0.15)
    return body


_EIGHT_CONNECTED = np.ones((3, 3), bool)


def clean_mask(mask: Array, x: Array) -> Array:
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


def _one_label(labels: Array) -> int:
    """The single component id in ``labels``, or 0 if there are none or several."""
    if labels.size == 0 or labels.min() != labels.max():
        return 0
    return int(labels[0])


def _largest_component(mask: Array) -> Array:
    labels, count = ndimage.label(mask, structure=_EIGHT_CONNECTED)
    if count <= 1:
        return mask
    return labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))


def anatomy_image(x: Array, y: Array, anatomy: Anatomy, shapes: Shapes) -> Array:
    """The noise-free radiograph of the (normal) chest, roughly in [0, 1]."""
    edge = max(0.015, 1.5 * shapes.pixel)
    lungs = shapes.lungs
    lung_soft = ramp(lungs, edge)
    heart_soft = ramp(shapes.heart, 0.04)
    body = ramp(shapes.body, 0.1)
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


def _air_depth(lungs_sdf: Array, y: Array) -> Array:
    # Darkest in the thick central lung; the periphery and the bases (breast and diaphragm
    # overlap) stay brighter.
    depth = np.clip(lungs_sdf * (1 / 0.12), 0, 1)
    base_haze = 0.08 * np.clip((y - 0.1) * 2.0, 0, 1)
    return 0.29 + 0.08 * depth - base_haze


def _stomach_gas(x: Array, y: Array, anatomy: Anatomy) -> Array:
    left = anatomy.lungs[1]
    bubble = (x - left.cx - 0.05) ** 2 / 0.03 + (y - left.cy - left.half_height - 0.12) ** 2 / 0.01
    return anatomy.stomach_gas * np.clip(1.0 - bubble, 0, 1)


def _band(distance: Array, half_width: float, edge: float) -> Array:
    """Bright bone band with slightly brighter cortical margins."""
    inside = np.clip((half_width - distance) * (1 / edge) + 0.5, 0, 1)
    return inside * (0.75 + 0.25 * np.clip(distance * (1 / half_width), 0, 1) ** 2)


def _rib_layer(x: Array, y: Array, anatomy: Anatomy, pixel: float) -> Array:
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
    cage = ramp(anatomy.body_half_width - 0.05 - lateral, 0.1)
    return cage * (0.08 * posterior + 0.03 * anterior)


def _clavicle_layer(x: Array, y: Array, anatomy: Anatomy, pixel: float) -> Array:
    lateral = np.abs(x - anatomy.spine_x)
    centre = anatomy.clavicle_y - 0.2 * lateral + 0.04 * np.sin(lateral * (np.pi / 0.35))
    extent = np.clip((lateral - 0.07) * 25, 0, 1) * np.clip((0.75 - lateral) * 16, 0, 1)
    return 0.2 * extent * _band(np.abs(y - centre), 0.035, max(0.012, pixel))


def _spine_layer(x: Array, y: Array, anatomy: Anatomy) -> Array:
    column = ramp(0.075 - np.abs(x - anatomy.spine_x), 0.02)
    vertebrae = 0.8 + 0.2 * np.cos(y * (2 * np.pi / anatomy.rib_spacing))  # dark disc spaces
    return 0.1 * column * vertebrae


def _vessel_layer(x: Array, y: Array, anatomy: Anatomy) -> Array:
    """Branching bright streaks radiating from both hila (a confounder for opacities)."""
    layer = np.zeros_like(x)
    # Break the rays into branch-like segments of uneven brightness.
    breaks = np.clip(0.5 + 0.6 * sample_grid(anatomy.texture, x * 0.2 + 0.5, y * 0.2 + 0.3), 0, 1)
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


def _angular_mode(cos1: Array, sin1: Array, order: int, phase: Array) -> Array:
    """cos(order * phi + phase) from cos(phi), sin(phi) via the angle-addition recursion."""
    cos_k, sin_k = cos1, sin1
    for _ in range(order - 1):
        cos_k, sin_k = cos_k * cos1 - sin_k * sin1, sin_k * cos1 + cos_k * sin1
    return cos_k * np.cos(phase) - sin_k * np.sin(phase)


def _texture_layer(x: Array, y: Array, anatomy: Anatomy) -> Array:
    texture = sample_grid(anatomy.texture, (x + 1.5) * (1 / 3.0), (y + 1.5) * (1 / 3.0))
    return anatomy.texture_strength * texture


def _nodule_layer(x: Array, y: Array, anatomy: Anatomy, pixel: float) -> Array:
    if anatomy.nodule is None:
        return np.zeros_like(x)
    nx, ny, radius = anatomy.nodule
    distance = np.sqrt((x - nx) ** 2 + (y - ny) ** 2)
    return 0.2 * ramp(radius - distance, max(0.008, pixel))
