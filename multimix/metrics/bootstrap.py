"""Percentile-bootstrap confidence intervals over the evaluated images or examples.

Both functions draw the resamples the same way: ``np.random.default_rng(seed).integers(0, n,
size=(n_resamples, n))``, row ``b`` holding the indices of resample ``b``. Large draws are made
in consecutive blocks of rows from the same generator, which yields the same indices as one
draw, so results depend only on ``seed``, never on memory limits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor

# Indices drawn per block (int64, so 32 MiB): bounds memory for large evaluation sets.
_MAX_INDICES_PER_BLOCK = 1 << 22


def _check_options(n_resamples: int, confidence: float) -> None:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int | np.integer):
        raise ValueError(f"n_resamples must be an int, got {n_resamples!r}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _resample_indices(n: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Blocks of rows of the ``(n_resamples, n)`` index draw described in the module docstring."""
    rng = np.random.default_rng(seed)
    rows_per_block = max(1, _MAX_INDICES_PER_BLOCK // n)
    for start in range(0, n_resamples, rows_per_block):
        yield rng.integers(0, n, size=(min(rows_per_block, n_resamples - start), n))


def _percentile_interval(estimates: np.ndarray, confidence: float) -> tuple[float, float]:
    """The ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles (linear interpolation)."""
    low, high = np.quantile(estimates, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def bootstrap_ci(
    values: ArrayLike, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of per-image values and the percentile-bootstrap confidence interval of that mean.

    Each resample draws ``n`` values with replacement; the interval is the central
    ``confidence`` range of the ``n_resamples`` resample means.

    Args:
        values: ``(n,)`` per-image (or per-example) values, e.g. Dice scores.
        n_resamples: number of bootstrap resamples.
        confidence: coverage of the interval, in ``(0, 1)``.
        seed: seed of ``np.random.default_rng``; equal seeds give equal intervals.

    Returns:
        ``(mean, low, high)`` floats; ``(v, v, v)`` for a single value.

    Raises:
        ValueError: on an empty, non-1-D or non-finite ``values`` (NaN included: whether an
            undefined per-image value should be dropped or counted is the caller's decision),
            or invalid options.
    """
    _check_options(n_resamples, confidence)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"bootstrap_ci: values must be 1-D, got shape {v.shape}")
    if v.size == 0:
        raise ValueError("bootstrap_ci: no values")
    if not np.all(np.isfinite(v)):
        raise ValueError("bootstrap_ci: values must be finite (drop or replace NaN first)")
    mean = float(v.mean())
    if v.size == 1:
        return mean, mean, mean
    means = np.concatenate([v[block].mean(axis=1) for block in _resample_indices(v.size, n_resamples, seed)])
    return (mean, *_percentile_interval(means, confidence))


def _defined(value: float | None) -> float | None:
    """``value`` as a float, or None when the statistic is undefined (None or NaN)."""
    if value is None:
        return None
    value = float(value)
    return None if np.isnan(value) else value


def bootstrap_statistic_ci(
    statistic: Callable[[np.ndarray], float | None],
    n: int,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Percentile-bootstrap interval of a statistic that is not a mean of per-item values.

    For metrics such as F1 or AUROC, computed from the whole set at once. ``statistic`` gets an
    index array into the caller's data: ``np.arange(n)`` for the point estimate, then each
    resample's indices (with repeats), e.g.
    ``lambda idx: binary_auroc(probs[idx], labels[idx])``.

    Resamples where the statistic is undefined (it returns None or NaN, as AUROC does when a
    resample holds one class only) are dropped, and the interval is taken over the others. If
    fewer than half of the resamples remain, the interval is not trusted and is ``(nan, nan)``.

    Args:
        statistic: maps an index array to a float, or to None / NaN when undefined.
        n: number of items the indices refer to.
        n_resamples: number of bootstrap resamples (including the dropped ones).
        confidence: coverage of the interval, in ``(0, 1)``.
        seed: seed of ``np.random.default_rng``; the resamples are those of :func:`bootstrap_ci`
            with the same ``n`` and seed.

    Returns:
        ``(point, low, high)`` floats; ``point`` is NaN when the statistic is undefined on the
        full set, ``low`` and ``high`` are NaN when fewer than half the resamples are defined.

    Raises:
        ValueError: if ``n < 1`` or on invalid options.
    """
    results = bootstrap_statistics_ci(
        lambda idx: {"value": statistic(idx)}, n, n_resamples=n_resamples, confidence=confidence, seed=seed
    )
    return results["value"]


def bootstrap_statistics_ci(
    statistics: Callable[[np.ndarray], Mapping[str, float | None]],
    n: int,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float, float]]:
    """:func:`bootstrap_statistic_ci` for several statistics computed together on each resample.

    ``statistics`` maps an index array to ``{name: value}`` (e.g. every classification metric
    from one confusion matrix), so each resample is evaluated once rather than once per metric.
    The rules for undefined values apply to each name separately.

    Returns:
        ``{name: (point, low, high)}`` for every name of the full-set result.
    """
    _check_options(n_resamples, confidence)
    if n < 1:
        raise ValueError(f"bootstrap_statistics_ci: n must be at least 1, got {n}")
    full = statistics(np.arange(n))
    estimates: dict[str, list[float]] = {name: [] for name in full}
    for block in _resample_indices(n, n_resamples, seed):
        for indices in block:
            values = statistics(indices)
            for name in estimates:
                if (value := _defined(values.get(name))) is not None:
                    estimates[name].append(value)
    results = {}
    for name, draws in estimates.items():
        point = _defined(full[name])
        point = float("nan") if point is None else point
        if 2 * len(draws) < n_resamples:
            results[name] = (point, float("nan"), float("nan"))
        else:
            results[name] = (point, *_percentile_interval(np.asarray(draws), confidence))
    return results
