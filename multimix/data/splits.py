"""Label budgets, patient-grouped selection of labeled examples, and saved split files.

Vocabulary
    *budget*: how many examples get their label/mask used for training. Given as an int count,
    a percentage string (``"5%"``), or ``None`` / ``"all"`` for the whole pool.
    *group*: a patient id. Whenever groups are used, all images of one patient land on the same
    side (labeled vs unlabeled, or train vs val vs test), so no patient leaks across. An empty
    or ``None`` patient id means "unknown" and the image is treated as its own patient.

Selection rule with groups (``select_labeled``)
    The budget counts images. Per-stratum image quotas are computed first (largest-remainder
    rounding of the budget over class frequencies; see ``_quotas``). Patients are then visited
    in a seeded random order and taken whole when all their images fit in the remaining per-class
    quotas. A second pass over the leftover patients (same order) takes any patient that still
    fits in the *total* budget, trading a little class balance for getting closer to the budget.
    The budget is never exceeded; when it is not met exactly, every unselected patient has more
    images than the shortfall. Without groups every image is its own patient, so quotas and the
    budget are met exactly.
"""

from __future__ import annotations

import json
import math
import os
import re
import zlib
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from multimix.data.records import Record
from multimix.utils.atomic import atomic_write_text

__all__ = [
    "Split",
    "SplitFileError",
    "TaskSplit",
    "build_split",
    "holdout",
    "parse_budget",
    "resolve_budget",
    "select_labeled",
]

Budget = int | float | str | None
OFFICIAL_SPLITS = ("train", "val", "test")
SPLIT_FORMAT_VERSION = 1

_PERCENT = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*%$")


# --------------------------------------------------------------------------- budgets


def parse_budget(value: Budget) -> int | float | None:
    """Normalise a label budget.

    Returns an ``int`` count, a ``float`` fraction in ``[0, 1]``, or ``None`` meaning "all".
    Accepts ints (``10``), digit strings (``"10"``), percentages (``"5%"`` -> ``0.05``),
    ``"all"`` / ``None``, and floats in ``[0, 1]`` (already a fraction).

    Raises:
        ValueError: for negative numbers, percentages above 100, floats outside ``[0, 1]``,
            booleans, or unparseable text; the message quotes the offending value.
    """
    if value is None:
        return None
    if isinstance(value, bool):  # bool is an int subclass; True as "1 label" is surely a bug
        raise ValueError(f"label budget must be a count, 'N%' or 'all', got {value!r}")
    if isinstance(value, (int, np.integer)):
        if value < 0:
            raise ValueError(f"label budget must be >= 0, got {value!r}")
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"a float label budget is a fraction in [0, 1], got {value!r}; use an int count or 'N%'")
        return float(value)
    if isinstance(value, str):
        return _parse_budget_text(value)
    raise ValueError(f"label budget must be an int, 'N%', 'all' or None, got {value!r}")


def _parse_budget_text(value: str) -> int | float | None:
    text = value.strip().lower()
    if text == "all":
        return None
    if text.isdigit():
        return int(text)
    match = _PERCENT.match(text)
    if match and float(match.group(1)) <= 100.0:
        return float(match.group(1)) / 100.0
    raise ValueError(
        f"invalid label budget {value!r}: expected a non-negative count ('10'), a percentage up to 100 ('5%') or 'all'"
    )


def resolve_budget(budget: Budget, pool_size: int) -> int:
    """Turn a budget (anything :func:`parse_budget` accepts) into an image count for a pool.

    ``None``/"all" -> ``pool_size``; a fraction -> ``fraction * pool_size`` rounded half up
    (not Python's banker's rounding, so ``"50%"`` of 5 is 3); an int must not exceed the pool.

    Raises:
        ValueError: if a count exceeds ``pool_size`` (message names both) or the budget is invalid.
    """
    if pool_size < 0:
        raise ValueError(f"pool_size must be >= 0, got {pool_size}")
    parsed = parse_budget(budget)
    if parsed is None:
        return pool_size
    if isinstance(parsed, float):
        return _round_half_up(parsed * pool_size)
    if parsed > pool_size:
        raise ValueError(f"label budget {parsed} exceeds the pool size {pool_size}")
    return parsed


# --------------------------------------------------------------------------- selection


def _quotas(strata: Sequence[Hashable], k: int) -> dict[Hashable, int]:
    """Per-stratum counts summing to ``k``, proportional to stratum sizes.

    Largest-remainder rounding; ties go to the larger stratum, then to the first seen. When
    ``k`` >= number of strata every stratum gets at least one, taken from the stratum with the
    largest quota (so e.g. a 95/5 pool with budget 10 yields 9/1, not 10/0).
    """
    counts = Counter(strata)  # insertion order = first appearance, keeps ties deterministic
    n = sum(counts.values())
    if n == 0 or k == 0:
        return dict.fromkeys(counts, 0)
    exact = {s: k * c / n for s, c in counts.items()}
    quota = {s: math.floor(e) for s, e in exact.items()}
    order = list(counts)
    by_remainder = sorted(order, key=lambda s: (-(exact[s] - quota[s]), -counts[s], order.index(s)))
    for s in by_remainder[: k - sum(quota.values())]:
        quota[s] += 1
    if k >= len(counts):
        for s in order:
            if quota[s] == 0:
                donor = max(order, key=lambda d: (quota[d], -order.index(d)))
                quota[donor] -= 1
                quota[s] = 1
    return quota


def _group_keys(groups: Sequence[str | None] | None, n: int) -> list[Hashable]:
    """One hashable key per item; unknown ('' / None) patient ids become singleton groups."""
    if groups is None:
        return [("item", i) for i in range(n)]
    if len(groups) != n:
        raise ValueError(f"groups has {len(groups)} entries but labels has {n}")
    return [("item", i) if g is None or g == "" else ("group", str(g)) for i, g in enumerate(groups)]


def _pick_groups(
    strata: Sequence[Hashable],
    group_keys: Sequence[Hashable],
    quota: dict[Hashable, int],
    rng: np.random.Generator,
) -> list[int]:
    """Whole groups in random order under per-stratum quotas, then under the total (module doc)."""
    members: dict[Hashable, list[int]] = {}
    for i, g in enumerate(group_keys):
        members.setdefault(g, []).append(i)
    groups = list(members.values())
    order = [groups[j] for j in rng.permutation(len(groups))]
    left = Counter(quota)
    total_left = sum(quota.values())
    chosen: list[int] = []
    for per_stratum in (True, False):
        remaining = []
        for group in order:
            need = Counter(strata[i] for i in group)
            fits = len(group) <= total_left and (not per_stratum or all(c <= left[s] for s, c in need.items()))
            if fits:
                chosen.extend(group)
                total_left -= len(group)
                left.subtract(need)
            else:
                remaining.append(group)
        order = remaining
    return sorted(chosen)


def select_labeled(
    labels: Sequence[int | None],
    budget: Budget,
    *,
    seed: int,
    groups: Sequence[str | None] | None = None,
    stratify: bool = True,
) -> list[int]:
    """Choose which pool items get labeled; returns sorted indices into ``labels``.

    Args:
        labels: class index per item, or ``None`` where unknown.
        budget: count / "N%" / "all" (see :func:`parse_budget`), in images.
        seed: makes the choice deterministic; different seeds give different choices.
        groups: patient id per item. When given, patients are never split between labeled and
            unlabeled; the budget is then met as closely as possible without exceeding it
            (rule in the module doc). ``''``/``None`` ids count as single-image patients.
        stratify: keep class proportions (largest-remainder rounding; at least one per class
            when the budget allows). ``None`` labels form their own stratum; if every label is
            ``None`` the selection is plain random.

    Raises:
        ValueError: invalid budget, budget above ``len(labels)``, or ``groups`` of wrong length.
    """
    n = len(labels)
    k = resolve_budget(budget, n)
    keys = _group_keys(groups, n)
    use_strata = stratify and any(lab is not None for lab in labels)
    strata: list[Hashable] = list(labels) if use_strata else [None] * n
    rng = np.random.default_rng(seed)
    return _pick_groups(strata, keys, _quotas(strata, k), rng)


# --------------------------------------------------------------------------- holdout


def _patient_key(record: Record) -> Hashable:
    return ("group", record.patient_id) if record.patient_id else ("uid", record.uid)


def _official_of_patients(records: Sequence[Record]) -> dict[Hashable, str]:
    """Patient -> official split; a patient in several official splits maps to the most
    held-out one (test > val > train) so its unassigned images cannot leak into training."""
    rank = {"test": 0, "val": 1, "train": 2}
    found: dict[Hashable, str] = {}
    for r in records:
        if r.split in rank:
            key = _patient_key(r)
            if key not in found or rank[r.split] < rank[found[key]]:
                found[key] = r.split
    return found


def holdout(
    records: Sequence[Record], *, val_fraction: float, test_fraction: float, seed: int
) -> tuple[list[Record], list[Record], list[Record]]:
    """Partition records into (train, val, test), grouped by patient, stratified by label.

    Records whose ``split`` is already "train"/"val"/"test" (an official split) keep it, and
    unassigned images of such a patient follow that patient's official split. The remaining
    records are split so val/test get ``fraction * len(remaining)`` images (rounded half up; never
    more, possibly fewer because patients are kept whole), the rest go to train. Input order is
    preserved within each part.

    Raises:
        ValueError: fractions negative or summing to 1 or more.
    """
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise ValueError(f"need val_fraction, test_fraction >= 0 with sum < 1, got {val_fraction}, {test_fraction}")
    official = _official_of_patients(records)
    assigned: list[str | None] = [
        r.split if r.split in OFFICIAL_SPLITS else official.get(_patient_key(r)) for r in records
    ]
    free = [i for i, a in enumerate(assigned) if a is None]
    targets = {"test": _round_half_up(test_fraction * len(free))}
    targets["val"] = _round_half_up(val_fraction * len(free))
    rng = np.random.default_rng(seed)
    for name in ("test", "val"):
        pool = [i for i in free if assigned[i] is None]
        strata = [records[i].label for i in pool]
        keys = [_patient_key(records[i]) for i in pool]
        quota = _quotas(strata, min(targets[name], len(pool)))
        for j in _pick_groups(strata, keys, quota, rng):
            assigned[pool[j]] = name
    parts: dict[str, list[Record]] = {s: [] for s in OFFICIAL_SPLITS}
    for r, a in zip(records, assigned, strict=True):
        parts[a or "train"].append(r)
    return parts["train"], parts["val"], parts["test"]


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


# --------------------------------------------------------------------------- split files


class SplitFileError(ValueError):
    """A split file (or dict) is missing, unreadable, or lacks required content."""


@dataclass
class TaskSplit:
    """Labeled and unlabeled record uids of one task's training pool."""

    labeled: list[str]
    unlabeled: list[str]


@dataclass
class Split:
    """Everything that defines one experiment's data: per-task pools plus evaluation sets.

    ``cross`` holds cross-domain evaluation uids (sources never trained on). ``meta`` records
    how the split was made (seed, budgets as given and resolved, pool sizes, options) and must
    be JSON-serialisable.
    """

    seg: TaskSplit
    cls: TaskSplit
    val: list[str]
    test: list[str]
    cross: list[str]
    meta: dict = field(default_factory=dict)

    def all_uids(self) -> list[str]:
        """Every uid the split names, training pools and held-out sets, in order."""
        return [
            *self.seg.labeled,
            *self.seg.unlabeled,
            *self.cls.labeled,
            *self.cls.unlabeled,
            *self.val,
            *self.test,
            *self.cross,
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON representation (inverse of :meth:`from_dict`)."""
        return {
            "version": SPLIT_FORMAT_VERSION,
            "seg": {"labeled": list(self.seg.labeled), "unlabeled": list(self.seg.unlabeled)},
            "cls": {"labeled": list(self.cls.labeled), "unlabeled": list(self.cls.unlabeled)},
            "val": list(self.val),
            "test": list(self.test),
            "cross": list(self.cross),
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Split:
        """Rebuild a split from :meth:`to_dict` output.

        Raises:
            SplitFileError: not a dict, a key is missing, or a uid list is not a list of str.
        """
        if not isinstance(d, dict):
            raise SplitFileError(f"split must be a JSON object, got {type(d).__name__}")
        tasks = {name: TaskSplit(*_task_lists(d, name)) for name in ("seg", "cls")}
        lists = {name: _uid_list(_require(d, name), name) for name in ("val", "test", "cross")}
        meta = d.get("meta", {})
        if not isinstance(meta, dict):
            raise SplitFileError(f"split key 'meta' must be an object, got {type(meta).__name__}")
        return cls(seg=tasks["seg"], cls=tasks["cls"], meta=dict(meta), **lists)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the split as JSON atomically (temp file in the same folder, fsync, replace).

        Readers never see a half-written file, and a crash leaves the old file intact.
        """
        target = Path(path)
        text = json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"  # fail before I/O
        atomic_write_text(target, text)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Split:
        """Read a split saved by :meth:`save`.

        Raises:
            FileNotFoundError: the file does not exist (message names it).
            SplitFileError: the file is not valid JSON or lacks required keys (message names it).
        """
        target = Path(path)
        try:
            text = target.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(f"split file not found: {target}") from None
        try:
            return cls.from_dict(json.loads(text))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise SplitFileError(f"split file {target} is not valid JSON: {err}") from err
        except SplitFileError as err:
            raise SplitFileError(f"split file {target}: {err}") from err


def _require(d: dict[str, Any], key: str, where: str = "") -> Any:
    if key not in d:
        raise SplitFileError(f"missing required key {where + key!r}")
    return d[key]


def _task_lists(d: dict[str, Any], name: str) -> tuple[list[str], list[str]]:
    task = _require(d, name)
    if not isinstance(task, dict):
        raise SplitFileError(f"key {name!r} must be an object with 'labeled' and 'unlabeled'")
    labeled, unlabeled = (_uid_list(_require(task, k, f"{name}."), f"{name}.{k}") for k in ("labeled", "unlabeled"))
    return labeled, unlabeled


def _uid_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
        raise SplitFileError(f"key {where!r} must be a list of uid strings")
    return list(value)


# --------------------------------------------------------------------------- build_split


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
