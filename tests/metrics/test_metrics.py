"""Metrics against hand computations on tiny explicit inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import sklearn.metrics
import torch

from multimix.metrics import (
    binarize,
    binary_auroc,
    classification_metrics,
    dice_per_image,
    jaccard_per_image,
    roc_curve,
    segmentation_summary,
)

# ---------------------------------------------------------------- classification

PROBS = np.array([0.9, 0.6, 0.4, 0.2, 0.7, 0.55])
LABELS = np.array([1, 1, 1, 0, 0, 0])
# predictions at 0.5: [1, 1, 0, 0, 1, 1] -> tp = 2, fn = 1, fp = 2, tn = 1


def test_classification_metrics_hand_computed():
    m = classification_metrics(PROBS, LABELS)
    assert m["confusion_matrix"] == [[1, 2], [1, 2]]
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["precision"] == pytest.approx(2 / 4)
    assert m["recall"] == m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(1 / 3)
    # F1 pneumonia: P = 1/2, R = 2/3 -> 2PR / (P + R) = 4/7
    assert m["f1_pneumonia"] == pytest.approx(4 / 7)
    # F1 normal: P = tn / (tn + fn) = 1/2, R = tn / (tn + fp) = 1/3 -> 2/5
    assert m["f1_normal"] == pytest.approx(2 / 5)
    # AUROC: positive-negative pairs won: 0.9 -> 3, 0.6 -> 2 (beats .2, .55), 0.4 -> 1; 6 / 9
    assert m["auroc"] == pytest.approx(2 / 3)


def test_classification_metrics_accepts_two_column_probs_and_tensors():
    two_col = np.stack([1 - PROBS, PROBS], axis=1)
    reference = classification_metrics(PROBS, LABELS)
    assert classification_metrics(two_col, LABELS) == reference
    assert classification_metrics(torch.tensor(two_col), torch.tensor(LABELS)) == reference
    assert classification_metrics(PROBS.tolist(), LABELS.tolist()) == reference


def test_threshold_is_inclusive_and_adjustable():
    assert classification_metrics([0.5], [1])["confusion_matrix"] == [[0, 0], [0, 1]]
    m = classification_metrics(PROBS, LABELS, threshold=0.65)
    # predictions [1, 0, 0, 0, 1, 0]: tn = 2, fp = 1, fn = 2, tp = 1
    assert m["confusion_matrix"] == [[2, 1], [2, 1]]
    assert m["auroc"] == pytest.approx(2 / 3)  # threshold-free


def test_zero_division_conventions_and_undefined_auroc():
    # all normal and all predicted normal: no true and no predicted pneumonia
    m = classification_metrics([0.1, 0.2, 0.3], [0, 0, 0])
    assert m["confusion_matrix"] == [[3, 0], [0, 0]]
    assert m["accuracy"] == 1.0 and m["f1_normal"] == 1.0 and m["specificity"] == 1.0
    assert m["f1_pneumonia"] == 0.0 and m["precision"] == 0.0 and m["recall"] == 0.0
    assert m["auroc"] is None
    values = [v for k, v in m.items() if k not in ("auroc", "confusion_matrix")]
    assert not any(np.isnan(values))


def test_auroc_with_ties_hand_computed():
    # pairs (pos, neg): (.4, .1) = 1, (.4, .4) = 1/2, (.8, .1) = 1, (.8, .4) = 1 -> 3.5 / 4
    assert binary_auroc([0.1, 0.4, 0.4, 0.8], [0, 0, 1, 1]) == pytest.approx(0.875)
    assert binary_auroc([0.5, 0.5, 0.5], [0, 1, 1]) == pytest.approx(0.5)
    assert binary_auroc([0.9, 0.1], [0, 1]) == pytest.approx(0.0)


def test_auroc_matches_pairwise_count():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=40) / 4.0  # many ties
    labels = rng.integers(0, 2, size=40)
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    assert binary_auroc(scores, labels) == pytest.approx(wins / (len(pos) * len(neg)))


def _trapezoid_area(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def test_roc_curve_hand_computed_with_ties():
    # descending: 0.8 (pos) -> (0, 1/2); tied 0.4 (neg, pos) -> one step to (1/2, 1); 0.1 -> (1, 1)
    fpr, tpr, thresholds = roc_curve([0.1, 0.4, 0.4, 0.8], [0, 0, 1, 1])
    np.testing.assert_array_equal(fpr, [0.0, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(tpr, [0.0, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(thresholds, [np.inf, 0.8, 0.4, 0.1])
    assert _trapezoid_area(fpr, tpr) == pytest.approx(0.875)


def test_roc_curve_matches_sklearn_and_auroc():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 8, size=60) / 7.0  # many ties
    labels = rng.integers(0, 2, size=60)
    fpr, tpr, thresholds = roc_curve(torch.tensor(scores), torch.tensor(labels))
    ref_fpr, ref_tpr, ref_thresholds = sklearn.metrics.roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    np.testing.assert_array_equal(thresholds, ref_thresholds)
    assert len(thresholds) == 1 + len(np.unique(scores))
    area = _trapezoid_area(fpr, tpr)
    assert area == pytest.approx(binary_auroc(scores, labels))
    assert area == pytest.approx(sklearn.metrics.roc_auc_score(labels, scores))


def test_roc_curve_errors():
    with pytest.raises(ValueError, match="both classes"):
        roc_curve([0.2, 0.7], [1, 1])
    with pytest.raises(ValueError, match="both classes"):
        roc_curve([], [])
    with pytest.raises(ValueError, match="finite"):
        roc_curve([0.2, np.nan], [0, 1])
    with pytest.raises(ValueError, match="2 probabilities but 3 labels"):
        roc_curve([0.2, 0.7], [0, 1, 1])


@pytest.mark.parametrize(
    ("probs", "labels", "match"),
    [
        ([0.2, 1.7], [0, 1], "did you pass logits"),
        ([0.2, 0.7], [0, 2], "labels must be"),
        ([0.2, 0.7], [0, 1, 1], "2 probabilities but 3 labels"),
        (np.zeros((2, 3)), [0, 1], "shape"),
        ([], [], "no examples"),
    ],
)
def test_classification_metrics_errors(probs, labels, match):
    with pytest.raises(ValueError, match=match):
        classification_metrics(probs, labels)


# ---------------------------------------------------------------- segmentation


def test_binarize_logits_and_probs():
    out = binarize(torch.tensor([-1.0, 0.0, 2.0]))
    assert isinstance(out, torch.Tensor) and out.tolist() == [False, True, True]
    out = binarize(np.array([0.2, 0.5, 0.9]), threshold=0.5, from_logits=False)
    assert isinstance(out, np.ndarray) and out.tolist() == [False, True, True]
    assert binarize(np.array([1.0]), threshold=0.8).tolist() == [False]  # sigmoid(1) ~ 0.73


# pred [[1, 1], [0, 0]] vs ref [[1, 0], [1, 0]]: |P & R| = 1, |P| = |R| = 2, |P | R| = 3
# -> Dice 2 / 4 = 0.5, Jaccard 1 / 3; then the three empty-mask cases.
PRED = np.array([[[1, 1], [0, 0]], [[0, 0], [0, 0]], [[0, 0], [0, 0]], [[0, 1], [0, 0]]], dtype=np.uint8)
REF = np.array([[[1, 0], [1, 0]], [[1, 1], [0, 0]], [[0, 0], [0, 0]], [[0, 0], [0, 0]]], dtype=np.uint8)
# cases:        overlap  empty pred  both empty  empty ref
DICE = np.array([0.5, 0.0, 1.0, 0.0])
JACCARD = np.array([1 / 3, 0.0, 1.0, 0.0])


def test_dice_and_jaccard_hand_computed_with_empty_rules():
    dice, jaccard = dice_per_image(PRED, REF), jaccard_per_image(PRED, REF)
    assert dice.shape == (4,) and dice.dtype == np.float64
    np.testing.assert_allclose(dice, DICE)
    np.testing.assert_allclose(jaccard, JACCARD)
    assert not np.isnan(dice).any() and not np.isnan(jaccard).any()


def test_dice_accepts_tensors_bools_and_channel_axis():
    pred = torch.from_numpy(PRED).bool().unsqueeze(1)  # (N, 1, H, W) bool tensor
    np.testing.assert_allclose(dice_per_image(pred, REF), DICE)
    np.testing.assert_allclose(jaccard_per_image(pred, torch.from_numpy(REF)), JACCARD)


def test_segmentation_summary():
    # zero-padded to 7x7, the smallest size SSIM's window accepts; Dice and Jaccard are unchanged
    pad = ((0, 0), (0, 5), (0, 5))
    s = segmentation_summary(np.pad(PRED, pad), np.pad(REF, pad))
    assert s["num_images"] == 4
    assert s["dice_mean"] == pytest.approx(0.375)
    # population std: deviations .125, -.375, .625, -.375 -> variance .6875 / 4
    assert s["dice_std"] == pytest.approx(np.sqrt(0.6875 / 4))
    assert s["jaccard_mean"] == pytest.approx((1 / 3 + 1) / 4)
    assert s["jaccard_std"] == pytest.approx(float(np.std(JACCARD)))


def test_segmentation_errors():
    with pytest.raises(ValueError, match=r"\(4, 2, 2\).*\(3, 2, 2\)"):
        dice_per_image(PRED, REF[:3])
    with pytest.raises(ValueError, match="binary"):
        dice_per_image(PRED * 0.5, REF)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        jaccard_per_image(np.zeros((2, 2, 2, 2)), np.zeros((2, 2, 2, 2)))
    with pytest.raises(ValueError, match="no images"):
        segmentation_summary(np.zeros((0, 2, 2)), np.zeros((0, 2, 2)))
    assert dice_per_image(np.zeros((0, 2, 2)), np.zeros((0, 2, 2))).shape == (0,)
