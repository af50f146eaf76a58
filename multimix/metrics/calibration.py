"""Bias-corrected temperature scaling of p(pneumonia): posteriors that mean what they say.

Label-free prior adaptation (:func:`~multimix.metrics.operating_point.adapt_prior_em`) reads the
network's posteriors as probabilities under a known class mix. Those of a network trained with
class-balanced batches and confident pseudo-labels are neither: their scale is off (a logit of 1
where the evidence says 4, or the reverse) and the mix they assume is not that of any set of
images. Fitting ``q = sigmoid(logit(p) / T + b)`` by likelihood on the run's own labeled
validation images fixes both, and then ``q`` is calibrated to the validation images' share of
pneumonia, which is stored beside ``T`` and ``b``. This is the BCTS calibration that Alexandari,
Kundaje and Shrikumar (ICML 2020) found makes EM prior adaptation hard to beat. The ranking, and
so the AUROC, is unchanged. The checkpoint stores it under :data:`CHECKPOINT_KEY`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

CHECKPOINT_KEY = "calibration"
LOG_TEMPERATURE_RANGE = (math.log(0.05), math.log(20.0))
MIN_CALIBRATION_IMAGES = 10
_EPS = 1e-7


def logit(p: Any) -> np.ndarray:
    """``log(p / (1 - p))`` with ``p`` kept a hair inside (0, 1)."""
    q = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(q) - np.log1p(-q)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass(frozen=True)
class Calibration:
    """``q = sigmoid(logit(p) / temperature + bias)``, calibrated to a set whose share of
    pneumonia is ``prior`` (None: the posteriors are taken as they are, under the training prior)."""

    temperature: float = 1.0
    bias: float = 0.0
    prior: float | None = None
    images: int = 0
    nll_before: float | None = None
    nll_after: float | None = None
    fitted_on: str = ""
    created: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature > 0 and math.isfinite(self.bias)):
            raise ValueError(f"a calibration needs a positive temperature and a finite bias, got {self}")

    def apply(self, p_pneumonia: Any) -> np.ndarray:
        """The calibrated posteriors of the network's p(pneumonia)."""
        return _sigmoid(logit(p_pneumonia) / self.temperature + self.bias)

    def raw_threshold(self, calibrated_threshold: float) -> float:
        """The threshold on the network's own p(pneumonia) that equals ``calibrated_threshold`` on ``q``."""
        return float(_sigmoid(self.temperature * (logit(calibrated_threshold) - self.bias)))

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for a checkpoint (``weights_only=True`` loads it)."""
        return asdict(self)

    @classmethod
    def from_checkpoint(cls, state: dict[str, Any]) -> Calibration | None:
        """The checkpoint's calibration (None for one trained before it was stored)."""
        stored = state.get(CHECKPOINT_KEY)
        if not stored:
            return None
        return cls(**{k: stored[k] for k in cls.__dataclass_fields__ if k in stored})


def binary_nll(p_pneumonia: Any, labels: Any) -> float:
    """Mean negative log-likelihood of 0/1 ``labels`` under ``p_pneumonia``."""
    p = np.clip(np.asarray(p_pneumonia, dtype=np.float64), _EPS, 1 - _EPS)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def fit_calibration(p_pneumonia: Any, labels: Any, *, fitted_on: str = "") -> Calibration:
    """Temperature and bias maximising the likelihood of ``labels`` (0 normal / 1 pneumonia), the
    temperature kept inside ``exp(LOG_TEMPERATURE_RANGE)``. Needs at least
    :data:`MIN_CALIBRATION_IMAGES` images of both classes."""
    p = np.asarray(p_pneumonia, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(int)
    if p.shape != y.shape:
        raise ValueError(f"{p.size} probabilities for {y.size} labels")
    if p.size < MIN_CALIBRATION_IMAGES or len(np.unique(y)) < 2 or not set(np.unique(y)) <= {0, 1}:
        raise ValueError(
            f"calibration needs at least {MIN_CALIBRATION_IMAGES} labeled images of both classes, "
            f"got {p.size} with labels {sorted(set(y.tolist()))}"
        )
    z, target = logit(p), y.astype(np.float64)

    def nll(params: np.ndarray) -> float:
        scaled = z / math.exp(params[0]) + params[1]
        # log(1 + exp(-s)) for pneumonia, log(1 + exp(s)) for normal, without overflow
        return float(np.mean(np.logaddexp(0.0, -scaled) * target + np.logaddexp(0.0, scaled) * (1 - target)))

    found = minimize(nll, np.zeros(2), method="L-BFGS-B", bounds=[LOG_TEMPERATURE_RANGE, (-20.0, 20.0)])
    return Calibration(
        temperature=math.exp(float(found.x[0])),
        bias=float(found.x[1]),
        prior=float(target.mean()),
        images=int(p.size),
        nll_before=nll(np.zeros(2)),
        nll_after=float(found.fun),
        fitted_on=fitted_on,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
