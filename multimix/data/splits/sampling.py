"""Seeded, class-stratified, patient-grouped choices: the labeled examples of a pool
(:func:`select_labeled`) and the held-out parts of a source (:func:`holdout`)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np

from multimix.data.records import Record
from multimix.data.splits.budgets import Budget, resolve_budget, round_half_up

OFFICIAL_SPLITS = ("train", "val", "test")


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
    targets = {"test": round_half_up(test_fraction * len(free))}
    targets["val"] = round_half_up(val_fraction * len(free))
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
