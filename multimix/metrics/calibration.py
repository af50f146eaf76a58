"""Temperature scaling of p(pneumonia) (Guo et al., ICML 2017), one scalar for a whole network.

A network trained with confident pseudo-labels says 0.999 where it is right four times in five.
Label-free prior adaptation (:func:`~multimix.metrics.operating_point.adapt_prior_em`) reads the
posteriors as probabilities, so over-confident ones drive its estimate of a new hospital's class
share to 0 or 1. Dividing the logit by a temperature ``T`` fitted on the run's own validation
images (NLL, the labels the run already holds) makes them honest without moving any ranking or
any decision at 0.5: ``p_T = sigmoid(logit(p) / T)``. The checkpoint stores it under
:data:`CHECKPOINT_KEY`.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

CHECKPOINT_KEY = "calibration"
TEMPERATURE_RANGE = (0.05, 20.0)
MIN_CALIBRATION_IMAGES = 10
_EPS = 1e-7


def logit(p: Any) -> np.ndarray:
    """``log(p / (1 - p))`` with ``p`` kept a hair inside (0, 1)."""
    q = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(q) - np.log1p(-q)


def apply_temperature(p_pneumonia: Any, temperature: float) -> np.ndarray:
    """``sigmoid(logit(p) / temperature)``: the same ranking, and the same calls at 0.5."""
    return 1.0 / (1.0 + np.exp(-logit(p_pneumonia) / temperature))


def binary_nll(p_pneumonia: Any, labels: Any) -> float:
    """Mean negative log-likelihood of 0/1 ``labels`` under ``p_pneumonia``."""
    p = np.clip(np.asarray(p_pneumonia, dtype=np.float64), _EPS, 1 - _EPS)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def fit_temperature(p_pneumonia: Any, labels: Any) -> dict[str, Any]:
    """The temperature minimising the NLL of ``labels`` (0 normal / 1 pneumonia), searched on
    ``log T`` inside :data:`TEMPERATURE_RANGE`; returns ``{"temperature", "images", "nll_before",
    "nll_after", "created"}``. Needs at least :data:`MIN_CALIBRATION_IMAGES` images of both classes."""
    p = np.asarray(p_pneumonia, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(int)
    if p.shape != y.shape:
        raise ValueError(f"{p.size} probabilities for {y.size} labels")
    if p.size < MIN_CALIBRATION_IMAGES or len(np.unique(y)) < 2 or not set(np.unique(y)) <= {0, 1}:
        raise ValueError(
            f"temperature scaling needs at least {MIN_CALIBRATION_IMAGES} labeled images of both classes, "
            f"got {p.size} with labels {sorted(set(y.tolist()))}"
        )
    z, target = logit(p), y.astype(np.float64)

    def nll_at(log_t: float) -> float:
        scaled = z / math.exp(log_t)
        # log(1 + exp(-s)) for pneumonia, log(1 + exp(s)) for normal, without overflow
        return float(np.mean(np.logaddexp(0.0, -scaled) * target + np.logaddexp(0.0, scaled) * (1 - target)))

    low, high = (math.log(t) for t in TEMPERATURE_RANGE)
    found = minimize_scalar(nll_at, bounds=(low, high), method="bounded", options={"xatol": 1e-4})
    temperature = math.exp(float(found.x))
    return {
        "temperature": temperature,
        "images": int(p.size),
        "nll_before": nll_at(0.0),
        "nll_after": nll_at(float(found.x)),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def checkpoint_temperature(state: dict[str, Any]) -> float | None:
    """The temperature a checkpoint stores (None for a checkpoint trained before it was stored)."""
    stored = state.get(CHECKPOINT_KEY) or {}
    value = stored.get("temperature")
    return None if value is None else float(value)
