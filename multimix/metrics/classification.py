"""Binary (normal / pneumonia) classification metrics and ROC curve, computed with NumPy only."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        # float64 on the way out: bfloat16 has no NumPy dtype, and thresholds compare exactly.
        x = x.detach().cpu()
        return (x.double() if x.is_floating_point() else x).numpy()
    return np.asarray(x)


def _positive_probs(probs: ArrayLike) -> np.ndarray:
    """``p(pneumonia)`` as a float64 ``(N,)`` array, from ``(N,)`` or ``(N, 2)`` probabilities."""
    p = _to_numpy(probs).astype(np.float64)
    if p.ndim == 2 and p.shape[1] == 2:
        p = p[:, 1]
    elif p.ndim != 1:
        raise ValueError(f"probs must have shape (N,) or (N, 2), got {p.shape}")
    if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        # Catches logits passed by mistake, which would otherwise be thresholded silently.
        raise ValueError("probs must be finite probabilities in [0, 1] (did you pass logits?)")
    return p


def _binary_labels(labels: Any, n: int) -> np.ndarray:
    y = _to_numpy(labels).reshape(-1)
    if y.shape[0] != n:
        raise ValueError(f"got {n} probabilities but {y.shape[0]} labels")
    if not np.all(np.isin(y, (0, 1))):
        raise ValueError(f"labels must be 0 (normal) or 1 (pneumonia), got {np.unique(y)}")
    return y.astype(bool)


def _ratio(num: int, den: int) -> float:
    """``num / den``, or 0.0 when ``den == 0`` (scikit-learn's ``zero_division=0``)."""
    return num / den if den else 0.0


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x``, tied values sharing the mean of the ranks they span."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    last_rank = np.cumsum(counts)
    return (last_rank - (counts - 1) / 2.0)[inverse]


def binary_auroc(scores: ArrayLike, labels: Any) -> float | None:
    """Area under the ROC curve by the rank (Mann-Whitney U) formula.

    ``AUROC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos * n_neg)`` where ``R_pos`` is the sum of the
    positives' ranks among all scores. Ties get mid-ranks, so a positive-negative pair with equal
    scores counts 1/2, as for the trapezoidal ROC area.

    Args:
        scores: ``(N,)`` scores, higher meaning more likely positive.
        labels: ``(N,)`` binary labels (1 = positive).

    Returns:
        The AUROC, or ``None`` when it is undefined because only one class is present.
    """
    s = _to_numpy(scores).astype(np.float64).reshape(-1)
    y = _binary_labels(labels, s.shape[0])
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    rank_sum = float(_midranks(s)[y].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def roc_curve(scores: ArrayLike, labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Receiver operating characteristic: one point per distinct score, from ``(0, 0)``.

    Point ``i`` is the classifier "positive when ``score >= thresholds[i]``". The first point
    uses ``thresholds[0] = inf`` (nothing positive); each further threshold is a distinct score,
    in decreasing order, so tied scores move the curve in one (diagonal) step and the
    trapezoidal area under ``(fpr, tpr)`` equals :func:`binary_auroc`. No point is dropped,
    even when collinear with its neighbours.

    Args:
        scores: ``(N,)`` finite scores, higher meaning more likely positive.
        labels: ``(N,)`` binary labels (1 = positive).

    Returns:
        ``(fpr, tpr, thresholds)``, three float64 arrays of length ``1 + #distinct scores``,
        ``fpr`` and ``tpr`` non-decreasing and ending at 1.

    Raises:
        ValueError: on mismatched lengths, labels outside ``{0, 1}``, non-finite scores, or when
            only one class is present (the curve is then undefined).
    """
    s = _to_numpy(scores).astype(np.float64).reshape(-1)
    y = _binary_labels(labels, s.shape[0])
    if not np.all(np.isfinite(s)):
        raise ValueError("roc_curve: scores must be finite")
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("roc_curve: undefined unless both classes are present in labels")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    # The last position of each run of equal scores: a threshold admits the whole run at once.
    run_ends = np.append(np.flatnonzero(np.diff(s)), s.size - 1)
    tp = np.cumsum(y)[run_ends]
    fp = run_ends + 1 - tp
    fpr = np.concatenate(([0.0], fp / n_neg))
    tpr = np.concatenate(([0.0], tp / n_pos))
    return fpr, tpr, np.concatenate(([np.inf], s[run_ends]))


def classification_metrics(probs: ArrayLike, labels: Any, threshold: float = 0.5) -> dict[str, Any]:
    """Metrics of a normal (0) / pneumonia (1) classifier.

    The prediction is pneumonia when ``p(pneumonia) >= threshold``.

    Conventions callers must know:

    * precision, recall (= sensitivity), specificity and both F1 scores use 0.0 whenever their
      denominator is zero (scikit-learn's ``zero_division=0``); in particular the F1 of a class
      with no true and no predicted member is 0.0, not 1.0.
    * ``auroc`` uses the continuous probabilities (not the threshold) and is ``None`` when only one
      class is present in ``labels``; no value is ever NaN.

    Args:
        probs: ``(N, 2)`` class probabilities or ``(N,)`` pneumonia probabilities, in ``[0, 1]``.
        labels: ``(N,)`` true labels in ``{0, 1}`` (array, tensor or sequence).
        threshold: decision threshold on ``p(pneumonia)``.

    Returns:
        A dict with float ``accuracy``, ``f1_normal``, ``f1_pneumonia``, ``precision``,
        ``recall``, ``sensitivity`` (same as ``recall``) and ``specificity`` (all for pneumonia as
        the positive class), ``auroc`` (float or ``None``), and ``confusion_matrix``
        ``[[tn, fp], [fn, tp]]`` (rows = true class, columns = predicted class, Python ints).

    Raises:
        ValueError: on empty input, bad shapes, probabilities outside ``[0, 1]`` or labels
            outside ``{0, 1}``.
    """
    p = _positive_probs(probs)
    y = _binary_labels(labels, p.shape[0])
    if p.size == 0:
        raise ValueError("classification_metrics: no examples")
    pred = p >= threshold
    tp = int(np.sum(pred & y))
    fp = int(np.sum(pred & ~y))
    fn = int(np.sum(~pred & y))
    tn = int(np.sum(~pred & ~y))
    recall = _ratio(tp, tp + fn)
    return {
        "accuracy": (tp + tn) / p.size,
        # F1 = 2TP / (2TP + FP + FN), equal to 2PR / (P + R) whenever that is defined.
        "f1_normal": _ratio(2 * tn, 2 * tn + fn + fp),
        "f1_pneumonia": _ratio(2 * tp, 2 * tp + fp + fn),
        "precision": _ratio(tp, tp + fp),
        "recall": recall,
        "sensitivity": recall,
        "specificity": _ratio(tn, tn + fp),
        "auroc": binary_auroc(p, y),
        "confusion_matrix": [[tn, fp], [fn, tp]],
    }
