"""Stratified, patient-grouped K-fold cross-validation of a run configuration (``multimix cv``).

The labeled images of the classification pool are cut into K folds, stratified by class and
grouped by patient (a patient's images are in one fold). Fold k is that run's in-domain
classification test set; the other folds are its training pool, from which the label budget is
drawn (so no test image is ever a training image, labeled or not). The segmentation pool, the
validation images, the segmentation sources' test images and the cross-domain sets are those of
the configuration, the same for every fold (less the fold's test images where one table holds
both masks and labels; the extra unlabeled images likewise). Every fold is an ordinary run in
``<out>/fold<k>/`` (trained from a split file in ``<out>/splits/``), so a stopped
cross-validation resumes; the table
(mean ± sd over folds, then one row per fold) goes to ``<out>/cv_table.md`` (with ``cv_table.csv`` and
``cv_table.json``, naming the command, commit, machine and date) and the fold rows to ``<out>/cv.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from multimix.config import Config, load_config, save_config
from multimix.data.pools import DataPools, build_pools
from multimix.data.records import Record
from multimix.data.splits import Split, build_split, with_extra_unlabeled
from multimix.evaluation.tables import mean_sd_text, write_result_files
from multimix.runs.folder import config_changes
from multimix.runs.grid import train_or_resume
from multimix.utils.atomic import atomic_write_text

DOMAINS = ("in_domain", "cross_domain")


def fold_members(records: list[Record], folds: int, seed: int) -> list[list[Record]]:
    """``records`` (labeled) in ``folds`` parts, stratified by label, grouped by patient (an image
    without a patient id is its own patient)."""
    if folds < 2:
        raise ValueError(f"--folds must be at least 2, got {folds}")
    labels = np.array([r.label for r in records])
    counts = np.bincount(labels) if len(labels) else np.array([])
    if len(records) < folds or (counts[counts > 0] < folds).any():
        raise ValueError(
            f"{folds} folds need at least {folds} labeled images of every class; "
            f"the classification pool has {dict(enumerate(counts.tolist()))}"
        )
    groups = [r.patient_id or r.uid for r in records]
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [[records[i] for i in test] for _, test in splitter.split(np.zeros(len(records)), labels, groups)]


def fold_splits(cfg: Config, pools: DataPools, folds: int) -> list[Split]:
    """One split per fold (see the module docstring)."""
    labeled = [r for r in pools.cls_pool if r.has_label]
    unlabeled = [r for r in pools.cls_pool if not r.has_label]
    cls_sources = {r.source for r in pools.cls_pool}
    seg_test = [r for r in pools.test if r.source not in cls_sources]
    splits = []
    for k, held_out in enumerate(fold_members(labeled, folds, cfg.train.seed)):
        test_uids = {r.uid for r in held_out}
        train_pool = [r for r in labeled if r.uid not in test_uids] + unlabeled
        # one table may hold masks and labels: a fold's test images leave the segmentation pool too
        seg_pool = [r for r in pools.seg_pool if r.uid not in test_uids]
        split = build_split(
            seg_pool,
            train_pool,
            seg_budget=cfg.data.seg_labels,
            cls_budget=cfg.data.cls_labels,
            seed=cfg.train.seed,
            val=pools.val,
            test=seg_test + held_out,
            cross=pools.cross,
            exclude_labeled_from_unlabeled=cfg.data.exclude_labeled_from_unlabeled,
        )
        split = with_extra_unlabeled(split, [r.uid for r in pools.extra_unlabeled if r.uid not in test_uids])
        split.meta.update({"fold": k, "folds": folds, "fold_test_images": len(held_out)})
        splits.append(split)
    return splits


def run_cv(cfg: Config, folds: int, out: str | Path, *, progress: bool = True) -> list[dict[str, Any]]:
    """Train every fold (skipping finished ones), write and return the per-fold rows."""
    out = Path(out)
    check_continuable(cfg, folds, out)
    paths = [out / "splits" / f"fold{k}.json" for k in range(folds)]
    if not all(p.exists() for p in paths):  # drawn once: a resumed cross-validation keeps its folds
        splits = fold_splits(cfg, build_pools(cfg, progress=progress), folds)  # a refusal here writes nothing
        (out / "splits").mkdir(parents=True, exist_ok=True)
        for split, path in zip(splits, paths, strict=True):
            split.save(path)
    save_config(cfg, out / "config.yaml")
    rows = []
    for k, path in enumerate(paths):
        run_dir = train_or_resume(
            out / f"fold{k}", base_config=out / "config.yaml", values={"data.split_file": str(path)}, progress=progress
        )
        summary = json.loads((run_dir / "summary.json").read_text())
        rows.append({"fold": k, **{d: summary.get(d) or {} for d in DOMAINS}, "best_step": summary.get("best_step")})
        atomic_write_text(out / "cv.json", json.dumps(rows, indent=2))
    write_result_files(out, "cv_table", markdown=cv_table(rows), records=[_flat(r) for r in rows])
    return rows


def check_continuable(cfg: Config, folds: int, out: Path) -> None:
    """Refuse to continue a cross-validation in ``out`` with other folds or other settings: its
    finished folds were trained with the config it holds, and unfinished ones would not be."""
    drawn = sorted((out / "splits").glob("fold*.json"))
    if not (out / "config.yaml").exists() or not drawn:  # nothing drawn, so nothing trained under it
        return
    if drawn and len(drawn) != folds:
        raise ValueError(
            f"{out} holds a {len(drawn)}-fold cross-validation; pass --folds {len(drawn)} or another --out"
        )
    changes = config_changes(load_config(out / "config.yaml"), cfg)
    if changes:
        raise ValueError(
            f"cannot continue the cross-validation in {out}: {changes}. Continue it with the same settings, "
            "or choose another --out (nothing was written)"
        )


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    """A fold's row with one column per domain and metric (``in_domain/accuracy``)."""
    flat = {"fold": row["fold"], "best_step": row.get("best_step")}
    for domain in DOMAINS:
        flat |= {f"{domain}/{metric}": value for metric, value in (row.get(domain) or {}).items()}
    return flat


def cv_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: mean ± sd over folds per domain and metric, then one row per fold."""
    columns = [(d, m) for d in DOMAINS for m in dict.fromkeys(k for r in rows for k in r.get(d, {}))]
    header = "| | " + " | ".join(f"{d.replace('_', '-')} {m}" for d, m in columns) + " |"
    rule = "|---" * (len(columns) + 1) + "|"
    lines = [header, rule]

    def values(d: str, m: str) -> list[float]:
        return [r[d][m] for r in rows if isinstance(r.get(d, {}).get(m), float | int)]

    cells = []
    for d, m in columns:
        v = values(d, m)
        cells.append(mean_sd_text(v) if len(v) > 1 else "-")
    lines.append(f"| mean ± sd ({len(rows)} folds) | " + " | ".join(cells) + " |")
    for r in rows:
        shown = [f"{r[d][m]:.3f}" if m in r.get(d, {}) else "-" for d, m in columns]
        lines.append(f"| fold {r['fold']} | " + " | ".join(shown) + " |")
    return "\n".join(lines)
