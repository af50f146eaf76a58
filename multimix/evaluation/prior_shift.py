"""Does label-free adaptation follow a change of the class mix? A check on labeled images.

The labeled held-out images of the training hospital are resampled (without replacement) to
another share of pneumonia, which plays a hospital with the same patients in another mix. Each
label-free method (:data:`~multimix.metrics.operating_point.ADAPT_METHODS`) sees only the
resampled scores; the check records how far its estimated share lies from the true one and how
much accuracy its threshold gains over 0.5. A method that helps nobody, or refuses, shows here
before it ever meets a real hospital.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from multimix.metrics.calibration import Calibration
from multimix.metrics.operating_point import ADAPT_METHODS, DegenerateOperatingPoint, adapt_threshold

SHARES = (0.2, 0.8)
DRAWS = 5


def resample_to_share(labels: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of the largest subsample of 0/1 ``labels`` with a ``share`` of ones (no repeats)."""
    if not 0 < share < 1:
        raise ValueError(f"a pneumonia share must lie strictly between 0 and 1, got {share}")
    ones, zeros = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    size = int(min(len(ones) / share, len(zeros) / (1 - share)))
    n_ones = int(round(size * share))
    picked = np.concatenate([rng.choice(ones, n_ones, replace=False), rng.choice(zeros, size - n_ones, replace=False)])
    return np.sort(picked)


def prior_shift_check(
    p_pneumonia: np.ndarray,
    labels: np.ndarray,
    *,
    source_prior: Sequence[float] = (0.5, 0.5),
    calibration: Calibration | None = None,
    shares: Sequence[float] = SHARES,
    draws: int = DRAWS,
    seed: int = 0,
) -> dict[str, Any]:
    """Per method ``share_error`` (the largest over ``shares`` of the mean absolute error of the
    estimated share over ``draws`` resamples), ``accuracy_gain`` (the smallest over ``shares`` of
    the mean accuracy at the method's threshold minus that at 0.5) and ``refused`` (resamples on
    which the method refused; they count in neither mean)."""
    p = np.asarray(p_pneumonia, dtype=np.float64)
    y = np.asarray(labels).astype(int)
    rng = np.random.default_rng(seed)
    found: dict[str, Any] = {}
    samples = [(share, resample_to_share(y, share, rng)) for share in shares for _ in range(draws)]
    for method in ADAPT_METHODS:
        errors: dict[float, list[float]] = {share: [] for share in shares}
        gains: dict[float, list[float]] = {share: [] for share in shares}
        refused = 0
        for share, index in samples:
            try:
                point = adapt_threshold(p[index], method, source_prior=source_prior, calibration=calibration)
            except DegenerateOperatingPoint:
                refused += 1
                continue
            estimated = point.details["target_prior"][1]
            errors[share].append(abs(estimated - float(np.mean(y[index]))))
            gains[share].append(_accuracy(p[index], y[index], point.threshold) - _accuracy(p[index], y[index], 0.5))
        answered = [share for share in shares if errors[share]]
        found[method] = {
            "share_error": max((float(np.mean(errors[s])) for s in answered), default=None),
            "accuracy_gain": min((float(np.mean(gains[s])) for s in answered), default=None),
            "refused": refused,
        }
    return found


def _accuracy(p: np.ndarray, y: np.ndarray, threshold: float) -> float:
    return float(np.mean((p >= threshold).astype(int) == y))
