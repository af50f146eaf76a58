"""The public generator of synthetic chest X-rays and its per-image seeding."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from multimix.data.records import NORMAL, PNEUMONIA, Record
from multimix.data.synthetic.acquisition import apply_acquisition, sample_acquisition
from multimix.data.synthetic.anatomy import anatomy_image, clean_mask, sample_anatomy, shape_fields
from multimix.data.synthetic.geometry import Array, canonical_grid
from multimix.data.synthetic.opacities import opacity_layer, sample_opacities
from multimix.data.synthetic.styles import SITES


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


@dataclass
class _Case:
    """One rendered case; ``opacity`` is the pathology layer before site styling."""

    image: Array
    mask: Array
    label: int
    opacity: Array
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


def _label_order(n: int, site: str, seed: int, pneumonia_fraction: float) -> Array:
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
    anatomy = sample_anatomy(anatomy_rng)
    acquisition = sample_acquisition(acquisition_rng, style)
    x, y = canonical_grid(size, acquisition.pose)
    shapes = shape_fields(x, y, anatomy, pixel=2.0 / (size * acquisition.pose.scale))
    mask = clean_mask(shapes.mask_sdf > 0, x)
    radiograph = anatomy_image(x, y, anatomy, shapes)
    lesions = sample_opacities(pathology_rng, anatomy) if label == PNEUMONIA else []
    opacity = opacity_layer(x, y, lesions, shapes, mask)
    image = apply_acquisition(radiograph + opacity, mask, style, acquisition, acquisition_rng)
    subtle = bool(lesions) and all(lesion.subtle for lesion in lesions)
    return _Case(image, mask.astype(np.uint8), label, opacity, len(lesions), subtle)
