"""Image/mask augmentation pipelines (albumentations 2.x) for chest X-rays.

Three kinds of pipeline, all returning ``(image (1, S, S) float32 in [0, 1], mask (1, S, S)
float32 in {0, 1} or None)``:

* ``eval``   -- resize, then the intensity standardisation; deterministic.
* ``weak``   -- resize, a small affine jitter and (optionally) a horizontal flip: the FixMatch
  weak view.
* ``strong`` -- the weak view, then ``num_ops`` operations drawn from a RandAugment-style pool
  (see :data:`STRONG_OPS`) with random magnitudes, then one cutout hole: the FixMatch strong view.

Two options shared by every pipeline, so training, evaluation and prediction see the same images:

* ``intensity`` (:data:`INTENSITY_MODES`) standardises each image on its own statistics, so
  scanners with other exposure curves look alike: ``clahe`` (the percentile window below, then
  contrast-limited adaptive histogram equalisation), ``equalize`` (global histogram equalisation),
  ``window`` (the 1st-99th
  percentile stretched to [0, 1]) or ``none``.
* ``acquisition=True`` (weak and strong builders) widens the augmentation to span acquisition
  differences between hospitals: a larger affine (scale 0.8-1.2, shift 10 %, rotation 10
  degrees), elastic deformation, gamma, contrast, blur or sharpening, and noise.

Order: resize, geometry, acquisition intensities, standardisation, then (strong view) the
RandAugment pool and cutout. The standardisation comes after the acquisition ops because it
is what a new hospital's image goes through at test time; the FixMatch perturbations come
after it, or it would undo them.

Image and mask always go through the same geometric operations (one albumentations call), masks
are resampled with nearest-neighbour interpolation and re-binarised, and intensity operations and
cutout touch the image only, so the mask stays a valid target for the transformed image.

Intensity ops and dtypes
    The pipelines run on float32 images. In albumentations 2.0.8 ``Equalize``, ``Posterize`` and
    ``AutoContrast`` are histogram/bit operations defined on uint8; the library converts float32
    input to uint8 and back internally (its ``uint8_io`` wrapper), so those three ops quantise the
    image to 256 levels when they are drawn. No conversion is needed on our side.

Seeding
    Each :class:`XrayTransform` owns one numpy and one python random generator shared by all its
    albumentations ops. ``seed=None`` seeds them from OS entropy (not reproducible); an integer
    ``seed`` makes the sequence of augmentations reproducible. The pipeline kind is mixed into
    the seed, so a weak and a strong transform built with the same seed are still independent;
    two transforms of the same kind and seed produce identical augmentations.

    Inside a ``torch.utils.data.DataLoader`` worker the generators are re-seeded on first use from
    ``(seed, kind, worker_info.seed)``. ``worker_info.seed`` differs between workers and between
    epochs (unless ``persistent_workers``) and derives from torch's RNG, so with an integer
    ``seed`` plus ``torch.manual_seed`` (or a DataLoader ``generator``) augmentations are
    reproducible and differ across workers. Without this, every worker would start from a copy of
    the same generator state and produce the same augmentations. No ``worker_init_fn`` is needed.
"""

from __future__ import annotations

import os
import random
import secrets
import zlib
from collections.abc import Sequence

import albumentations as A
import cv2
import numpy as np
import torch

from multimix.data.pixels import percentile_window

__all__ = [
    "INTENSITY_MODES",
    "KINDS",
    "STRONG_OPS",
    "XrayTransform",
    "build_transform",
    "contrastive_transform",
    "eval_transform",
    "strong_transform",
    "weak_transform",
]

KINDS = ("eval", "weak", "strong", "contrastive")

# Weak-view jitter: small enough that the lung field stays in frame.
WEAK_TRANSLATE = 0.0625
WEAK_SCALE = (0.95, 1.05)
WEAK_ROTATE = 5.0

# Acquisition augmentation (``acquisition=True``): children fill less of the frame than adults,
# and hospitals differ in exposure, processing and sharpness.
WIDE_TRANSLATE = 0.1
WIDE_SCALE = (0.8, 1.2)
WIDE_ROTATE = 10.0

# Zoom-out of labeled lung masks (``zoom_out``): how often a view is shrunk onto a black frame.
ZOOM_OUT_P = 0.5

INTENSITY_MODES = ("none", "clahe", "equalize", "window")
CLAHE_CLIP = 2.0
CLAHE_TILES = (8, 8)
WINDOW_PERCENTILES = (1.0, 99.0)

# Cutout: one hole whose sides are 1/4 to 1/2 of the image side, filled with mid-grey (the
# FixMatch codebase fills with grey too, so the hole is neither "black background" nor "bone").
CUTOUT_SIDE = (0.25, 0.5)
CUTOUT_FILL = 0.5


def _strong_pool() -> dict[str, A.BasicTransform]:
    """The RandAugment-style op pool; each op runs with p=1 when drawn, magnitude is random."""
    geo = {"border_mode": cv2.BORDER_CONSTANT, "fill": 0, "fill_mask": 0, "p": 1.0}
    return {
        "rotate": A.Affine(rotate=(-30, 30), **geo),
        "shear": A.Affine(shear={"x": (-15, 15), "y": (-15, 15)}, **geo),
        "translate": A.Affine(translate_percent={"x": (-0.2, 0.2), "y": (-0.2, 0.2)}, **geo),
        "brightness_contrast": A.RandomBrightnessContrast(brightness_limit=0.3, contrast_limit=0.3, p=1.0),
        "equalize": A.Equalize(p=1.0),
        "posterize": A.Posterize(num_bits=(4, 8), p=1.0),
        # Threshold >= 0.5 so at most the bright half of the intensity range is inverted.
        "solarize": A.Solarize(threshold_range=(0.5, 1.0), p=1.0),
        "sharpen": A.Sharpen(alpha=(0.1, 0.7), lightness=(1.0, 1.0), p=1.0),
        "autocontrast": A.AutoContrast(p=1.0),
        "identity": A.NoOp(p=1.0),
    }


#: Names of the ops :func:`strong_transform` can draw from (pass a subset as ``ops=``).
STRONG_OPS: tuple[str, ...] = tuple(_strong_pool())
#: Pool ops that move pixels (and therefore the mask); the rest change intensities only.
GEOMETRIC_OPS: tuple[str, ...] = ("rotate", "shear", "translate")


def _derive_seed(*entropy: int) -> tuple[int, int]:
    """Two well-mixed 32-bit seeds (numpy, python) from any list of non-negative ints."""
    state = np.random.SeedSequence(list(entropy)).generate_state(2)
    return int(state[0]), int(state[1])


class XrayTransform:
    """Callable wrapper around an albumentations ``Compose`` for grayscale X-rays (+ lung mask).

    Args:
        transforms: albumentations ops, applied in order to image and mask jointly.
        kind: pipeline name, used in ``repr`` and mixed into the seed.
        seed: ``None`` for OS entropy, or an int for a reproducible sequence (see module doc).

    Call with ``image`` float (H, W) in [0, 1] and optional ``mask`` (H, W) (nonzero = lung, same
    shape as the image); returns ``(image (1, S, S) float32, mask (1, S, S) float32 or None)``.
    Picklable, so it can be used by DataLoader workers started with ``spawn``.
    """

    def __init__(
        self,
        transforms: Sequence[A.BasicTransform],
        *,
        kind: str = "custom",
        seed: int | None = None,
    ) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be None or a non-negative int, got {seed!r}")
        self.kind = kind
        self.seed = seed
        # A per-instance random salt keeps seed=None transforms independent in workers too.
        self._salt = secrets.randbits(63) if seed is None else int(seed)
        self.compose = A.Compose(list(transforms), mask_interpolation=cv2.INTER_NEAREST)
        self._worker_key: tuple[int, int, int] | None = None
        self._reseed(None if seed is None else (int(seed), self._kind_code()))

    def _kind_code(self) -> int:
        return zlib.crc32(self.kind.encode())

    def _reseed(self, entropy: tuple[int, ...] | None) -> None:
        # albumentations' own Compose(seed=...) gives every op a generator seeded with the same
        # value, which correlates their draws; one shared pair of generators avoids that.
        np_seed, py_seed = (None, None) if entropy is None else _derive_seed(*entropy)
        self.compose.set_random_state(np.random.default_rng(np_seed), random.Random(py_seed))

    def reseed(self, seed: int) -> None:
        """Restart the augmentation sequence from ``seed``.

        The training streams call this once per step, so a step's views depend only on the
        run seed and the step index (exact resume, worker-count independent).
        """
        self._reseed((int(seed), self._kind_code()))
        info = torch.utils.data.get_worker_info()
        if info is not None:  # an explicit seed wins over the per-worker automatic one
            self._worker_key = (os.getpid(), info.id, info.seed)

    def _reseed_if_new_worker(self) -> None:
        info = torch.utils.data.get_worker_info()
        if info is None:
            return
        key = (os.getpid(), info.id, info.seed)
        if key != self._worker_key:
            self._worker_key = key
            self._reseed((self._salt, self._kind_code(), info.seed % 2**63))

    def __call__(self, image: np.ndarray, mask: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Transform ``image`` (and ``mask`` with the same geometry); see the class doc."""
        image, mask = _check_inputs(image, mask)
        self._reseed_if_new_worker()
        data = {"image": image} if mask is None else {"image": image, "mask": mask}
        out = self.compose(**data)
        return _image_tensor(out["image"]), None if mask is None else _mask_tensor(out["mask"])

    def __repr__(self) -> str:
        return f"XrayTransform(kind={self.kind!r}, seed={self.seed!r}, compose={self.compose!r})"


def _check_inputs(image: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate shapes/dtypes and normalise to float32 image / uint8 {0,1} mask."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D (H, W) grayscale, got shape {image.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"image must be a float array in [0, 1], got dtype {image.dtype}")
    image = np.ascontiguousarray(image, dtype=np.float32)
    if mask is None:
        return image, None
    mask = np.asarray(mask)
    if mask.shape != image.shape:
        # Silently resizing one to the other would hide misaligned data; loaders must fix it.
        raise ValueError(
            f"mask shape {mask.shape} differs from image shape {image.shape}; image and mask must have the same (H, W)"
        )
    return image, np.ascontiguousarray(mask > 0, dtype=np.uint8)


def _image_tensor(image: np.ndarray) -> torch.Tensor:
    # Clip and scrub NaN: some intensity ops can step slightly outside [0, 1].
    image = np.clip(np.nan_to_num(image, nan=0.0), 0.0, 1.0).astype(np.float32, copy=False)
    return torch.from_numpy(np.ascontiguousarray(image))[None]


def _mask_tensor(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(mask > 0, dtype=np.float32))[None]


def _check_size(image_size: int) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    return image_size


def _resize(image_size: int) -> A.Resize:
    return A.Resize(
        _check_size(image_size),
        image_size,
        interpolation=cv2.INTER_AREA,
        mask_interpolation=cv2.INTER_NEAREST,
    )


class PercentileWindow(A.ImageOnlyTransform):
    """Stretch the image's ``low``-``high`` percentile range linearly to [0, 1], clipping the tails."""

    def __init__(self, low: float = WINDOW_PERCENTILES[0], high: float = WINDOW_PERCENTILES[1], p: float = 1.0) -> None:
        super().__init__(p=p)
        self.low, self.high = low, high

    def apply(self, img: np.ndarray, **params) -> np.ndarray:
        return percentile_window(img, (self.low, self.high))

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("low", "high")


def intensity_ops(mode: str) -> list[A.BasicTransform]:
    """The per-image standardisation ``mode`` (one of :data:`INTENSITY_MODES`) as albumentations ops."""
    if mode not in INTENSITY_MODES:
        raise ValueError(f"unknown intensity standardisation {mode!r}; expected one of {INTENSITY_MODES}")
    if mode == "clahe":
        # CLAHE limits how far it stretches a tile, so a washed-out image gets its range first
        return [PercentileWindow(), A.CLAHE(clip_limit=(CLAHE_CLIP, CLAHE_CLIP), tile_grid_size=CLAHE_TILES, p=1.0)]
    if mode == "equalize":
        return [A.Equalize(p=1.0)]
    if mode == "window":
        return [PercentileWindow()]
    return []


def _affine(translate: float, scale: tuple[float, float], rotate: float) -> A.Affine:
    return A.Affine(
        translate_percent={"x": (-translate, translate), "y": (-translate, translate)},
        scale=scale,
        keep_ratio=True,
        rotate=(-rotate, rotate),
        border_mode=cv2.BORDER_CONSTANT,
        fill=0,
        fill_mask=0,
        p=1.0,
    )


def _acquisition_intensity_ops() -> list[A.BasicTransform]:
    """Exposure, processing, sharpness and noise as they differ between hospitals (image only)."""
    return [
        A.RandomGamma(gamma_limit=(60, 167), p=0.5),
        A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.3, p=0.5),
        A.OneOf(
            [A.GaussianBlur(sigma_limit=(0.3, 1.2), p=1.0), A.Sharpen(alpha=(0.1, 0.4), lightness=(1.0, 1.0), p=1.0)],
            p=0.3,
        ),
        A.GaussNoise(std_range=(0.005, 0.04), p=0.3),
    ]


def _zoom_out(zoom_out: float) -> A.Affine:
    """Shrink the image (and mask) onto a black frame, half the time: the width by a factor in
    ``[1 - zoom_out, 1]``, the height by one in ``[1 - zoom_out / 2, 1]``, shifted by up to half the
    frame that leaves."""
    return A.Affine(
        # narrower than tall, as a child's chest is in a frame made for adults
        scale={"x": (1.0 - zoom_out, 1.0), "y": (1.0 - zoom_out / 2, 1.0)},
        translate_percent={"x": (-zoom_out / 2, zoom_out / 2), "y": (-zoom_out / 4, zoom_out / 4)},
        keep_ratio=False,
        border_mode=cv2.BORDER_CONSTANT,
        fill=0,
        fill_mask=0,
        p=ZOOM_OUT_P,
    )


def _weak_ops(
    image_size: int, hflip: bool, *, intensity: str = "none", acquisition: bool = False, zoom_out: float = 0.0
) -> list[A.BasicTransform]:
    ops: list[A.BasicTransform] = [_resize(image_size)]
    if zoom_out > 0:
        ops.append(_zoom_out(zoom_out))
    if acquisition:
        ops += [
            _affine(WIDE_TRANSLATE, WIDE_SCALE, WIDE_ROTATE),
            A.ElasticTransform(alpha=image_size / 4, sigma=image_size / 16, border_mode=cv2.BORDER_CONSTANT, p=0.25),
        ]
    else:
        ops.append(_affine(WEAK_TRANSLATE, WEAK_SCALE, WEAK_ROTATE))
    if hflip:
        ops.append(A.HorizontalFlip(p=0.5))
    if acquisition:
        ops += _acquisition_intensity_ops()
    return ops + intensity_ops(intensity)


def eval_transform(image_size: int, *, intensity: str = "none", seed: int | None = None) -> XrayTransform:
    """Resize to ``image_size`` x ``image_size`` (area for the image, nearest for the mask), then
    standardise intensities (``intensity``, see the module doc).

    Deterministic; ``seed`` is accepted only so all builders share a signature.
    """
    return XrayTransform([_resize(image_size), *intensity_ops(intensity)], kind="eval", seed=seed)


def weak_transform(
    image_size: int,
    *,
    hflip: bool = True,
    intensity: str = "none",
    acquisition: bool = False,
    zoom_out: float = 0.0,
    seed: int | None = None,
) -> XrayTransform:
    """FixMatch weak view: resize, small affine, optional horizontal flip, standardisation.

    The affine always runs with translation up to 6.25 % of the side, scale 0.95-1.05 and
    rotation up to 5 degrees; borders are filled with 0. ``hflip`` adds a flip with p=0.5, as in
    the FixMatch codebase. Chest X-rays are not left-right symmetric (heart on the left), so set
    ``hflip=False`` if the model should learn laterality-dependent features. ``acquisition``
    widens the affine and adds the acquisition ops (module doc); the kind is then ``"labeled"``,
    the view of labeled images, so its draws are independent of the weak view's. ``zoom_out`` in
    (0, 1) shrinks half of the views onto a black frame, the width by a factor in ``[1 - zoom_out,
    1]`` and the height by half as much at most (kind ``"zoomed"``): an adult chest that fills the
    frame then also looks like a small child's body inside a large dark one.
    """
    if not 0.0 <= zoom_out < 1.0:
        raise ValueError(f"zoom_out must be in [0, 1), got {zoom_out!r}")
    ops = _weak_ops(image_size, hflip, intensity=intensity, acquisition=acquisition, zoom_out=zoom_out)
    kind = "zoomed" if zoom_out > 0 else "labeled" if acquisition else "weak"
    return XrayTransform(ops, kind=kind, seed=seed)


def strong_transform(
    image_size: int,
    num_ops: int = 2,
    cutout: bool = True,
    *,
    hflip: bool = True,
    ops: Sequence[str] | None = None,
    cutout_fill: float = CUTOUT_FILL,
    intensity: str = "none",
    acquisition: bool = False,
    seed: int | None = None,
) -> XrayTransform:
    """FixMatch strong view: the weak view, ``num_ops`` RandAugment-style ops, then cutout.

    Args:
        image_size: output side in pixels.
        num_ops: how many distinct ops to draw (uniformly, without replacement) per call from
            ``ops``; 0 disables the pool.
        cutout: add one CoarseDropout hole with sides 1/4-1/2 of the image, filled with
            ``cutout_fill``. Only the image is cut; the mask is left intact.
        hflip: horizontal flip in the weak part (see :func:`weak_transform`).
        ops: subset of :data:`STRONG_OPS` to draw from (default all). Geometric ops
            (:data:`GEOMETRIC_OPS`) move image and mask together; the others change image
            intensities only.
        cutout_fill: constant in [0, 1] written into the hole.
        intensity, acquisition: see the module doc.
        seed: see the module doc.
    """
    pool = _select_ops(ops)
    if isinstance(num_ops, bool) or not isinstance(num_ops, int) or not 0 <= num_ops <= len(pool):
        raise ValueError(f"num_ops must be an int in [0, {len(pool)}], got {num_ops!r}")
    if not 0.0 <= cutout_fill <= 1.0:
        raise ValueError(f"cutout_fill must be in [0, 1], got {cutout_fill!r}")
    steps = _weak_ops(image_size, hflip, intensity=intensity, acquisition=acquisition)
    if num_ops:
        steps.append(A.SomeOf(pool, n=num_ops, replace=False, p=1.0))
    if cutout:
        steps.append(
            A.CoarseDropout(
                num_holes_range=(1, 1),
                hole_height_range=CUTOUT_SIDE,
                hole_width_range=CUTOUT_SIDE,
                fill=float(cutout_fill),
                fill_mask=None,  # keep the mask: the lung is still there behind the hole
                p=1.0,
            )
        )
    return XrayTransform(steps, kind="strong", seed=seed)


def _select_ops(ops: Sequence[str] | None) -> list[A.BasicTransform]:
    available = _strong_pool()
    names = STRONG_OPS if ops is None else tuple(ops)
    unknown = [n for n in names if n not in available]
    if unknown or not names:
        raise ValueError(f"unknown or empty strong ops {list(names)!r}; choose from {STRONG_OPS}")
    return [available[n] for n in dict.fromkeys(names)]


# contrastive views (SimCLR / Barlow Twins): crops keep at least half the image, because the
# ImageNet default of 8% often cuts the lungs out of a chest X-ray and hurt in published studies
CONTRASTIVE_CROP_SCALE = (0.5, 1.0)


def contrastive_transform(
    image_size: int,
    *,
    crop_scale: tuple[float, float] = CONTRASTIVE_CROP_SCALE,
    intensity: str = "none",
    seed: int | None = None,
) -> XrayTransform:
    """One view for contrastive pretraining; call it twice on an image for a positive pair.

    Random resized crop (area ``crop_scale``, aspect 3/4-4/3), horizontal flip, rotation up to
    10 degrees, brightness/contrast jitter, Gaussian blur, Gaussian noise and (sometimes)
    histogram equalisation.
    """
    low, high = crop_scale
    if not 0 < low <= high <= 1:
        raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {crop_scale}")
    size = _check_size(image_size)
    ops = [
        A.RandomResizedCrop(size=(size, size), scale=(low, high), ratio=(3 / 4, 4 / 3), interpolation=cv2.INTER_AREA),
        A.HorizontalFlip(p=0.5),
        A.Affine(rotate=(-10, 10), border_mode=cv2.BORDER_CONSTANT, fill=0, p=0.5),
        A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.8),
        A.GaussianBlur(sigma_limit=(0.1, 1.5), p=0.5),
        A.GaussNoise(std_range=(0.01, 0.05), p=0.5),
        A.Equalize(p=0.2),
        *intensity_ops(intensity),
    ]
    return XrayTransform(ops, kind="contrastive", seed=seed)


_BUILDERS = {
    "eval": eval_transform,
    "weak": weak_transform,
    "strong": strong_transform,
    "contrastive": contrastive_transform,
}


def build_transform(kind: str, image_size: int, **kw) -> XrayTransform:
    """Build a pipeline by name: ``kind`` in :data:`KINDS`; ``kw`` go to the matching builder."""
    try:
        builder = _BUILDERS[kind]
    except (KeyError, TypeError):
        raise ValueError(f"unknown transform kind {kind!r}; expected one of {KINDS}") from None
    return builder(image_size, **kw)
