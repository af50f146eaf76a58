"""Held-out operating points for a new hospital: chosen on one patient-grouped half, scored on the other."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from multimix.data.records import Record
from multimix.metrics import classification_metrics
from multimix.metrics.calibration import Calibration
from multimix.metrics.operating_point import adapt_threshold, calibrate_threshold

OPERATING_POINTS = ("prior_em", "score_mixture", "youden")


def patient_halves(records: Sequence[Record]) -> np.ndarray:
    """0/1 per record: two halves with no patient in both (a stable hash of the patient id)."""
    return np.array([zlib.crc32((r.patient_id or r.uid).encode()) % 2 for r in records])


def held_out_operating_points(
    probs: np.ndarray,
    labels: np.ndarray,
    halves: np.ndarray,
    source_prior: Sequence[float],
    *,
    calibration: Calibration | None = None,
) -> dict[str, float]:
    """Accuracy and F1-normal of every image at the threshold each method chose on the *other*
    half (label-free methods see only the other half's scores; Youden also its labels)."""
    scores: dict[str, float] = {}
    for name in OPERATING_POINTS:
        called = np.zeros(len(probs), dtype=bool)
        try:
            for half in (0, 1):
                fit, use = halves != half, halves == half
                if name == "youden":
                    point = calibrate_threshold(probs[fit], labels[fit], "youden")
                else:
                    point = adapt_threshold(
                        probs[fit], name.replace("_", "-"), source_prior=source_prior, calibration=calibration
                    )
                called[use] = probs[use] >= point.threshold
        except ValueError:  # a half with one class, a refused estimate, or no mixture to fit: no number
            continue
        found = classification_metrics(called.astype(float), labels)
        scores[f"cross_acc_{name}"], scores[f"cross_f1_normal_{name}"] = found["accuracy"], found["f1_normal"]
    return scores
