"""The real-data development loop: train variants of one config under one fixed budget, score each
on the checks that matter across hospitals, and print one table.

Every variant is an ordinary training run in ``<out>/<variant>/`` (finished runs are skipped, an
interrupted one resumes), so an ablation can be stopped and restarted at will. The scores:

* **in-domain**: the held-out classification images of the training sources (CheX), accuracy,
  F1 of each class and AUROC; the held-out segmentation images (JSRT), Dice and HD95, raw and with
  the lung-mask clean-up (:mod:`multimix.models.postprocess`);
* **adults called normal**: the share of the held-out segmentation images that the classifier
  calls normal. JSRT has no pneumonia case, so this is a specificity check on adults;
* **child masks broken**: the share of held-out CheX images whose raw lung mask is not two
  solid regions (more or fewer components, or holes). CheX has no masks, so this is the only
  pediatric segmentation signal the development data gives;
* **cross-domain**: every labeled cross-domain image (NIH adults), accuracy, F1-normal, AUROC;
  and Dice on cross-domain masks where a source has them; and accuracy / F1-normal at an operating
  point chosen for that hospital (:mod:`multimix.metrics.operating_point`), each on disjoint,
  patient-grouped halves: the threshold is chosen on one half and scores the other, both ways
  round ("adapted": label-free prior EM; "mixture": label-free score mixture; "calibrated":
  Youden's J on the half's labels);
* the run's wall time.

Beside the table, ``<out>/child_masks.png`` shows the raw lung outlines every variant draws on the
same held-out CheX (and NIH) images: a broken mask is easier to judge by eye than by a count.

Variants are config overrides (``section.key: value``) listed in a YAML file (see
``configs/dev/ablation.yaml``); each is trained with the same flags (``--steps``,
``--image-size``, ...), which a variant may override in its turn.

**Seeds.** With 100 labels the label draw alone moves accuracy by several points, so every
variant runs once per seed (``train.seed``: label draw, initialisation, augmentation and the
held-out draws), the same seeds for every variant, in ``<out>/<variant>/seed<k>/``; seeds are the
outer loop, so a grid stopped half-way already holds paired comparisons. The table gives the mean
± standard deviation over seeds of every column, the lowest validation F1-normal after the
supervised warm-up over every validation of every seed (a collapsed classifier shows as 0), and,
against a ``baseline`` variant, the paired difference per seed (mean ± sd): a difference smaller
than its spread is noise.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from skimage.transform import resize

from multimix.config import Config, load_config
from multimix.config.schema import set_value
from multimix.data.pools import build_pools
from multimix.data.records import Record
from multimix.evaluation.figures import boundary_overlays
from multimix.evaluation.inference import ImageResults, infer
from multimix.evaluation.prior_shift import prior_shift_check
from multimix.evaluation.tables import is_beyond_spread, mean_sd_text, write_result_files
from multimix.evaluation.tables import paired_differences as seed_differences
from multimix.evaluation.validation import validation_calibration
from multimix.metrics import classification_metrics
from multimix.metrics.bootstrap import bootstrap_statistic_ci
from multimix.metrics.calibration import Calibration
from multimix.metrics.classification import binary_auroc
from multimix.metrics.operating_point import adapt_threshold, calibrate_threshold
from multimix.models.factory import model_from_checkpoint
from multimix.runs.evaluate import load_split
from multimix.runs.grid import cell_state, train_or_resume
from multimix.runs.operating_point import source_prior
from multimix.utils.atomic import atomic_write_text
from multimix.utils.checkpoints import load_checkpoint
from multimix.utils.device import resolve_device

# column key -> (header, format); the order of the printed table
COLUMNS: dict[str, tuple[str, str]] = {
    "in_acc": ("in acc", "{:.3f}"),
    "in_f1_normal": ("in F1-N", "{:.3f}"),
    "in_f1_pneumonia": ("in F1-P", "{:.3f}"),
    "in_auroc": ("in AUROC", "{:.3f}"),
    "jsrt_dice": ("JSRT Dice", "{:.3f}"),
    "jsrt_dice_clean": ("Dice clean", "{:.3f}"),
    "jsrt_hd95": ("HD95 px", "{:.1f}"),
    "adults_normal": ("adults normal", "{:.3f}"),
    "child_masks_broken": ("child masks broken", "{:.3f}"),
    "cross_acc": ("NIH acc", "{:.3f}"),
    "cross_f1_normal": ("NIH F1-N", "{:.3f}"),
    "cross_auroc": ("NIH AUROC", "{:.3f}"),
    "cross_acc_prior_em": ("NIH acc adapted", "{:.3f}"),
    "cross_f1_normal_prior_em": ("NIH F1-N adapted", "{:.3f}"),
    "cross_acc_score_mixture": ("NIH acc mixture", "{:.3f}"),
    "cross_f1_normal_score_mixture": ("NIH F1-N mixture", "{:.3f}"),
    "cross_acc_youden": ("NIH acc calibrated", "{:.3f}"),
    "cross_f1_normal_youden": ("NIH F1-N calibrated", "{:.3f}"),
    "cross_auroc_low": ("NIH AUROC CI low", "{:.3f}"),
    "cross_auroc_high": ("NIH AUROC CI high", "{:.3f}"),
    "cross_majority_acc": ("NIH majority acc", "{:.3f}"),
    "cross_dice": ("cross Dice", "{:.3f}"),
    "cross_dice_raw": ("cross Dice raw", "{:.3f}"),
    "cross_below_half": ("cross Dice<0.5", "{:.3f}"),
    "cross_hd95": ("cross HD95 px", "{:.1f}"),
    "shift_share_err_prior_em": ("shift share err EM", "{:.3f}"),
    "shift_share_err_score_mixture": ("shift share err mixture", "{:.3f}"),
    "shift_acc_gain_prior_em": ("shift acc gain EM", "{:+.3f}"),
    "shift_acc_gain_score_mixture": ("shift acc gain mixture", "{:+.3f}"),
    "shift_refused": ("shift refused", "{:.0f}"),
    "temperature": ("temperature", "{:.2f}"),
    "val_f1_normal_min": ("val F1-N min", "{:.3f}"),
    "train_minutes": ("train min", "{:.1f}"),
}
# columns where lower is better (the paired-difference table flips their sign for "gain")
LOWER_IS_BETTER = (
    "jsrt_hd95",
    "child_masks_broken",
    "cross_below_half",
    "cross_hd95",
    "shift_share_err_prior_em",
    "shift_share_err_score_mixture",
    "shift_refused",
    "train_minutes",
)


SCORES_OF = "scores_of"  # variants-file key: score another variant's runs with other inference settings


@dataclass(frozen=True)
class Variant:
    """One row of the development table: a name and the config overrides that make it.

    A variant with ``scores_of`` trains nothing of its own: it scores the runs of that variant
    (whose ``overrides`` are then ``trains_with``) with its own ``inference.*`` overrides, so
    evaluation-time choices (test-time flips, mask clean-up) are paired on the very same weights."""

    name: str
    overrides: dict[str, Any]
    scores_of: str | None = None
    trains_with: dict[str, Any] | None = None

    @property
    def trained_as(self) -> str:
        """The variant whose run folders this row reads."""
        return self.scores_of or self.name


def load_variants(path: str | Path, names: Sequence[str] | None = None) -> list[Variant]:
    """The variants of a YAML file ``{variants: {name: {section.key: value}}}``, in file order,
    or those of ``names`` in the order given.

    Raises:
        ValueError: the file has no ``variants`` mapping, or a name is not in it.
    """
    data = yaml.safe_load(Path(path).read_text()) or {}
    table = data.get("variants")
    if not isinstance(table, dict) or not table:
        raise ValueError(f"{path}: expected a 'variants:' mapping of name -> {{section.key: value}}")
    chosen = list(table) if not names else list(names)
    unknown = [n for n in chosen if n not in table]
    if unknown:
        raise ValueError(f"{path}: no variant {unknown}; available: {', '.join(table)}")
    return [_variant(path, name, table) for name in chosen]


def _variant(path: str | Path, name: str, table: dict[str, Any]) -> Variant:
    overrides = dict(table[name] or {})
    base = overrides.pop(SCORES_OF, None)
    if base is None:
        return Variant(name, overrides)
    if base not in table or (table[base] or {}).get(SCORES_OF):
        raise ValueError(f"{path}: variant {name!r}: scores_of {base!r} must name a variant that trains")
    not_inference = [k for k in overrides if not str(k).startswith("inference.")]
    if not_inference:
        raise ValueError(
            f"{path}: variant {name!r} scores the runs of {base!r}, so it may set inference.* keys only, "
            f"not {not_inference}"
        )
    return Variant(name, overrides, scores_of=base, trains_with=dict(table[base] or {}))


def seed_folder(out: Path, variant: str, seed: int) -> Path:
    """The run folder of one variant and seed."""
    return out / variant / f"seed{seed}"


def broken_mask_share(results: ImageResults) -> float | None:
    """Share of the predicted lung masks that are not exactly two solid regions."""
    if results.pred_regions is None or results.pred_holes is None or not len(results):
        return None
    return float(np.mean((results.pred_regions != 2) | (results.pred_holes > 0)))


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


FIGURE_IMAGES = (6, 2)  # held-out classification images, cross-domain images in child_masks.png


def figure_records(test: Sequence[Record], cross: Sequence[Record]) -> list[Record]:
    """The images every variant draws in ``child_masks.png``: held-out classification images
    (CheX: children) and cross-domain ones, a stable choice (hash of the uid)."""

    def first(records: Sequence[Record], k: int) -> list[Record]:
        return sorted(records, key=lambda r: zlib.crc32(r.uid.encode()))[:k]

    return first([r for r in test if r.has_label], FIGURE_IMAGES[0]) + first(cross, FIGURE_IMAGES[1])


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
        _save_samples(model, figure_records(test, cross), kw, Path(samples))
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


def _save_samples(model, records: list[Record], kw: dict[str, Any], path: Path) -> None:
    if not records:
        return
    kept = infer(model, records, full_metrics=False, keep=range(len(records)), **kw).samples
    np.savez_compressed(
        path,
        uids=np.array([r.uid for r in records]),
        images=np.stack([kept[i].image for i in range(len(records))]),
        masks=np.stack([_present(kept[i].prediction) for i in range(len(records))]),
    )


def _present(mask: np.ndarray | None) -> np.ndarray:
    if mask is None:
        raise ValueError("this model draws no lung masks")
    return mask


def child_mask_figure(rows: Sequence[dict[str, Any]], out: Path, *, seed: int = 0) -> Path | None:
    """``<out>/child_masks.png``: columns = variants (one seed), rows = the same held-out images."""
    samples = [(row["variant"], seed_folder(out, row["variant"], seed) / "dev_samples.npz") for row in rows]
    found = [(name, np.load(path)) for name, path in samples if path.exists()]
    if not found:
        return None
    first = found[0][1]
    same = [(name, data) for name, data in found if np.array_equal(data["uids"], first["uids"])]
    titles = [uid.split("/")[0] + " " + Path(str(uid)).stem[:14] for uid in first["uids"]]
    shape = first["masks"].shape[1:]
    return boundary_overlays(
        first["images"],
        np.zeros_like(first["masks"]),
        {name: _masks_at(d["masks"], shape) for name, d in same},
        out / "child_masks.png",
        row_titles=titles,
    )


def _masks_at(masks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``(N, h, w)`` masks at ``shape`` (nearest neighbour): variants trained at other sizes share one figure."""
    if masks.shape[1:] == shape:
        return masks
    return np.stack([resize(m.astype(np.float32), shape, order=0, anti_aliasing=False) >= 0.5 for m in masks])


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


def majority_accuracy(labels: np.ndarray) -> float:
    """The accuracy of calling every image the commoner class: what a model that ranks nothing scores."""
    counts = np.bincount(np.asarray(labels, dtype=int))
    return float(counts.max() / counts.sum())


def auroc_interval(probs: np.ndarray, labels: np.ndarray, prefix: str, *, seed: int = 0) -> dict[str, float]:
    """``{prefix}_auroc_low/high``: the 95% percentile-bootstrap interval of the AUROC (empty when undefined)."""
    y = np.asarray(labels, dtype=int)
    _, low, high = bootstrap_statistic_ci(lambda idx: binary_auroc(probs[idx], y[idx]), len(y), seed=seed)
    return {} if np.isnan(low) else {f"{prefix}_auroc_low": low, f"{prefix}_auroc_high": high}


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


def run_devloop(
    variants: Sequence[Variant],
    out: str | Path,
    *,
    base_config: str | Path,
    overrides: dict[str, Any],
    seeds: Sequence[int] = (0,),
    baseline: str | None = None,
    device: str = "auto",
    progress: bool = True,
    train: bool = True,
) -> list[dict[str, Any]]:
    """Train and score every variant with every seed (seeds outer, variants inner); writes
    ``<out>/<variant>/seed<k>/dev_scores.json``, ``<out>/scores.json`` (every run's row) and
    ``<out>/table.md`` (mean ± sd per variant, paired differences to ``baseline``; with ``table.csv`` and
    ``table.json``, each naming the command, commit, machine and date) after every run,
    and returns the per-run rows. ``train=False`` trains nothing: the table of the runs finished
    so far (a grid still running elsewhere, or one stopped for good)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if baseline is not None and baseline not in [v.name for v in variants]:
        raise ValueError(f"baseline {baseline!r} is not one of the variants run: {', '.join(v.name for v in variants)}")
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        for variant in variants:
            run_dir = seed_folder(out, variant.trained_as, seed)
            if not train and cell_state(run_dir) != "finished":
                continue
            trains_with = variant.overrides if variant.scores_of is None else (variant.trains_with or {})
            values = {**overrides, "train.seed": seed, **trains_with}
            train_or_resume(run_dir, base_config=base_config, values=values, progress=progress)
            rows.append(variant_row(variant, run_dir, seed=seed, device=device))
            atomic_write_text(out / "scores.json", json.dumps(rows, indent=2))
            write_result_files(out, "table", markdown=format_report(rows, baseline), records=rows)
    if not rows:
        raise ValueError(f"{out}: no finished run of these variants and seeds yet")
    child_mask_figure([r for r in rows if r["seed"] == seeds[0]], out, seed=seeds[0])
    return rows


def variant_row(variant: Variant, run_dir: Path, *, seed: int = 0, device: str = "auto") -> dict[str, Any]:
    """Scores of a finished run (computed once, then read from ``dev_scores.json``; a variant that
    scores another's runs keeps its own ``dev_scores-<variant>.json`` there)."""
    cached = run_dir / ("dev_scores.json" if variant.scores_of is None else f"dev_scores-{variant.name}.json")
    inference = variant.overrides if variant.scores_of is not None else None
    if cached.exists():
        return _with_added_columns(cached, run_dir / "checkpoints" / "best.pt", device, inference)
    started = time.perf_counter()
    summary = json.loads((run_dir / "summary.json").read_text())
    row: dict[str, Any] = {"variant": variant.name, "seed": seed, "overrides": variant.overrides}
    samples = run_dir / "dev_samples.npz" if variant.scores_of is None else None
    row.update(
        score_checkpoint(run_dir / "checkpoints" / "best.pt", device=device, samples=samples, inference=inference)
    )
    lowest = lowest_validation(run_dir, "f1_normal")
    if lowest is not None:
        row["val_f1_normal_min"] = lowest
    row["train_minutes"] = summary["wall_seconds"] / 60
    row["best_step"] = summary.get("best_step")
    row["score_seconds"] = round(time.perf_counter() - started, 1)
    atomic_write_text(cached, json.dumps(row, indent=2))
    return row


def _with_added_columns(
    cached: Path, checkpoint: Path, device: str, inference: dict[str, Any] | None
) -> dict[str, Any]:
    """A cached row, with the columns added since it was scored computed now and cached too."""
    found: dict[str, Any] = json.loads(cached.read_text())
    if "in_acc" in found and "shift_refused" not in found:  # scored before the prior-shift columns
        found.update(prior_shift_scores(checkpoint, device=device, inference=inference))
        atomic_write_text(cached, json.dumps(found, indent=2))
    return found


def lowest_validation(run_dir: Path, metric: str) -> float | None:
    """The lowest validation ``metric`` of a run after its supervised warm-up
    (``method.supervised_warmup_steps``; every validation when there is none), from ``metrics.jsonl``."""
    cfg = load_config(run_dir / "config.yaml")
    warmup = cfg.method.supervised_warmup_steps
    values = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry.get("phase") == "val" and metric in entry and entry["step"] > warmup:
            values.append(float(entry[metric]))
    return min(values) if values else None


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table: one row per run, the columns of :data:`COLUMNS` that any row has."""
    keys = [k for k in COLUMNS if any(k in row for row in rows)]
    lines = ["| variant | " + " | ".join(COLUMNS[k][0] for k in keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for row in rows:
        cells = [COLUMNS[k][1].format(row[k]) if row.get(k) is not None else "-" for k in keys]
        name = row["variant"] + (f" (seed {row['seed']})" if "seed" in row else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _by_variant(rows: Sequence[dict[str, Any]]) -> dict[str, dict[int, dict[str, Any]]]:
    grouped: dict[str, dict[int, dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["variant"], {})[int(row.get("seed", 0))] = row
    return grouped


def summary_table(rows: Sequence[dict[str, Any]]) -> str:
    """Mean ± sd over seeds per variant (``val F1-N min``: the lowest over every seed)."""
    grouped = _by_variant(rows)
    keys = [k for k in COLUMNS if any(k in row for row in rows)]
    lines = ["| variant | seeds | " + " | ".join(COLUMNS[k][0] for k in keys) + " |", "|---" * (len(keys) + 2) + "|"]
    for name, runs in grouped.items():
        cells = []
        for key in keys:
            values = [float(r[key]) for r in runs.values() if r.get(key) is not None]
            if key == "val_f1_normal_min":
                cells.append(COLUMNS[key][1].format(min(values)) if values else "-")
            else:
                cells.append(mean_sd_text(values, COLUMNS[key][1]))
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_differences(rows: Sequence[dict[str, Any]], baseline: str) -> dict[str, dict[str, list[float]]]:
    """Per variant and column, the differences to ``baseline`` on the seeds both have."""
    grouped = _by_variant(rows)
    base = grouped.get(baseline, {})
    return {
        name: {
            key: seed_differences({s: r.get(key) for s, r in runs.items()}, {s: r.get(key) for s, r in base.items()})
            for key in COLUMNS
        }
        for name, runs in grouped.items()
        if name != baseline
    }


def paired_table(rows: Sequence[dict[str, Any]], baseline: str) -> str:
    """Paired difference to ``baseline`` per column (mean ± sd over the shared seeds); a cell is
    **bold** where the mean difference is larger than its spread (sd) in the better direction,
    *italic* where it is larger in the worse direction; the rest is noise."""
    diffs = paired_differences(rows, baseline)
    keys = [k for k in COLUMNS if k != "val_f1_normal_min" and any(d.get(k) for d in diffs.values())]
    lines = [
        f"| vs {baseline} | seeds | " + " | ".join(COLUMNS[k][0] for k in keys) + " |",
        "|---" * (len(keys) + 2) + "|",
    ]
    for name, columns in diffs.items():
        seeds = max((len(v) for v in columns.values()), default=0)
        cells = []
        for key in keys:
            values = columns.get(key, [])
            if not values:
                cells.append("-")
                continue
            mean = float(np.mean(values))
            text = mean_sd_text(values, COLUMNS[key][1], signed=True)
            better = -mean if key in LOWER_IS_BETTER else mean
            if is_beyond_spread(values):
                text = f"**{text}**" if better > 0 else f"*{text}*"
            cells.append(text)
        lines.append(f"| {name} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_report(rows: Sequence[dict[str, Any]], baseline: str | None = None) -> str:
    """``table.md``: mean ± sd per variant, paired differences to ``baseline``, then every run."""
    parts = [
        "Mean ± sd over seeds (val F1-N min: lowest over every validation after the warm-up, every seed)",
        "",
        summary_table(rows),
    ]
    if baseline is not None and len(_by_variant(rows)) > 1:
        parts += [
            "",
            f"Paired difference to {baseline} (bold: gain larger than its spread; italic: loss larger than its spread)",
            "",
            paired_table(rows, baseline),
        ]
    parts += ["", "Every run", "", format_table(rows)]
    return "\n".join(parts)


def variant_config(variant: Variant, base_config: str | Path, overrides: dict[str, Any]) -> Config:
    """The config a variant trains with (for checking a variants file before a long run)."""
    return load_config(base_config, {**overrides, **(variant.trains_with or {}), **variant.overrides})
