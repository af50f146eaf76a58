"""Where a classifier draws its line: the decision threshold on p(pneumonia), and how to move it
for a new hospital.

A model trained on one hospital ranks another hospital's images well long before its 0.5
threshold suits them (children vs adults: every adult looks "pneumonia" to a pediatric model).
An :class:`OperatingPoint` is the threshold plus a record of how and on what it was chosen; it
travels inside the checkpoint (``operating_point``) and evaluation, prediction and the web app
read it from there. Three ways to choose one:

* **label-free, prior shift** (:func:`adapt_prior_em`): the EM procedure of Saerens, Latinne and
  Decaestecker (2002) estimates the new hospital's class prior from the model's posteriors on its
  unlabeled images, assuming only the prior changed; the threshold is where the re-weighted
  posterior crosses 0.5. The posteriors are first made honest by the temperature and bias the run
  fitted on its validation images (:mod:`multimix.metrics.calibration`): EM on uncalibrated ones
  runs to a share of 0 or 1;
* **label-free, score mixture** (:func:`adapt_score_mixture`): a two-component Gaussian mixture
  (shared variance) fitted by EM to the logits of those images; the threshold is where the two
  weighted components cross. Unlike the prior-shift EM it allows the whole score distribution to
  move (covariate shift), at the price of assuming the two classes form two humps;
* **calibrated** (:func:`calibrate_threshold`): a few labeled images of the new hospital; Youden's
  J (sensitivity + specificity - 1) or the highest threshold reaching a target sensitivity.

A label-free estimate is refused (:class:`DegenerateOperatingPoint`, nothing is written) when it
rests on fewer than :data:`MIN_ADAPT_IMAGES` images, or lands at a boundary: an estimated share
of pneumonia outside :data:`SHARE_LIMITS`, or a threshold that calls a share of the images
pneumonia outside them, is a model that calls every image one class, not an operating point.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from multimix.metrics.bootstrap import bootstrap_statistic_ci
from multimix.metrics.calibration import Calibration, logit
from multimix.metrics.classification import binary_auroc

CHECKPOINT_KEY = "operating_point"
DEFAULT_THRESHOLD = 0.5
ADAPT_METHODS = ("prior-em", "score-mixture")
CALIBRATE_METHODS = ("youden", "sensitivity")
_EPS = 1e-6
MIN_ADAPT_IMAGES = 20  # a class share estimated from fewer images is noise
SHARE_LIMITS = (0.02, 0.98)  # an estimated or called share of pneumonia outside: every image one class


class DegenerateOperatingPoint(ValueError):
    """A label-free estimate that would call (almost) every image one class, or rests on too few images."""


@dataclass
class OperatingPoint:
    """A decision threshold on p(pneumonia) and where it came from.

    Attributes:
        threshold: the image is called pneumonia when ``p(pneumonia) >= threshold``.
        method: ``default`` (0.5), ``prior-em``, ``score-mixture``, ``youden``, ``sensitivity``
            or ``manual``.
        fitted_on: what the images were (a folder, ``nih``...), for people.
        images: how many images chose it.
        details: the method's own numbers (estimated priors, sensitivity reached...).
        created: when (UTC, ISO 8601).
        image_ids: path-free fingerprints of the images that chose it
            (:func:`~multimix.data.records.image_identity`), so an evaluation on them can say so.
    """

    threshold: float = DEFAULT_THRESHOLD
    method: str = "default"
    fitted_on: str = ""
    images: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    image_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not (0.0 < self.threshold < 1.0) or not math.isfinite(self.threshold):
            raise ValueError(f"an operating point's threshold must lie strictly between 0 and 1, got {self.threshold}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for a checkpoint (``weights_only=True`` loads it)."""
        return asdict(self)

    @classmethod
    def from_checkpoint(cls, state: dict[str, Any]) -> OperatingPoint:
        """The checkpoint's operating point; the 0.5 default for one that has none."""
        stored = state.get(CHECKPOINT_KEY)
        if not stored:
            return cls()
        known = {
            k: stored[k]
            for k in ("threshold", "method", "fitted_on", "images", "details", "created", "image_ids")
            if k in stored
        }
        return cls(**known)

    def describe(self) -> str:
        """One line for people: ``threshold 0.731 (prior-em on nih, 150 images)``."""
        if self.method == "default":
            return f"threshold {self.threshold:.3f} (default)"
        where = f" on {self.fitted_on}" if self.fitted_on else ""
        return f"threshold {self.threshold:.3f} ({self.method}{where}, {self.images} images)"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _as_probs(p_pneumonia: Any) -> np.ndarray:
    p = np.asarray(p_pneumonia, dtype=np.float64).ravel()
    if p.size == 0:
        raise ValueError("no images to choose an operating point from")
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise ValueError("p(pneumonia) must be finite values in [0, 1]")
    return p


def threshold_for_priors(source_prior: Any, target_prior: Any) -> float:
    """The threshold on the model's p(pneumonia) that equals 0.5 on the posterior re-weighted from
    ``source_prior`` to ``target_prior`` (both ``(normal, pneumonia)``): ``w0 / (w0 + w1)`` with
    ``w_c = target_c / source_c``."""
    source = np.clip(np.asarray(source_prior, dtype=np.float64), _EPS, None)
    target = np.clip(np.asarray(target_prior, dtype=np.float64), _EPS, None)
    w = target / source
    return float(np.clip(w[0] / (w[0] + w[1]), _EPS, 1 - _EPS))


def adapt_prior_em(
    p_pneumonia: Any,
    source_prior: Any = (0.5, 0.5),
    *,
    calibration: Calibration | None = None,
    max_iterations: int = 1000,
    tolerance: float = 1e-8,
    fitted_on: str = "",
) -> OperatingPoint:
    """Label-free prior adaptation (Saerens et al. 2002).

    Iterates ``prior <- mean over images of the posterior re-weighted by prior / source_prior``
    until the prior stops moving; the re-weighted posterior's 0.5 (:func:`threshold_for_priors`)
    is the threshold. With a ``calibration`` the EM runs on its calibrated posteriors, whose class
    prior is the calibration's (it replaces ``source_prior``), and the threshold is mapped back to
    the network's own p(pneumonia).

    Args:
        p_pneumonia: ``(N,)`` the model's p(pneumonia) on the new hospital's images.
        source_prior: the class prior the model's posteriors assume (``(0.5, 0.5)`` for a model
            trained on class-balanced batches or with a class-balanced loss).
        calibration: the run's :class:`~multimix.metrics.calibration.Calibration`.

    Raises:
        DegenerateOperatingPoint: too few images, or an estimate at a boundary (module doc).
    """
    raw = _check_count(_as_probs(p_pneumonia), "prior-em")
    p = raw if calibration is None else calibration.apply(raw)
    if calibration is not None and calibration.prior is not None:
        source_prior = (1 - calibration.prior, calibration.prior)
    source = np.asarray(source_prior, dtype=np.float64)
    if source.shape != (2,) or np.any(source <= 0):
        raise ValueError(f"source_prior must be two positive numbers, got {source_prior}")
    source = source / source.sum()
    prior, iterations = _em_prior(np.stack([1 - p, p], axis=1), source, max_iterations, tolerance)
    threshold = threshold_for_priors(source, prior)
    if calibration is not None:
        threshold = calibration.raw_threshold(threshold)
    details: dict[str, Any] = {
        "source_prior": source.tolist(),
        "target_prior": prior.tolist(),
        "iterations": iterations,
    }
    if calibration is not None:
        details["calibration"] = {"temperature": calibration.temperature, "bias": calibration.bias}
    _check_not_degenerate("prior-em", float(prior[1]), threshold, raw)
    return OperatingPoint(threshold, "prior-em", fitted_on, int(p.size), details, _now())


def _em_prior(
    posterior: np.ndarray, source: np.ndarray, max_iterations: int, tolerance: float
) -> tuple[np.ndarray, int]:
    prior = source.copy()
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        weighted = posterior * (prior / source)
        weighted /= weighted.sum(axis=1, keepdims=True)
        new_prior = weighted.mean(axis=0)
        moved = float(np.abs(new_prior - prior).max())
        prior = new_prior
        if moved < tolerance:
            break
    return prior, iterations


def _check_count(p: np.ndarray, method: str) -> np.ndarray:
    if p.size < MIN_ADAPT_IMAGES:
        raise DegenerateOperatingPoint(
            f"{method} needs at least {MIN_ADAPT_IMAGES} images of the new hospital to estimate its class share, "
            f"got {p.size}; nothing written"
        )
    return p


def _check_not_degenerate(method: str, share: float, threshold: float, p: np.ndarray) -> None:
    """Refuse a share or threshold at a boundary, in one line that says what the model does there."""
    called = float(np.mean(p >= threshold))
    low, high = SHARE_LIMITS
    if not (low <= share <= high and low <= called <= high):
        raise DegenerateOperatingPoint(
            f"{method} estimated a pneumonia share of {share:.3f} (threshold {threshold:.4f}, which calls "
            f"{called:.0%} of the {p.size} images pneumonia): the model's scores on these images do not "
            "support a label-free threshold; calibrate on labeled images of this hospital instead. Nothing written"
        )


def adapt_score_mixture(
    p_pneumonia: Any, *, max_iterations: int = 500, tolerance: float = 1e-8, fitted_on: str = ""
) -> OperatingPoint:
    """Label-free threshold from a two-component Gaussian mixture on the logits.

    Fits ``pi0 N(mu0, s^2) + pi1 N(mu1, s^2)`` (shared variance) by EM to ``logit(p)``, starting
    from the split at the median; the component with the larger mean is pneumonia. With a shared
    variance the weighted components cross at a single logit, which is the threshold.
    """
    p = _check_count(_as_probs(p_pneumonia), "score-mixture")
    z = logit(p)
    upper = z >= np.median(z)
    if upper.all() or not upper.any():
        raise ValueError("every image has the same score: no mixture to fit")
    mu = np.array([z[~upper].mean(), z[upper].mean()])
    pi = np.array([0.5, 0.5])
    var = max(float(np.var(z - np.where(upper, mu[1], mu[0]))), _EPS)
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        log_density = -0.5 * (z[:, None] - mu[None]) ** 2 / var + np.log(pi)[None]
        log_density -= log_density.max(axis=1, keepdims=True)
        resp = np.exp(log_density)
        resp /= resp.sum(axis=1, keepdims=True)
        counts = resp.sum(axis=0).clip(_EPS)
        new_mu = (resp * z[:, None]).sum(axis=0) / counts
        new_var = max(float((resp * (z[:, None] - new_mu[None]) ** 2).sum() / z.size), _EPS)
        new_pi = counts / counts.sum()
        moved = max(float(np.abs(new_mu - mu).max()), float(np.abs(new_pi - pi).max()))
        mu, var, pi = new_mu, new_var, new_pi
        if moved < tolerance:
            break
    if mu[1] < mu[0]:
        mu, pi = mu[::-1], pi[::-1]
    if mu[1] - mu[0] < _EPS:
        raise ValueError("the score mixture collapsed to one component: no threshold to read off")
    # pi0 N(z; mu0) = pi1 N(z; mu1)  <=>  z = (mu0 + mu1) / 2 + var * log(pi0 / pi1) / (mu1 - mu0)
    crossing = (mu[0] + mu[1]) / 2 + var * math.log(pi[0] / pi[1]) / (mu[1] - mu[0])
    threshold = float(np.clip(1 / (1 + math.exp(-crossing)), _EPS, 1 - _EPS))
    details = {
        "target_prior": pi.tolist(),
        "logit_means": mu.tolist(),
        "logit_sd": math.sqrt(var),
        "iterations": iterations,
    }
    _check_not_degenerate("score-mixture", float(pi[1]), threshold, p)
    return OperatingPoint(threshold, "score-mixture", fitted_on, int(p.size), details, _now())


def adapt_threshold(
    p_pneumonia: Any,
    method: str = "prior-em",
    *,
    source_prior: Any = (0.5, 0.5),
    calibration: Calibration | None = None,
    fitted_on: str = "",
) -> OperatingPoint:
    """One of :data:`ADAPT_METHODS` on unlabeled images' p(pneumonia) (``calibration``: prior-em
    only; the score mixture's two humps do not depend on the scale or offset of the logits)."""
    if method == "prior-em":
        return adapt_prior_em(p_pneumonia, source_prior, calibration=calibration, fitted_on=fitted_on)
    if method == "score-mixture":
        return adapt_score_mixture(p_pneumonia, fitted_on=fitted_on)
    raise ValueError(f"label-free adaptation must be one of {ADAPT_METHODS}, got {method!r}")


def calibrate_threshold(
    p_pneumonia: Any, labels: Any, method: str = "youden", *, sensitivity: float = 0.9, fitted_on: str = ""
) -> OperatingPoint:
    """A threshold chosen on labeled images of the new hospital.

    ``youden`` maximises sensitivity + specificity - 1 (ties: the threshold nearest 0.5);
    ``sensitivity`` takes the highest threshold whose sensitivity reaches ``sensitivity``.
    Candidate thresholds lie halfway between consecutive distinct scores, so the chosen one
    separates the sample exactly as measured. ``details`` also hold the AUROC with its 95%
    bootstrap interval and ``ranks``: False when that interval reaches 0.5 or the chosen
    sensitivity is below 0.5 (the model does not rank this hospital's images; no threshold helps).
    """
    p = _as_probs(p_pneumonia)
    y = np.asarray(labels).ravel().astype(int)
    if y.shape != p.shape or not set(np.unique(y)) <= {0, 1}:
        raise ValueError("labels must be 0 (normal) / 1 (pneumonia), one per image")
    if len(np.unique(y)) < 2:
        raise ValueError("calibration needs labeled images of both classes")
    if method not in CALIBRATE_METHODS:
        raise ValueError(f"calibration must be one of {CALIBRATE_METHODS}, got {method!r}")
    scores = np.unique(p)
    candidates = np.concatenate([[scores[0] / 2], (scores[:-1] + scores[1:]) / 2, [(scores[-1] + 1) / 2]])
    candidates = np.clip(candidates, _EPS, 1 - _EPS)
    predicted = p[None, :] >= candidates[:, None]
    sens = (predicted & (y == 1)).sum(axis=1) / (y == 1).sum()
    spec = (~predicted & (y == 0)).sum(axis=1) / (y == 0).sum()
    if method == "youden":
        j = sens + spec - 1
        best = np.flatnonzero(np.isclose(j, j.max()))
        chosen = int(best[np.argmin(np.abs(candidates[best] - 0.5))])
        details: dict[str, Any] = {"youden_j": float(j[chosen])}
    else:
        if not 0 < sensitivity <= 1:
            raise ValueError(f"target sensitivity must be in (0, 1], got {sensitivity}")
        chosen = int(np.flatnonzero(sens >= sensitivity - 1e-12).max())
        details = {"target_sensitivity": sensitivity}
    auroc, low, high = bootstrap_statistic_ci(lambda idx: binary_auroc(p[idx], y[idx]), len(y))
    details.update(
        sensitivity=float(sens[chosen]),
        specificity=float(spec[chosen]),
        normals=int((y == 0).sum()),
        pneumonias=int((y == 1).sum()),
        auroc=float(auroc),
        auroc_ci=[float(low), float(high)],
        # a threshold cannot rescue a ranking at chance: the card and the command say so in words
        ranks=bool(np.isfinite(low) and low > 0.5 and sens[chosen] >= 0.5),
    )
    return OperatingPoint(float(candidates[chosen]), method, fitted_on, int(p.size), details, _now())
