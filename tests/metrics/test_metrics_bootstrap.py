"""Percentile-bootstrap intervals against a plain loop over the same random draws."""

from __future__ import annotations

import math

import numpy as np
import pytest

from multimix.metrics import binary_auroc, bootstrap_ci, bootstrap_statistic_ci
from multimix.metrics import bootstrap as bootstrap_module


def loop_bootstrap(values: np.ndarray, n_resamples: int, confidence: float, seed: int):
    """The percentile bootstrap written out one resample at a time."""
    rng = np.random.default_rng(seed)
    means = [values[rng.integers(0, len(values), size=len(values))].mean() for _ in range(n_resamples)]
    tail = 100 * (1 - confidence) / 2
    return values.mean(), np.percentile(means, tail), np.percentile(means, 100 - tail)


VALUES = np.random.default_rng(7).normal(0.8, 0.1, size=37)


def test_bootstrap_ci_matches_loop_with_the_same_draws():
    got = bootstrap_ci(VALUES, n_resamples=500, confidence=0.9, seed=11)
    np.testing.assert_allclose(got, loop_bootstrap(VALUES, 500, 0.9, seed=11), rtol=1e-12)


def test_bootstrap_ci_blocks_do_not_change_the_draws(monkeypatch):
    whole = bootstrap_ci(VALUES, n_resamples=200, seed=3)
    monkeypatch.setattr(bootstrap_module, "_MAX_INDICES_PER_BLOCK", 5 * len(VALUES) + 1)
    assert bootstrap_ci(VALUES, n_resamples=200, seed=3) == pytest.approx(whole, rel=1e-12)


def test_bootstrap_ci_seeded_contains_mean_and_shrinks_with_n():
    mean, low, high = bootstrap_ci(VALUES)
    assert (mean, low, high) == bootstrap_ci(VALUES)
    assert bootstrap_ci(VALUES, seed=1) != (mean, low, high)
    assert mean == pytest.approx(VALUES.mean()) and low < mean < high
    large = np.random.default_rng(8).normal(0.8, 0.1, size=37 * 16)
    _, large_low, large_high = bootstrap_ci(large)
    # the width goes as 1 / sqrt(n): about 4x narrower here
    assert (large_high - large_low) < 0.4 * (high - low)
    _, low99, high99 = bootstrap_ci(VALUES, confidence=0.99)
    assert low99 <= low and high <= high99


def test_bootstrap_ci_single_value_and_errors():
    assert bootstrap_ci([0.42]) == (0.42, 0.42, 0.42)
    with pytest.raises(ValueError, match="no values"):
        bootstrap_ci([])
    with pytest.raises(ValueError, match="finite"):
        bootstrap_ci([0.5, np.nan])
    with pytest.raises(ValueError, match="1-D"):
        bootstrap_ci(np.ones((2, 2)))
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(VALUES, confidence=1.0)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci(VALUES, n_resamples=0)


def test_statistic_ci_of_the_mean_equals_bootstrap_ci():
    got = bootstrap_statistic_ci(lambda idx: VALUES[idx].mean(), len(VALUES), n_resamples=300)
    np.testing.assert_allclose(got, bootstrap_ci(VALUES, n_resamples=300), rtol=1e-12)


def test_statistic_ci_drops_undefined_resamples():
    # two positives in 12: about a quarter of the resamples hold no positive, so no AUROC
    scores = np.linspace(0.05, 0.95, 12)
    labels = np.zeros(12, dtype=int)
    labels[[4, 10]] = 1

    def auroc(idx):
        return binary_auroc(scores[idx], labels[idx])

    point, low, high = bootstrap_statistic_ci(auroc, 12, n_resamples=400, seed=5)
    rng = np.random.default_rng(5)
    draws = [auroc(rng.integers(0, 12, size=12)) for _ in range(400)]
    kept = [a for a in draws if a is not None]
    assert 200 <= len(kept) < 400
    assert point == pytest.approx(auroc(np.arange(12)))
    assert (low, high) == pytest.approx(tuple(np.percentile(kept, [2.5, 97.5])))


def test_statistic_ci_gives_up_below_half_defined():
    # NaN also marks "undefined"; only resamples starting with index 0 or 1 of 8 are defined
    def first_is_small(idx):
        return 1.0 if idx[0] < 2 else float("nan")

    point, low, high = bootstrap_statistic_ci(first_is_small, 8, n_resamples=200)
    assert point == 1.0 and math.isnan(low) and math.isnan(high)


def test_statistic_ci_undefined_point_and_errors():
    point, low, high = bootstrap_statistic_ci(lambda idx: None, 5, n_resamples=10)
    assert math.isnan(point) and math.isnan(low) and math.isnan(high)
    with pytest.raises(ValueError, match="n must be"):
        bootstrap_statistic_ci(lambda idx: 1.0, 0)


def test_joint_statistics_equal_the_single_statistic_intervals():
    from multimix.metrics import bootstrap_statistics_ci, classification_metrics

    rng = np.random.default_rng(3)
    probs, labels = rng.random(40), rng.integers(0, 2, 40)

    def both(idx):
        m = classification_metrics(probs[idx], labels[idx])
        return {"accuracy": m["accuracy"], "auroc": m["auroc"]}

    joint = bootstrap_statistics_ci(both, 40, n_resamples=200, seed=5)
    for name in ("accuracy", "auroc"):
        single = bootstrap_statistic_ci(lambda idx, name=name: both(idx)[name], 40, n_resamples=200, seed=5)
        assert joint[name] == pytest.approx(single)
