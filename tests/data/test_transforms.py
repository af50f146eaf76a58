"""Tests for multimix.data.transforms (small images, fast)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from multimix.data.transforms import (
    GEOMETRIC_OPS,
    INTENSITY_MODES,
    KINDS,
    STRONG_OPS,
    XrayTransform,
    build_transform,
    eval_transform,
    strong_transform,
    weak_transform,
)

S = 32


def _image(size: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((size, size), dtype=np.float32)


def _asymmetric_mask(size: int = 32) -> np.ndarray:
    """A blob in the upper-left: any flip/rotation/shift mismatch shows up as low IoU."""
    mask = np.zeros((size, size), np.uint8)
    mask[size // 8 : size // 2 + 2, size // 6 : size // 2] = 1
    mask[size // 2 : size // 2 + 4, size // 6 : size // 6 + 4] = 1
    return mask


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.bool(), b.bool()
    union = (a | b).sum().item()
    return 1.0 if union == 0 else (a & b).sum().item() / union


@pytest.mark.parametrize("kind", KINDS)
def test_output_shapes_dtypes_range(kind: str) -> None:
    t = build_transform(kind, S, seed=0)
    mask = (_image() > 0.5).astype(np.uint8)
    for _ in range(20):
        image, out_mask = t(_image(), mask)
        assert image.shape == (1, S, S) and image.dtype == torch.float32
        assert out_mask is not None
        assert out_mask.shape == (1, S, S) and out_mask.dtype == torch.float32
        assert torch.isfinite(image).all()
        assert image.min() >= 0.0 and image.max() <= 1.0
        assert set(out_mask.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("kind", KINDS)
def test_without_mask(kind: str) -> None:
    image, mask = build_transform(kind, S, seed=1)(_image())
    assert mask is None and image.shape == (1, S, S)


def test_float64_input_and_0_255_mask_are_normalised() -> None:
    mask = _asymmetric_mask(S) * 255
    image, out = eval_transform(S)(_image(S).astype(np.float64), mask)
    assert image.dtype == torch.float32
    assert torch.equal(out[0], torch.from_numpy(mask > 0).float())


def test_eval_is_deterministic_and_resizes() -> None:
    t = eval_transform(S)
    a, ma = t(_image(), np.ones((64, 64), np.uint8))
    b, mb = t(_image(), np.ones((64, 64), np.uint8))
    assert torch.equal(a, b) and torch.equal(ma, mb)
    assert eval_transform(S)(_image(S))[0].squeeze(0).numpy() == pytest.approx(_image(S))


@pytest.mark.parametrize("factory", [weak_transform, strong_transform])
def test_random_views_vary_across_calls(factory) -> None:
    t = factory(S, seed=0)
    outs = {t(_image())[0].numpy().tobytes() for _ in range(6)}
    assert len(outs) > 1


def test_weak_keeps_mask_aligned() -> None:
    mask = _asymmetric_mask(S)
    t = weak_transform(S, seed=0)
    for _ in range(25):
        image, out = t(mask.astype(np.float32), mask)
        assert _iou(image > 0.5, out) > 0.85


def test_strong_geometric_ops_keep_mask_aligned() -> None:
    # Intensity ops and cutout are off so the image remains a picture of the mask.
    mask = _asymmetric_mask(S)
    t = strong_transform(S, num_ops=2, cutout=False, ops=GEOMETRIC_OPS, seed=0)
    for _ in range(25):
        image, out = t(mask.astype(np.float32), mask)
        assert _iou(image > 0.5, out) > 0.8


def _top_k(image: torch.Tensor, k: int) -> torch.Tensor:
    """The k brightest pixels: invariant to any monotone intensity remapping of the image."""
    return image >= image.flatten().sort(descending=True).values[max(k, 1) - 1]


@pytest.mark.parametrize("op", [op for op in STRONG_OPS if op != "solarize"])
def test_each_strong_op_keeps_mask_aligned(op: str) -> None:
    # An image that is a picture of the mask: after any single pool op (plus the weak part) the
    # brightest "mask area" pixels must sit where the transformed mask is. Solarize is left out
    # because it inverts the bright level; it is pointwise, so it cannot move pixels either.
    mask = _asymmetric_mask(S)
    t = strong_transform(S, num_ops=1, cutout=False, ops=(op,), seed=0)
    for _ in range(15):
        image, out = t(mask.astype(np.float32), mask)
        assert _iou(_top_k(image, int(out.sum().item())), out) > 0.8


def test_strong_full_pipeline_moves_binary_mask() -> None:
    mask = _asymmetric_mask(S)
    t = strong_transform(S, seed=0)
    moved = 0
    for _ in range(25):
        _, out = t(_image(S), mask)
        assert set(out.unique().tolist()) <= {0.0, 1.0}
        moved += not torch.equal(out[0], torch.from_numpy(mask).float())
    assert moved > 0  # the mask follows the random geometry, it is not passed through


def test_strong_cutout_leaves_mask_intact() -> None:
    mask = np.ones((S, S), np.uint8)
    t = strong_transform(S, num_ops=0, cutout=True, hflip=False, cutout_fill=0.5, seed=0)
    image, out = t(np.ones((S, S), np.float32), mask)
    hole = image == 0.5
    assert hole.sum() >= (S // 4) ** 2  # a hole of at least a quarter side was cut
    # Under the hole the mask is still lung (only the affine's zero-filled border can be 0).
    assert out[hole].mean() > 0.8


def test_hflip_disabled_never_flips() -> None:
    mask = _asymmetric_mask(S)
    t = weak_transform(S, hflip=False, seed=0)
    for _ in range(20):
        _, out = t(mask.astype(np.float32), mask)
        left, right = out[0, :, : S // 2].sum(), out[0, :, S // 2 :].sum()
        assert left > right


def test_hflip_enabled_flips_sometimes() -> None:
    mask = _asymmetric_mask(S)
    t = weak_transform(S, hflip=True, seed=0)
    sides = set()
    for _ in range(20):
        _, out = t(mask.astype(np.float32), mask)
        sides.add(bool(out[0, :, : S // 2].sum() > out[0, :, S // 2 :].sum()))
    assert sides == {True, False}


def test_mask_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match=r"\(32, 32\).*\(64, 64\)"):
        weak_transform(S)(_image(64), np.zeros((32, 32), np.uint8))


@pytest.mark.parametrize(
    "bad, exc",
    [(np.zeros((8, 8, 3), np.float32), ValueError), (np.zeros((8, 8), np.uint8), TypeError)],
)
def test_bad_image_raises(bad: np.ndarray, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        eval_transform(S)(bad)


def test_seed_reproducible_and_kinds_independent() -> None:
    a, b = strong_transform(S, seed=3), strong_transform(S, seed=3)
    assert all(torch.equal(a(_image())[0], b(_image())[0]) for _ in range(5))
    # Same seed, different kind: weak and strong views must not share their random draws.
    weak = weak_transform(S, seed=3)
    strong_geo = strong_transform(S, num_ops=0, cutout=False, seed=3)
    assert not all(torch.equal(weak(_image())[0], strong_geo(_image())[0]) for _ in range(5))


def test_pickle_round_trip_preserves_state() -> None:
    t = strong_transform(S, seed=5)
    t(_image())
    clone = pickle.loads(pickle.dumps(t))
    assert isinstance(clone, XrayTransform)
    for _ in range(5):
        assert torch.equal(t(_image())[0], clone(_image())[0])


class _Views(torch.utils.data.Dataset):
    def __init__(self, transform: XrayTransform) -> None:
        self.transform = transform

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(_image(S))[0]


def test_dataloader_workers_get_different_reproducible_streams() -> None:
    loader = torch.utils.data.DataLoader(_Views(weak_transform(S, seed=0)), batch_size=1, num_workers=2)
    torch.manual_seed(0)
    first = [b[0] for b in loader]
    torch.manual_seed(0)
    second = [b[0] for b in loader]
    # Items 0 and 1 are produced by different workers: without reseeding they would be equal.
    assert len({x.numpy().tobytes() for x in first}) == len(first)
    assert all(torch.equal(x, y) for x, y in zip(first, second, strict=True))


def test_builder_errors() -> None:
    with pytest.raises(ValueError, match="eval.*weak.*strong"):
        build_transform("medium", S)
    with pytest.raises(ValueError, match="num_ops"):
        strong_transform(S, num_ops=len(STRONG_OPS) + 1)
    with pytest.raises(ValueError, match="unknown"):
        strong_transform(S, ops=("rotate", "warp"))
    with pytest.raises(ValueError, match="image_size"):
        eval_transform(0)


def test_contrastive_views_differ_keep_the_size_and_are_seeded():
    from multimix.data.synthetic import generate_arrays
    from multimix.data.transforms import build_transform, contrastive_transform

    image = generate_arrays(1, image_size=64, seed=0)[0][0]
    transform = contrastive_transform(32, seed=0)
    first, second = transform(image)[0], transform(image)[0]
    assert first.shape == second.shape == (1, 32, 32) and 0 <= first.min() and first.max() <= 1
    assert not torch.equal(first, second)  # two draws, two views
    again = build_transform("contrastive", 32, seed=0)
    assert torch.equal(again(image)[0], first)
    with pytest.raises(ValueError, match="crop_scale"):
        contrastive_transform(32, crop_scale=(0.0, 1.0))


# --------------------------------------------------------------------------- intensity and acquisition


def _dim_gradient(size: int = S) -> np.ndarray:
    """A low-contrast image: values squeezed into [0.4, 0.5], as a washed-out acquisition."""
    return (0.4 + 0.1 * np.linspace(0, 1, size * size, dtype=np.float32).reshape(size, size)).astype(np.float32)


@pytest.mark.parametrize("mode", INTENSITY_MODES)
def test_intensity_standardisation_is_deterministic_and_the_same_in_every_view(mode: str) -> None:
    image = _dim_gradient()
    first, _ = eval_transform(S, intensity=mode)(image)
    second, _ = eval_transform(S, intensity=mode, seed=3)(image)
    assert torch.equal(first, second)
    if mode == "none":
        assert first.max() - first.min() < 0.11
    else:  # the squeezed range is stretched over (almost) all of [0, 1]
        assert first.max() - first.min() > 0.8
    if mode == "window":
        low, high = np.percentile(image, (1, 99))
        expected = np.clip((image - low) / (high - low), 0, 1)
        assert np.allclose(first[0].numpy(), expected, atol=1e-5)


def test_unknown_intensity_mode_is_an_error() -> None:
    with pytest.raises(ValueError, match="intensity standardisation"):
        eval_transform(S, intensity="zscore")


def test_acquisition_views_keep_the_mask_aligned_and_vary_more_than_weak() -> None:
    mask = _asymmetric_mask(S)
    wide = weak_transform(S, acquisition=True, hflip=False, seed=0)
    weak = weak_transform(S, hflip=False, seed=0)
    assert wide.kind == "labeled"
    wide_moves, weak_moves = [], []
    for _ in range(30):
        image, out = wide(mask.astype(np.float32), mask)
        assert _iou(_top_k(image, int(out.sum().item())), out) > 0.7  # intensities change, geometry is shared
        wide_moves.append(1 - _iou(out, torch.from_numpy(mask).float()))
        weak_moves.append(1 - _iou(weak(mask.astype(np.float32), mask)[1], torch.from_numpy(mask).float()))
    assert np.mean(wide_moves) > np.mean(weak_moves)


def test_acquisition_changes_intensities_before_the_standardisation() -> None:
    image = _image(S)
    plain = weak_transform(S, acquisition=True, seed=0)
    changed = sum(not torch.allclose(plain(image)[0], eval_transform(S)(image)[0], atol=0.05) for _ in range(20))
    assert changed > 10
    strong = strong_transform(S, acquisition=True, intensity="clahe", seed=0)
    for _ in range(10):
        out, _ = strong(image)
        assert out.shape == (1, S, S) and 0.0 <= out.min() and out.max() <= 1.0


def test_zoom_out_shrinks_half_the_labeled_views_onto_a_black_frame_with_the_mask() -> None:
    image = np.ones((S, S), dtype=np.float32)  # a chest that fills the frame
    mask = np.ones((S, S), dtype=np.uint8)
    t = weak_transform(S, hflip=False, zoom_out=0.5, seed=0)
    areas = []
    for _ in range(40):
        view, out = t(image, mask)
        assert _iou(view[0] > 0.5, out[0] > 0.5) > 0.9  # the mask moves with the image
        areas.append(float(out.mean()))
    shrunk = [a for a in areas if a < 0.85]
    assert 10 <= len(shrunk) <= 30  # about half of the views
    assert min(areas) >= 0.5 * 0.75 - 0.05  # never smaller than the widest zoom allows
    assert weak_transform(S, seed=0).kind == "weak" and t.kind == "zoomed"
    with pytest.raises(ValueError, match="zoom_out"):
        weak_transform(S, zoom_out=1.0)
