"""Segmentation metrics (SSIM, pixel precision/recall, Hausdorff distances) on tiny masks whose
values are worked out by hand, plus the empty-mask and spacing rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity
from sklearn.metrics import precision_score, recall_score

from multimix.metrics import (
    average_hausdorff_per_image,
    dice_per_image,
    hausdorff_per_image,
    jaccard_per_image,
    pixel_precision_recall_per_image,
    segmentation_metrics_per_image,
    segmentation_summary,
    ssim_per_image,
)

DISTANCES = (
    hausdorff_per_image,
    lambda p, r, **kw: hausdorff_per_image(p, r, percentile=95, **kw),
    average_hausdorff_per_image,
)
DISTANCE_IDS = ("hd", "hd95", "avg_hd")


def square(top: int, left: int, side: int = 5, shape: tuple[int, int] = (9, 9)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + side, left : left + side] = True
    return mask


# A 5x5 square in a 9x9 image, shifted by one pixel right / down. Each mask has 16 boundary
# pixels; in pixel units, 8 of them are 1 away from the other boundary and 8 lie on it, so
# HD = 1, HD95 = 1 (the 0.95 quantile of eight 0s and eight 1s) and average HD = 8 / 16 = 0.5.
REF = square(2, 2)
SHIFT_X = square(2, 3)
SHIFT_Y = square(3, 2)

# With spacing (sy, sx) = (2, 0.5), the x shift scales to HD 0.5 and average HD 0.25. The y
# shift is not a plain rescaling: for the shifted mask's boundary (rows 3 and 7, columns 2 and 6),
# row 7 is 2 mm from the reference row 6 (5 pixels), while the middle of row 3 is nearer to the
# reference's side columns along x: (3, 3) and (3, 5) 0.5 mm, (3, 4) 1 mm; the rest lies on
# the reference boundary. Mean (10 + 2) / 16 = 0.75 mm both ways (the case is mirror-symmetric).
ANISOTROPIC = (2.0, 0.5)

# A 7x7 square (24 boundary pixels) plus one isolated far pixel at distance d = 9 * sqrt(2)
# from the square's corner (8, 8): HD = d, but HD95 = 0 (the 0.95 quantile of 24 zeros and one d
# interpolates between two zeros), HD99 = 0.76 d (position 0.99 * 24 = 23.76), average HD = d / 25
# (the reverse direction is all zeros).
FAR_REF = square(2, 2, side=7, shape=(20, 20))
FAR_PRED = FAR_REF.copy()
FAR_PRED[17, 17] = True
FAR_D = 9 * math.sqrt(2)

# Empty-mask cases in an 8x11 image: both empty, empty prediction, empty reference.
EMPTY = np.zeros((8, 11), dtype=bool)
LUNG = square(2, 3, side=4, shape=(8, 11))
EMPTY_PRED = np.stack([EMPTY, EMPTY, LUNG])
EMPTY_REF = np.stack([EMPTY, LUNG, EMPTY])


# ---------------------------------------------------------------- distances


def test_hausdorff_one_pixel_shift_hand_computed():
    pred, ref = np.stack([SHIFT_X, SHIFT_Y]), np.stack([REF, REF])
    np.testing.assert_allclose(hausdorff_per_image(pred, ref), [1.0, 1.0])
    np.testing.assert_allclose(hausdorff_per_image(pred, ref, percentile=95), [1.0, 1.0])
    np.testing.assert_allclose(average_hausdorff_per_image(pred, ref), [0.5, 0.5])
    # symmetric
    np.testing.assert_allclose(average_hausdorff_per_image(ref, pred), [0.5, 0.5])


def test_hausdorff_anisotropic_spacing_hand_computed():
    pred, ref = np.stack([SHIFT_X, SHIFT_Y]), np.stack([REF, REF])
    hd = hausdorff_per_image(pred, ref, spacing=ANISOTROPIC)
    np.testing.assert_allclose(hd, [0.5, 2.0], rtol=1e-6)
    avd = average_hausdorff_per_image(pred, ref, spacing=ANISOTROPIC)
    np.testing.assert_allclose(avd, [0.25, 0.75], rtol=1e-6)


def test_far_pixel_separates_max_percentile_and_average():
    pred, ref = FAR_PRED[None], FAR_REF[None]
    np.testing.assert_allclose(hausdorff_per_image(pred, ref), [FAR_D], rtol=1e-6)
    np.testing.assert_allclose(hausdorff_per_image(pred, ref, percentile=95), [0.0], atol=1e-6)
    np.testing.assert_allclose(hausdorff_per_image(pred, ref, percentile=99), [0.76 * FAR_D], rtol=1e-6)
    np.testing.assert_allclose(average_hausdorff_per_image(pred, ref), [FAR_D / 25], rtol=1e-6)


@pytest.mark.parametrize("distance", DISTANCES, ids=DISTANCE_IDS)
def test_distance_empty_rules_give_zero_or_diagonal(distance):
    out = distance(EMPTY_PRED, EMPTY_REF)
    assert out.dtype == np.float64 and out.shape == (3,)
    diagonal = math.hypot(8, 11)
    np.testing.assert_allclose(out, [0.0, diagonal, diagonal])
    out_mm = distance(EMPTY_PRED, EMPTY_REF, spacing=ANISOTROPIC)
    diagonal_mm = math.hypot(8 * 2.0, 11 * 0.5)
    np.testing.assert_allclose(out_mm, [0.0, diagonal_mm, diagonal_mm])


@pytest.mark.parametrize("distance", DISTANCES, ids=DISTANCE_IDS)
def test_per_image_spacing_with_unknown_rows(distance):
    pred = np.stack([SHIFT_X, SHIFT_X, SHIFT_Y, np.zeros_like(REF), np.zeros_like(REF)])
    ref = np.stack([REF, REF, REF, REF, np.zeros_like(REF)])
    spacing = np.array([[1.0, 1.0], [2.0, 0.5], [np.nan, 1.0], [3.0, 4.0], [np.nan, np.nan]])
    out = distance(pred, ref, spacing=spacing)
    pixels = distance(pred[:1], ref[:1])
    anisotropic = distance(pred[1:2], ref[1:2], spacing=ANISOTROPIC)
    np.testing.assert_allclose(out[:2], [pixels[0], anisotropic[0]])
    assert np.isnan(out[2]) and np.isnan(out[4])  # unknown spacing, even for two empty masks
    assert out[3] == pytest.approx(math.hypot(9 * 3.0, 9 * 4.0))


@pytest.mark.filterwarnings("error")
def test_no_warning_leaks_from_monai():
    pred = np.concatenate([EMPTY_PRED, LUNG[None]])
    ref = np.concatenate([EMPTY_REF, np.roll(LUNG, 1, axis=1)[None]])
    metrics = segmentation_metrics_per_image(pred, ref, spacing=ANISOTROPIC)
    assert all(np.isfinite(v).all() for v in metrics.values())


def test_distance_argument_errors():
    pred, ref = np.stack([SHIFT_X, SHIFT_Y]), np.stack([REF, REF])
    for bad in ([1.0, 2.0, 3.0], np.ones((3, 2)), [[1.0, 1.0]], (0.0, 1.0), (-1.0, 1.0)):
        with pytest.raises(ValueError, match="spacing"):
            hausdorff_per_image(pred, ref, spacing=bad)
    with pytest.raises(ValueError, match="spacing"):
        average_hausdorff_per_image(pred, ref, spacing=(np.inf, 1.0))
    for bad in (0, -5, 101):
        with pytest.raises(ValueError, match="percentile"):
            hausdorff_per_image(pred, ref, percentile=bad)
    with pytest.raises(ValueError, match="does not match"):
        average_hausdorff_per_image(pred, ref[:1])


# ---------------------------------------------------------------- SSIM


def test_ssim_matches_skimage_and_identical_masks_give_one():
    rng = np.random.default_rng(0)
    pred = rng.random((3, 12, 10)) < 0.4
    ref = rng.random((3, 12, 10)) < 0.4
    out = ssim_per_image(pred, ref)
    assert out.dtype == np.float64 and out.shape == (3,)
    for i in range(3):
        direct = structural_similarity(pred[i].astype(float), ref[i].astype(float), data_range=1.0)
        assert out[i] == pytest.approx(direct)
    np.testing.assert_allclose(ssim_per_image(pred, pred), 1.0)


def test_ssim_empty_rules():
    out = ssim_per_image(EMPTY_PRED, EMPTY_REF)
    assert out[0] == 1.0
    # both empty: skimage itself agrees that two identical constant images have SSIM 1
    assert structural_similarity(EMPTY * 1.0, EMPTY * 1.0, data_range=1.0) == pytest.approx(1.0)
    # one empty: an ordinary (low) SSIM, the same in both directions
    direct = structural_similarity(EMPTY * 1.0, LUNG * 1.0, data_range=1.0)
    np.testing.assert_allclose(out[1:], [direct, direct])
    assert not np.isnan(out).any()


def test_ssim_needs_the_default_window():
    with pytest.raises(ValueError, match="7x7"):
        ssim_per_image(np.zeros((1, 6, 9)), np.zeros((1, 6, 9)))


# ---------------------------------------------------------------- pixel precision / recall


def test_pixel_precision_recall_hand_computed():
    # one-pixel shift: 20 of the 25 predicted pixels are in the reference
    precision, recall = pixel_precision_recall_per_image(SHIFT_X[None], REF[None])
    assert precision.tolist() == [0.8] and recall.tolist() == [0.8]
    # a prediction inside the reference: precision 1, recall 9 / 25
    precision, recall = pixel_precision_recall_per_image(square(3, 3, side=3)[None], REF[None])
    assert precision == pytest.approx([1.0]) and recall == pytest.approx([9 / 25])


def test_pixel_precision_recall_match_sklearn():
    rng = np.random.default_rng(1)
    pred = rng.random((4, 8, 8)) < 0.5
    ref = rng.random((4, 8, 8)) < 0.5
    precision, recall = pixel_precision_recall_per_image(pred, ref)
    for i in range(4):
        y_true, y_pred = ref[i].ravel(), pred[i].ravel()
        assert precision[i] == pytest.approx(precision_score(y_true, y_pred))
        assert recall[i] == pytest.approx(recall_score(y_true, y_pred))


def test_pixel_precision_recall_empty_rules():
    precision, recall = pixel_precision_recall_per_image(EMPTY_PRED, EMPTY_REF)
    # cases:                      both empty, empty pred, empty ref
    np.testing.assert_array_equal(precision, [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(recall, [1.0, 0.0, 0.0])


# ---------------------------------------------------------------- all metrics, summary

PIXEL_KEYS = {"dice", "jaccard", "ssim", "hd", "hd95", "precision", "recall"}


def test_metrics_per_image_keys_and_values():
    pred = torch.from_numpy(np.stack([SHIFT_X, SHIFT_Y, np.zeros_like(REF)])).unsqueeze(1)
    ref = np.stack([REF, REF, REF])
    metrics = segmentation_metrics_per_image(pred, ref)
    assert set(metrics) == PIXEL_KEYS
    np.testing.assert_allclose(metrics["dice"], dice_per_image(pred, ref))
    np.testing.assert_allclose(metrics["jaccard"], jaccard_per_image(pred, ref))
    np.testing.assert_allclose(metrics["ssim"], ssim_per_image(pred, ref))
    np.testing.assert_allclose(metrics["hd"], [0.5, 0.5, math.hypot(9, 9)])  # average HD
    np.testing.assert_allclose(metrics["hd95"], [1.0, 1.0, math.hypot(9, 9)])
    np.testing.assert_allclose(metrics["precision"], [0.8, 0.8, 0.0])
    np.testing.assert_allclose(metrics["recall"], [0.8, 0.8, 0.0])

    with_mm = segmentation_metrics_per_image(pred, ref, spacing=ANISOTROPIC)
    assert set(with_mm) == PIXEL_KEYS | {"hd_mm", "hd95_mm"}
    np.testing.assert_allclose(with_mm["hd_mm"][:2], [0.25, 0.75], rtol=1e-6)
    np.testing.assert_allclose(with_mm["hd95_mm"][:2], [0.5, 2.0], rtol=1e-6)
    np.testing.assert_allclose(with_mm["hd"], metrics["hd"])


def test_segmentation_summary_all_metrics():
    pred = np.stack([SHIFT_X, SHIFT_Y, np.zeros_like(REF)])
    ref = np.stack([REF, REF, REF])
    per_image = segmentation_metrics_per_image(pred, ref)
    summary = segmentation_summary(pred, ref)
    assert summary["num_images"] == 3 and "num_images_mm" not in summary
    for name, values in per_image.items():
        assert summary[f"{name}_mean"] == pytest.approx(values.mean())
        assert summary[f"{name}_std"] == pytest.approx(values.std())
    assert summary["hd_mean"] == pytest.approx((0.5 + 0.5 + math.hypot(9, 9)) / 3)


def test_segmentation_summary_mm_skips_unknown_spacing():
    pred, ref = np.stack([SHIFT_X, SHIFT_Y, SHIFT_X]), np.stack([REF, REF, REF])
    spacing = np.array([[2.0, 0.5], [2.0, 0.5], [np.nan, np.nan]])
    summary = segmentation_summary(pred, ref, spacing=spacing)
    assert summary["num_images"] == 3 and summary["num_images_mm"] == 2
    assert summary["hd_mm_mean"] == pytest.approx(0.5, rel=1e-6)  # mean of 0.25 and 0.75
    assert summary["hd95_mm_std"] == pytest.approx(0.75, rel=1e-6)  # 0.5 and 2.0
    assert summary["hd_mean"] == pytest.approx(0.5)
    none_known = segmentation_summary(pred, ref, spacing=(np.nan, np.nan))
    assert none_known["num_images_mm"] == 0 and math.isnan(none_known["hd_mm_mean"])
