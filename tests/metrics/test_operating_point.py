"""Operating points: prior-shift EM, the score mixture, calibrated thresholds, checkpoint round trip."""

import numpy as np
import pytest

from multimix.metrics.calibration import Calibration, fit_calibration
from multimix.metrics.operating_point import (
    DegenerateOperatingPoint,
    OperatingPoint,
    adapt_prior_em,
    adapt_score_mixture,
    adapt_threshold,
    calibrate_threshold,
    threshold_for_priors,
)


def test_threshold_for_priors_by_hand():
    # balanced model, target 80% pneumonia: w = (0.4, 1.6), threshold 0.4 / 2.0 = 0.2
    assert threshold_for_priors((0.5, 0.5), (0.2, 0.8)) == pytest.approx(0.2)
    assert threshold_for_priors((0.5, 0.5), (0.5, 0.5)) == pytest.approx(0.5)
    assert threshold_for_priors((0.25, 0.75), (0.5, 0.5)) == pytest.approx(0.75)


def _posteriors(rng, n_normal, n_pneumonia, separation=2.0, source_prior=(0.5, 0.5)):
    """Calibrated posteriors of a model whose class-conditional logits are N(-+sep/2, 1)."""
    z = np.concatenate([rng.normal(-separation / 2, 1, n_normal), rng.normal(separation / 2, 1, n_pneumonia)])
    log_ratio = separation * z + np.log(source_prior[1] / source_prior[0])  # log p1/p0 under the source prior
    return 1 / (1 + np.exp(-log_ratio)), np.r_[np.zeros(n_normal), np.ones(n_pneumonia)]


def test_prior_em_recovers_a_shifted_prior():
    rng = np.random.default_rng(0)
    p, _ = _posteriors(rng, 2000, 8000)
    point = adapt_prior_em(p, (0.5, 0.5), fitted_on="test")
    assert point.details["target_prior"][1] == pytest.approx(0.8, abs=0.03)
    assert point.threshold == pytest.approx(threshold_for_priors((0.5, 0.5), point.details["target_prior"]))
    assert point.threshold < 0.5 and point.method == "prior-em" and point.images == 10000
    balanced, _ = _posteriors(rng, 5000, 5000)
    assert adapt_prior_em(balanced).threshold == pytest.approx(0.5, abs=0.03)


def test_score_mixture_follows_a_shifted_score_distribution():
    rng = np.random.default_rng(1)
    # every score moved up by 3 logits (a hospital the model finds "pneumonia-like"), 50/50 classes
    z = np.concatenate([rng.normal(1.0, 1, 3000), rng.normal(5.0, 1, 3000)])
    point = adapt_score_mixture(1 / (1 + np.exp(-z)))
    assert point.details["target_prior"][0] == pytest.approx(0.5, abs=0.03)
    assert np.log(point.threshold / (1 - point.threshold)) == pytest.approx(3.0, abs=0.15)
    assert adapt_threshold(1 / (1 + np.exp(-z)), "score-mixture").threshold == pytest.approx(point.threshold)
    with pytest.raises(ValueError, match="same score"):
        adapt_score_mixture(np.full(30, 0.9))


def test_youden_and_sensitivity_thresholds_by_hand():
    separable = calibrate_threshold([0.1, 0.3, 0.4, 0.6, 0.7, 0.9], [0, 0, 0, 1, 1, 1], "youden")
    assert separable.threshold == pytest.approx(0.5) and separable.details["youden_j"] == pytest.approx(1.0)
    p = np.array([0.1, 0.2, 0.3, 0.45, 0.8, 0.9])
    y = np.array([0, 0, 1, 0, 1, 1])
    youden = calibrate_threshold(p, y, "youden", fitted_on="site")
    # at 0.25: sensitivity 1, specificity 2/3 (J 2/3); at 0.625: 2/3 and 1 (J 2/3); ties go to the one nearer 0.5
    assert youden.threshold == pytest.approx(0.625)
    assert youden.details["youden_j"] == pytest.approx(2 / 3)
    sens = calibrate_threshold(p, y, "sensitivity", sensitivity=1.0)
    assert sens.threshold == pytest.approx(0.25) and sens.details["sensitivity"] == 1.0
    assert sens.details["specificity"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="both classes"):
        calibrate_threshold(p, np.ones(6), "youden")
    with pytest.raises(ValueError, match="one of"):
        calibrate_threshold(p, y, "best")


def test_operating_point_round_trips_through_a_checkpoint_and_defaults_to_half():
    point = calibrate_threshold([0.2, 0.8, 0.6, 0.1], [0, 1, 1, 0], fitted_on="nih")
    state = {"model": {}, "operating_point": point.to_dict()}
    assert OperatingPoint.from_checkpoint(state) == point
    assert OperatingPoint.from_checkpoint({"model": {}}).threshold == 0.5
    assert "youden on nih, 4 images" in point.describe()
    with pytest.raises(ValueError, match="between 0 and 1"):
        OperatingPoint(threshold=1.0)
    with pytest.raises(ValueError, match="finite"):
        adapt_prior_em([0.5, float("nan")])


def _overconfident(rng, n_normal, n_pneumonia, temperature=4.0):
    """Posteriors of a model whose logits are ``temperature`` times too large (as after
    confident pseudo-labels), with the labels drawn from its honest posteriors."""
    p, _ = _posteriors(rng, n_normal, n_pneumonia, separation=1.5)
    return Calibration(temperature=1 / temperature).apply(p), np.r_[np.zeros(n_normal), np.ones(n_pneumonia)]


def test_calibration_recovers_the_scale_and_offset_of_the_logits():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 1.5, 4000)
    labels = rng.random(4000) < 1 / (1 + np.exp(-z))  # honest posteriors sigmoid(z)
    fitted = fit_calibration(1 / (1 + np.exp(-(3.0 * z - 2.0))), labels)  # 3x too sure, shifted by -2
    assert fitted.temperature == pytest.approx(3.0, rel=0.1) and fitted.bias == pytest.approx(2.0 / 3.0, abs=0.1)
    assert fitted.nll_after < fitted.nll_before and fitted.images == 4000
    assert fitted.prior == pytest.approx(labels.mean())
    assert fitted.raw_threshold(float(fitted.apply(np.array([0.3]))[0])) == pytest.approx(0.3, abs=1e-6)
    assert Calibration.from_checkpoint({"calibration": fitted.to_dict()}) == fitted
    assert Calibration.from_checkpoint({"model": {}}) is None
    with pytest.raises(ValueError, match="both classes"):
        fit_calibration(np.full(20, 0.7), np.ones(20))


@pytest.mark.parametrize("share", [0.2, 0.8])
def test_prior_em_on_calibrated_posteriors_estimates_a_resampled_share(share):
    rng = np.random.default_rng(4)
    validation, val_labels = _overconfident(rng, 100, 200)  # a validation split of another class mix
    calibration = fit_calibration(validation, val_labels)
    n_pneumonia = int(round(400 * share))
    p, labels = _overconfident(rng, 400 - n_pneumonia, n_pneumonia)
    point = adapt_prior_em(p, calibration=calibration)
    assert point.details["target_prior"][1] == pytest.approx(share, abs=0.10)
    assert point.details["source_prior"][1] == pytest.approx(2 / 3)  # the calibration's, not (0.5, 0.5)
    accuracy = lambda t: np.mean((p >= t) == labels)  # noqa: E731
    assert accuracy(point.threshold) >= accuracy(0.5)
    mixture = adapt_score_mixture(p)
    assert mixture.details["target_prior"][1] == pytest.approx(share, abs=0.10)


def test_label_free_adaptation_refuses_too_few_images_and_a_boundary_estimate():
    with pytest.raises(DegenerateOperatingPoint, match="at least 20 images"):
        adapt_prior_em([0.9])
    with pytest.raises(DegenerateOperatingPoint, match="at least 20 images"):
        adapt_score_mixture(np.linspace(0.1, 0.9, 10))
    # an over-confident model on a hospital it calls all pneumonia: EM runs to a share of 1
    rng = np.random.default_rng(5)
    p = np.clip(1 - rng.random(300) * 1e-4, 0, 1)
    with pytest.raises(DegenerateOperatingPoint, match=r"pneumonia share of 1\.000.*calibrate on labeled images"):
        adapt_prior_em(p)


def test_calibration_says_whether_the_model_ranks_the_images():
    rng = np.random.default_rng(6)
    labels = np.r_[np.zeros(150), np.ones(150)]
    ranked = calibrate_threshold(labels * 0.4 + rng.random(300) * 0.6, labels)
    assert ranked.details["ranks"] is True and ranked.details["auroc_ci"][0] > 0.5
    assert ranked.details["auroc"] == pytest.approx(np.mean(ranked.details["auroc_ci"]), abs=0.05)
    chance = calibrate_threshold(rng.random(300), labels)
    assert chance.details["ranks"] is False and chance.details["auroc_ci"][0] < 0.5 < chance.details["auroc_ci"][1]
