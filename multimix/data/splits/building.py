"""A run's split from its pools: budgets resolved, labeled examples chosen per task."""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from multimix.data.records import Record
from multimix.data.splits.budgets import Budget, parse_budget, resolve_budget
from multimix.data.splits.sampling import select_labeled
from multimix.data.splits.split_file import SPLIT_FORMAT_VERSION, Split, TaskSplit


def _task_seed(seed: int, task: str) -> int:
    # Independent streams per task: the seg choice must not change when the cls budget does.
    return int(np.random.SeedSequence([seed, zlib.crc32(task.encode())]).generate_state(1)[0])


def _json_budget(budget: Budget) -> Budget:
    if isinstance(budget, np.integer):
        return int(budget)
    if isinstance(budget, np.floating):
        return float(budget)
    return budget


def _check_uids(pools: dict[str, Sequence[Record]], evals: dict[str, Sequence[Record]]) -> None:
    """Reject duplicate uids in a set and evaluation records that are also training records."""
    for name, recs in {**pools, **evals}.items():
        dupes = [u for u, c in Counter(r.uid for r in recs).items() if c > 1]
        if dupes:
            raise ValueError(f"duplicate uids in {name}: {dupes[:5]}")
    train_uids = {r.uid for recs in pools.values() for r in recs}
    for name, recs in evals.items():
        leaked = [r.uid for r in recs if r.uid in train_uids]
        if leaked:
            raise ValueError(f"{name} records are also in a training pool: {leaked[:5]}")
    both = {r.uid for r in evals.get("val", ())} & {r.uid for r in evals.get("test", ())}
    if both:
        raise ValueError(f"records in both val and test: {sorted(both)[:5]}")


def _select_task(
    task: str, pool: Sequence[Record], budget: Budget, seed: int, *, stratify: bool
) -> tuple[list[Record], int]:
    """Labeled records of one task among ``pool`` (already filtered to usable candidates)."""
    parsed = parse_budget(budget)
    if isinstance(parsed, int) and parsed > len(pool):
        what = "records with a mask" if task == "seg" else "records with a label"
        if not pool:
            raise ValueError(f"{task} budget {budget!r} > 0 but the {task} pool has no {what}")
        raise ValueError(f"{task} budget {budget!r} exceeds the {task} pool of {len(pool)} {what}")
    labels = [r.label for r in pool] if stratify else [None] * len(pool)
    idx = select_labeled(
        labels,
        parsed,
        seed=_task_seed(seed, task),
        groups=[r.patient_id for r in pool],
        stratify=stratify,
    )
    return [pool[i] for i in idx], resolve_budget(parsed, len(pool))


def build_split(
    seg_pool: Sequence[Record],
    cls_pool: Sequence[Record],
    *,
    seg_budget: Budget,
    cls_budget: Budget,
    seed: int,
    val: Sequence[Record] = (),
    test: Sequence[Record] = (),
    cross: Sequence[Record] = (),
    exclude_labeled_from_unlabeled: bool = True,
) -> Split:
    """Build the experiment split from training pools and evaluation sets.

    Segmentation labeled records are drawn at random among ``seg_pool`` records with a mask;
    classification labeled records among ``cls_pool`` records with a label, stratified by class.
    Both are grouped by ``patient_id`` (see :func:`select_labeled`), so a labeled count may fall
    slightly below the budget; ``meta`` holds the resolved budget and the actual count. Each
    task's unlabeled list is the rest of its pool (including records without mask/label), or
    the whole pool when ``exclude_labeled_from_unlabeled`` is False (FixMatch-style training
    also applies the unlabeled loss to labeled images). The two tasks use independent seeded
    streams derived from ``seed``.

    Raises:
        ValueError: a budget larger than its pool (names task, budget and pool size), a positive
            budget on an empty pool, duplicate uids, or val/test/cross records that are also in
            a training pool (or in both val and test).
    """
    _check_uids({"seg_pool": seg_pool, "cls_pool": cls_pool}, {"val": val, "test": test, "cross": cross})
    seg_candidates = [r for r in seg_pool if r.has_mask]
    cls_candidates = [r for r in cls_pool if r.has_label]
    seg_labeled, seg_k = _select_task("seg", seg_candidates, seg_budget, seed, stratify=False)
    cls_labeled, cls_k = _select_task("cls", cls_candidates, cls_budget, seed, stratify=True)
    meta = {
        "format_version": SPLIT_FORMAT_VERSION,
        "seed": seed,
        "seg_budget": _json_budget(seg_budget),
        "cls_budget": _json_budget(cls_budget),
        "seg_budget_resolved": seg_k,
        "cls_budget_resolved": cls_k,
        "seg_labeled_count": len(seg_labeled),
        "cls_labeled_count": len(cls_labeled),
        "seg_pool_size": len(seg_pool),
        "cls_pool_size": len(cls_pool),
        "seg_candidates": len(seg_candidates),
        "cls_candidates": len(cls_candidates),
        "cls_labeled_class_counts": _class_counts(cls_labeled),
        "grouped_by": "patient_id",
        "exclude_labeled_from_unlabeled": exclude_labeled_from_unlabeled,
    }
    return Split(
        seg=_task_split(seg_pool, seg_labeled, exclude_labeled_from_unlabeled),
        cls=_task_split(cls_pool, cls_labeled, exclude_labeled_from_unlabeled),
        val=[r.uid for r in val],
        test=[r.uid for r in test],
        cross=[r.uid for r in cross],
        meta=meta,
    )


def _class_counts(records: Sequence[Record]) -> dict[str, int]:
    counts = Counter(str(r.label) for r in records)
    return dict(sorted(counts.items()))


def _task_split(pool: Sequence[Record], labeled: Sequence[Record], exclude: bool) -> TaskSplit:
    labeled_uids = {r.uid for r in labeled}
    unlabeled = [r.uid for r in pool if not (exclude and r.uid in labeled_uids)]
    return TaskSplit(labeled=[r.uid for r in pool if r.uid in labeled_uids], unlabeled=unlabeled)


def with_extra_unlabeled(split: Split, uids: Sequence[str]) -> Split:
    """``split`` with ``uids`` added to both tasks' unlabeled lists (where not already there);
    ``meta["extra_unlabeled"]`` counts them. Their labels and masks are never used."""
    if not uids:
        return split

    def extended(task: TaskSplit) -> TaskSplit:
        present = {*task.unlabeled, *task.labeled}
        return TaskSplit(
            labeled=list(task.labeled), unlabeled=[*task.unlabeled, *(u for u in uids if u not in present)]
        )

    return replace(
        split, seg=extended(split.seg), cls=extended(split.cls), meta={**split.meta, "extra_unlabeled": len(uids)}
    )
