"""Scoring one development run: in-domain classification and lungs, adults, cross-domain classification
and masks with the AUROC interval and the majority-class accuracy, and the prior-shift check."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from multimix.config import Config
from multimix.config.schema import set_value
from multimix.data.pools import build_pools
from multimix.data.records import Record
from multimix.evaluation.inference import ImageResults, infer
from multimix.evaluation.prior_shift import prior_shift_check
from multimix.evaluation.validation import validation_calibration
from multimix.metrics import classification_metrics
from multimix.metrics.bootstrap import bootstrap_statistic_ci
from multimix.metrics.calibration import Calibration
from multimix.metrics.classification import binary_auroc
from multimix.models.factory import model_from_checkpoint
from multimix.runs.devloop.figure import figure_records, save_samples
from multimix.runs.devloop.operating_points import held_out_operating_points, patient_halves
from multimix.runs.held_out import load_split
from multimix.runs.operating_point import source_prior
from multimix.utils.checkpoints import load_checkpoint
from multimix.utils.device import resolve_device


@dataclass
class _Scoring:
    """A checkpoint ready to score: the network, its config (with the variant's inference
    overrides), the records of its run by role, and the keyword arguments of every ``infer``."""

    state: dict[str, Any]
    model: Any
    cfg: Config
    val: list[Record]
    test: list[Record]
    cross: list[Record]
    kw: dict[str, Any]


def _prepare(checkpoint: str | Path, device: str, batch_size: int, inference: dict[str, Any] | None) -> _Scoring:
    dev = resolve_device(device)
    state = load_checkpoint(checkpoint, map_location=dev)
    model, cfg = model_from_checkpoint(state, origin=str(checkpoint))
    for key, value in (inference or {}).items():
        set_value(cfg, key, value)
    model.to(dev)
    split = load_split(checkpoint, cfg)
    records = build_pools(cfg, training_pools=False).by_uid()
    kw = dict(
        image_size=cfg.data.image_size,
        intensity=cfg.data.intensity,
        batch_size=batch_size,
        device=dev,
        seg_threshold=cfg.inference.seg_threshold,
        flip_tta=cfg.inference.flip_tta,
        drop_edge_regions=cfg.inference.drop_edge_regions,
    )
    pick = lambda uids: [records[u] for u in uids]  # noqa: E731
    return _Scoring(state, model, cfg, pick(split.val), pick(split.test), pick(split.cross), kw)


def score_checkpoint(
    checkpoint: str | Path,
    *,
    device: str = "auto",
    batch_size: int = 64,
    samples: str | Path | None = None,
    inference: dict[str, Any] | None = None,
) -> dict[str, float]:
    """The development scores (see the module doc) of one trained checkpoint on its own run's data.

    ``samples`` names an ``.npz`` file to write the images of :func:`figure_records` and the
    model's raw masks on them to (for ``child_masks.png``). ``inference`` overrides the run's
    ``inference.*`` settings (``{"inference.flip_tta": True}``)."""
    run = _prepare(checkpoint, device, batch_size, inference)
    model, kw, test, cross = run.model, run.kw, run.test, run.cross
    if samples is not None and model.has_seg_head:
        save_samples(model, figure_records(test, cross), kw, Path(samples))
    calibration = _calibration(run)
    prior = source_prior(run.state)
    return {
        **_in_domain(model, [r for r in test if r.has_label], kw, prior, calibration),
        **_adults(model, [r for r in test if r.has_mask], kw),
        **_cross_domain(model, [r for r in cross if r.has_label], kw, prior, calibration),
        **_cross_masks(model, [r for r in cross if r.has_mask], kw, clean=run.cfg.inference.clean_masks),
    }


def prior_shift_scores(
    checkpoint: str | Path, *, device: str = "auto", batch_size: int = 64, inference: dict[str, Any] | None = None
) -> dict[str, float]:
    """The ``shift_*`` columns alone (for rows scored before they existed)."""
    run = _prepare(checkpoint, device, batch_size, inference)
    labeled = [r for r in run.test if r.has_label]
    if not labeled or not run.model.has_cls_head:
        return {}
    results = infer(run.model, labeled, full_metrics=False, **run.kw)
    return _prior_shift(results, source_prior(run.state), _calibration(run))


def _calibration(run: _Scoring) -> Calibration | None:
    """The checkpoint's stored calibration; for one trained before it was stored, the same fit on
    its run's validation images now."""
    stored = Calibration.from_checkpoint(run.state)
    if stored is not None or not run.model.has_cls_head:
        return stored
    return validation_calibration(run.model, run.val, **run.kw)


def _prior_shift(results: ImageResults, prior: Sequence[float], calibration: Calibration | None) -> dict[str, float]:
    labeled = results.labels >= 0
    if results.prob_pneumonia is None or len(np.unique(results.labels[labeled])) < 2:
        return {}
    check = prior_shift_check(
        results.prob_pneumonia[labeled], results.labels[labeled], source_prior=prior, calibration=calibration
    )
    scores: dict[str, float] = {"shift_refused": 0}
    if calibration is not None:
        scores["temperature"] = calibration.temperature
    for method, found in check.items():
        name = method.replace("-", "_")
        if found["share_error"] is not None:
            scores[f"shift_share_err_{name}"] = found["share_error"]
            scores[f"shift_acc_gain_{name}"] = found["accuracy_gain"]
        scores["shift_refused"] += found["refused"]
    return scores


def _in_domain(
    model, records: list[Record], kw: dict[str, Any], prior: Sequence[float], calibration: Calibration | None
) -> dict[str, float]:
    if not records:
        return {}
    results = infer(model, records, full_metrics=False, **kw)
    scores = {**_classification(results, "in"), **_prior_shift(results, prior, calibration)}
    broken = broken_mask_share(results)
    if broken is not None:
        scores["child_masks_broken"] = broken
    return scores


def _adults(model, records: list[Record], kw: dict[str, Any]) -> dict[str, float]:
    if not records:
        return {}
    results = infer(model, records, full_metrics=True, **kw)
    scores: dict[str, float | None] = {}
    if results.prob_pneumonia is not None:
        scores["adults_normal"] = float(np.mean(results.prob_pneumonia < 0.5))
    if model.has_seg_head:
        scores["jsrt_dice"] = _masked_mean(results, "dice")
        scores["jsrt_hd95"] = _masked_mean(results, "hd95")
        clean = infer(model, records, full_metrics=False, postprocess=True, **kw)
        scores["jsrt_dice_clean"] = _masked_mean(clean, "dice")
    return {k: v for k, v in scores.items() if v is not None}


def _cross_domain(
    model, records: list[Record], kw: dict[str, Any], prior: Sequence[float], calibration: Calibration | None
) -> dict[str, float]:
    if not records:
        return {}
    results = infer(model, records, full_metrics=False, **kw)
    scores = _classification(results, "cross")
    labeled = results.labels >= 0
    if results.prob_pneumonia is not None and len(np.unique(results.labels[labeled])) == 2:
        kept = [r for r, keep in zip(records, labeled, strict=True) if keep]
        scores.update(
            held_out_operating_points(
                results.prob_pneumonia[labeled],
                results.labels[labeled].astype(int),
                patient_halves(kept),
                prior,
                calibration=calibration,
            )
        )
        scores.update(auroc_interval(results.prob_pneumonia[labeled], results.labels[labeled], "cross"))
    if labeled.any():
        scores["cross_majority_acc"] = majority_accuracy(results.labels[labeled])
    return scores


def _cross_masks(model, records: list[Record], kw: dict[str, Any], *, clean: bool) -> dict[str, float]:
    """Dice (as the run's inference settings draw the masks, and raw), the share of images below
    Dice 0.5 and HD95 on the cross-domain masks (children's lungs on the development data)."""
    if not records or not model.has_seg_head:
        return {}
    shown = infer(model, records, full_metrics=True, postprocess=clean, **kw)
    dice = shown.seg["dice"][shown.has_mask]
    scores = {
        "cross_dice": float(np.mean(dice)),
        "cross_below_half": float(np.mean(dice < 0.5)),
        "cross_hd95": float(np.nanmean(shown.seg["hd95"][shown.has_mask])),
    }
    if clean:
        raw = infer(model, records, full_metrics=False, postprocess=False, **kw)
        scores["cross_dice_raw"] = float(np.mean(raw.seg["dice"][raw.has_mask]))
    else:
        scores["cross_dice_raw"] = scores["cross_dice"]
    return scores


def majority_accuracy(labels: np.ndarray) -> float:
    """The accuracy of calling every image the commoner class: what a model that ranks nothing scores."""
    counts = np.bincount(np.asarray(labels, dtype=int))
    return float(counts.max() / counts.sum())


def auroc_interval(probs: np.ndarray, labels: np.ndarray, prefix: str, *, seed: int = 0) -> dict[str, float]:
    """``{prefix}_auroc_low/high``: the 95% percentile-bootstrap interval of the AUROC (empty when undefined)."""
    y = np.asarray(labels, dtype=int)
    _, low, high = bootstrap_statistic_ci(lambda idx: binary_auroc(probs[idx], y[idx]), len(y), seed=seed)
    return {} if np.isnan(low) else {f"{prefix}_auroc_low": low, f"{prefix}_auroc_high": high}


def _classification(results: ImageResults, prefix: str) -> dict[str, float]:
    labeled = results.labels >= 0
    if results.prob_pneumonia is None or not labeled.any():
        return {}
    found = classification_metrics(results.prob_pneumonia[labeled], results.labels[labeled])
    scores = {
        f"{prefix}_acc": found["accuracy"],
        f"{prefix}_f1_normal": found["f1_normal"],
        f"{prefix}_f1_pneumonia": found["f1_pneumonia"],
    }
    if found["auroc"] is not None:
        scores[f"{prefix}_auroc"] = found["auroc"]
    return scores


def _masked_mean(results: ImageResults, metric: str) -> float | None:
    values = results.seg.get(metric)
    if values is None or not results.has_mask.any():
        return None
    return float(np.nanmean(values[results.has_mask]))


def broken_mask_share(results: ImageResults) -> float | None:
    """Share of the predicted lung masks that are not exactly two solid regions."""
    if results.pred_regions is None or results.pred_holes is None or not len(results):
        return None
    return float(np.mean((results.pred_regions != 2) | (results.pred_holes > 0)))
