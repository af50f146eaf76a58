"""Losses against hand computations on tiny explicit tensors."""

from __future__ import annotations

import math

import pytest
import torch

from multimix.losses import (
    balanced_class_weights,
    bernoulli_kl,
    cross_entropy,
    dice_loss,
    fixmatch_loss,
    unlabeled_segmentation_kl,
)
from multimix.losses import supervised as supervised_module

LN3 = math.log(3.0)


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def closed_form_kl(p: float, q: float) -> float:
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


# ---------------------------------------------------------------- dice_loss


def test_dice_loss_hand_computed_per_image_mean():
    # image 0: p = [[.5, .75], [.25, .5]], t = [[1, 1], [0, 0]]
    #   I = 1.25, sum p = 2, sum t = 2 -> dice = (2.5 + 1) / (4 + 1) = 0.7 -> loss 0.3
    # image 1: p = 0.5 everywhere, t empty -> dice = (0 + 1) / (2 + 0 + 1) = 1/3 -> loss 2/3
    logits = torch.tensor([[[[0.0, LN3], [-LN3, 0.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    target = torch.tensor([[[[1, 1], [0, 0]]], [[[0, 0], [0, 0]]]])
    assert dice_loss(logits[:1], target[:1]).item() == pytest.approx(0.3, abs=1e-6)
    assert dice_loss(logits[1:], target[1:]).item() == pytest.approx(2 / 3, abs=1e-6)
    # per-image dice averaged over the batch (pooling the batch would give 1 - 3.5/7 = 0.5)
    assert dice_loss(logits, target).item() == pytest.approx((0.3 + 2 / 3) / 2, abs=1e-6)


def test_dice_loss_has_gradient_and_accepts_bool_target():
    logits = torch.zeros(2, 1, 4, 4, requires_grad=True)
    target = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    target[:, :, 1:3, 1:3] = True
    dice_loss(logits, target).backward()
    assert logits.grad is not None and torch.all(torch.isfinite(logits.grad))
    assert logits.grad.abs().sum() > 0


def test_dice_loss_reuses_one_monai_object():
    dice_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))
    first = supervised_module._monai_dice()
    dice_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))
    assert supervised_module._monai_dice() is first


def test_dice_loss_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 1, 2, 2\).*\(2, 1, 3, 3\)"):
        dice_loss(torch.zeros(2, 1, 2, 2), torch.zeros(2, 1, 3, 3))


# ---------------------------------------------------------------- cross_entropy


def test_cross_entropy_plain_and_weighted():
    # row 0: softmax [.5, .5], label 0 -> ln 2; row 1: softmax [.75, .25], label 1 -> ln 4
    logits = torch.tensor([[0.0, 0.0], [LN3, 0.0]])
    target = torch.tensor([0, 1])
    ln2 = math.log(2.0)
    assert cross_entropy(logits, target).item() == pytest.approx(1.5 * ln2, rel=1e-6)
    # weighted mean: (2/3 ln2 + 2 ln4) / (2/3 + 2) = 1.75 ln 2
    weights = torch.tensor([2 / 3, 2.0])
    assert cross_entropy(logits, target, weights).item() == pytest.approx(1.75 * ln2, rel=1e-6)


def test_cross_entropy_empty_batch_is_connected_zero():
    logits = torch.zeros(0, 2, requires_grad=True)
    loss = cross_entropy(logits, torch.zeros(0, dtype=torch.long))
    assert loss.item() == 0.0 and loss.grad_fn is not None


def test_cross_entropy_shape_errors():
    with pytest.raises(ValueError, match="cross_entropy"):
        cross_entropy(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="class_weights"):
        cross_entropy(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), torch.ones(3))


# ---------------------------------------------------------------- balanced_class_weights


@pytest.mark.parametrize("labels", [[0, 0, 0, 1], torch.tensor([0, 0, 0, 1])])
def test_balanced_class_weights_hand_computed(labels):
    # n = 4, C = 2: class 0 -> 4 / (2 * 3) = 2/3, class 1 -> 4 / (2 * 1) = 2
    weights = balanced_class_weights(labels, 2)
    assert weights.dtype == torch.float32
    assert torch.allclose(weights, torch.tensor([2 / 3, 2.0]))


def test_balanced_class_weights_missing_class_is_named():
    with pytest.raises(ValueError, match=r"\[1\]"):
        balanced_class_weights([0, 0, 0], 2)


def test_balanced_class_weights_out_of_range_label():
    with pytest.raises(ValueError, match="labels must lie"):
        balanced_class_weights([0, 1, 2], 2)


# ---------------------------------------------------------------- fixmatch_loss


def test_fixmatch_hand_computed_divides_by_full_batch():
    # weak softmax: [.8, .2] (passes 0.7, pseudo-label 0), [.4, .6] and [.5, .5] (both fail)
    weak = torch.tensor([[math.log(4.0), 0.0], [0.0, math.log(1.5)], [0.0, 0.0]], requires_grad=True)
    # strong row 0: softmax [.25, .75] -> CE against label 0 = ln 4
    strong = torch.tensor([[0.0, LN3], [5.0, -5.0], [-2.0, 3.0]], requires_grad=True)
    loss, pass_rate = fixmatch_loss(weak, strong, threshold=0.7)
    assert loss.item() == pytest.approx(math.log(4.0) / 3, rel=1e-6)
    assert pass_rate.item() == pytest.approx(1 / 3)
    assert not pass_rate.requires_grad
    loss.backward()
    assert weak.grad is None  # pseudo-labels carry no gradient
    assert strong.grad[0].abs().sum() > 0
    assert torch.all(strong.grad[1:] == 0)  # rejected images contribute nothing


def test_fixmatch_pseudo_label_is_argmax_of_weak_view():
    weak = torch.tensor([[0.0, 3.0]])  # confident class 1
    strong = torch.tensor([[0.0, 0.0]])
    loss, pass_rate = fixmatch_loss(weak, strong)
    assert pass_rate.item() == 1.0
    assert loss.item() == pytest.approx(math.log(2.0), rel=1e-6)


def test_fixmatch_nothing_passes_gives_zero():
    loss, pass_rate = fixmatch_loss(torch.zeros(4, 2), torch.randn(4, 2), threshold=0.7)
    assert loss.item() == 0.0 and pass_rate.item() == 0.0


def test_fixmatch_empty_batch():
    strong = torch.zeros(0, 2, requires_grad=True)
    loss, pass_rate = fixmatch_loss(torch.zeros(0, 2), strong)
    assert loss.item() == 0.0 and pass_rate.item() == 0.0
    assert loss.grad_fn is not None
    loss.backward()


def test_fixmatch_errors():
    with pytest.raises(ValueError, match="same shape"):
        fixmatch_loss(torch.zeros(3, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="threshold"):
        fixmatch_loss(torch.zeros(3, 2), torch.zeros(3, 2), threshold=1.5)


# ---------------------------------------------------------------- bernoulli_kl


def test_bernoulli_kl_closed_form():
    p = torch.full((2, 3), logit(0.8), dtype=torch.float64)
    q = torch.full((2, 3), logit(0.6), dtype=torch.float64)
    kl = bernoulli_kl(p, q)
    assert kl.shape == (2, 3)
    # 0.8 ln(0.8 / 0.6) + 0.2 ln(0.2 / 0.4)
    expected = 0.8 * math.log(4 / 3) + 0.2 * math.log(0.5)
    assert expected == pytest.approx(closed_form_kl(0.8, 0.6))
    assert torch.allclose(kl, torch.full((2, 3), expected, dtype=torch.float64))


def test_bernoulli_kl_zero_for_identical_inputs():
    x = torch.tensor([-30.0, -2.0, 0.0, 1.5, 30.0])
    assert torch.all(bernoulli_kl(x, x) == 0)


def test_bernoulli_kl_stable_for_saturated_logits():
    p = torch.tensor([100.0, -100.0, 100.0, 0.0])
    q = torch.tensor([-100.0, 100.0, 100.0, 80.0])
    kl = bernoulli_kl(p, q)
    assert torch.all(torch.isfinite(kl)) and torch.all(kl >= 0)
    # p ~ 1, q ~ e^-100: KL ~ -log q = 100 (+ log(1 + e^-100))
    assert kl[0].item() == pytest.approx(100.0, rel=1e-5)


def test_bernoulli_kl_shape_mismatch():
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        bernoulli_kl(torch.zeros(2), torch.zeros(3))


# ---------------------------------------------------------------- unlabeled_segmentation_kl


def _maps(*probs: float) -> torch.Tensor:
    """``(len(probs), 1, 2, 2)`` logits whose sigmoid is constant per image."""
    return torch.stack([torch.full((1, 2, 2), logit(p), dtype=torch.float64) for p in probs])


def test_paired_reference_hand_computed():
    labeled = _maps(0.8, 0.5)
    unlabeled = _maps(0.6, 0.5)
    # image 0: KL(0.8 || 0.6); image 1: KL(0.5 || 0.5) = 0
    loss = unlabeled_segmentation_kl(labeled, unlabeled, reference="paired")
    assert loss.item() == pytest.approx(closed_form_kl(0.8, 0.6) / 2, rel=1e-5)


def test_paired_reference_uses_first_min_batch():
    loss_long_labeled = unlabeled_segmentation_kl(_maps(0.8, 0.5, 0.1), _maps(0.6, 0.5))
    loss_long_unlabeled = unlabeled_segmentation_kl(_maps(0.8, 0.5), _maps(0.6, 0.5, 0.99))
    expected = closed_form_kl(0.8, 0.6) / 2
    assert loss_long_labeled.item() == pytest.approx(expected, rel=1e-5)
    assert loss_long_unlabeled.item() == pytest.approx(expected, rel=1e-5)


def test_mean_reference_hand_computed():
    # mean labeled probability = (0.8 + 0.4) / 2 = 0.6, the reference of both unlabeled images
    labeled = _maps(0.8, 0.4)
    unlabeled = _maps(0.6, 0.8, 0.8)
    loss = unlabeled_segmentation_kl(labeled, unlabeled, reference="mean")
    expected = (0.0 + 2 * closed_form_kl(0.6, 0.8)) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("reference", ["paired", "mean"])
def test_gradient_reaches_unlabeled_only(reference):
    labeled = torch.randn(2, 1, 4, 4, requires_grad=True)
    unlabeled = torch.randn(3, 1, 4, 4, requires_grad=True)
    loss = unlabeled_segmentation_kl(labeled, unlabeled, reference=reference)
    loss.backward()
    assert labeled.grad is None
    assert unlabeled.grad is not None and unlabeled.grad.abs().sum() > 0


def test_identical_predictions_give_zero_loss():
    x = torch.randn(2, 1, 3, 3)
    assert unlabeled_segmentation_kl(x, x.clone()).item() == pytest.approx(0.0, abs=1e-7)


def test_single_channel_softmax_would_be_degenerate():
    # Why the Bernoulli form: a softmax over one channel is identically 1, so any KL between two
    # such "distributions" is zero, whereas the Bernoulli KL sees the difference.
    labeled, unlabeled = _maps(0.9), _maps(0.1)
    assert torch.all(torch.softmax(labeled, dim=1) == 1)
    assert unlabeled_segmentation_kl(labeled, unlabeled).item() > 1.0


def test_empty_batch_gives_connected_zero():
    unlabeled = torch.zeros(2, 1, 2, 2, requires_grad=True)
    loss = unlabeled_segmentation_kl(torch.zeros(0, 1, 2, 2), unlabeled, reference="mean")
    assert loss.item() == 0.0 and loss.grad_fn is not None


def test_unknown_reference():
    with pytest.raises(ValueError, match="unknown reference 'nearest'"):
        unlabeled_segmentation_kl(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), "nearest")


def test_spatial_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"\(2, 1, 4, 4\).*\(2, 1, 8, 8\)"):
        unlabeled_segmentation_kl(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 8, 8))
