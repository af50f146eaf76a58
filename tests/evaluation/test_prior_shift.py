"""The resampling check of label-free adaptation on labeled images."""

import numpy as np
import pytest

from multimix.evaluation.prior_shift import prior_shift_check, resample_to_share


def test_resampling_keeps_every_image_once_at_the_asked_share():
    labels = np.array([0] * 40 + [1] * 60)
    rng = np.random.default_rng(0)
    low = resample_to_share(labels, 0.2, rng)
    assert len(set(low)) == len(low) == 50 and labels[low].sum() == 10  # all 40 normals, 10 pneumonias
    high = resample_to_share(labels, 0.8, rng)
    assert len(high) == 75 and labels[high].sum() == 60
    with pytest.raises(ValueError, match="strictly between"):
        resample_to_share(labels, 1.0, rng)


def test_the_check_measures_each_method_on_resampled_mixes():
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(300), np.ones(300)].astype(int)
    z = np.where(labels == 1, 1.5, -1.5) + rng.normal(0, 1, 600)
    calibrated = 1 / (1 + np.exp(-3.0 * z))  # the log-odds of N(+-1.5, 1) classes are 3 z
    check = prior_shift_check(calibrated, labels, draws=3)
    for method in ("prior-em", "score-mixture"):
        assert check[method]["share_error"] < 0.10 and check[method]["refused"] == 0
    assert check["prior-em"]["accuracy_gain"] >= 0
    assert check["score-mixture"]["accuracy_gain"] > -0.005  # within one image of 0.5's accuracy
    # a model that ranks nothing: every resample refused or far off, and the check says which
    noise = prior_shift_check(np.full(600, 0.97) + rng.normal(0, 1e-4, 600), labels, draws=2)
    assert noise["prior-em"]["refused"] == 4 and noise["prior-em"]["share_error"] is None
