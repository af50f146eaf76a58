"""Tests for multimix.data.splits."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from multimix.data.records import Record
from multimix.data.splits import (
    Split,
    SplitFileError,
    TaskSplit,
    build_split,
    holdout,
    parse_budget,
    resolve_budget,
    select_labeled,
)

# --------------------------------------------------------------------------- budgets


@pytest.mark.parametrize(
    "value, expected",
    [
        ("10", 10),
        (10, 10),
        (0, 0),
        (" 7 ", 7),
        (np.int64(3), 3),
        ("all", None),
        ("ALL", None),
        (None, None),
        ("5%", 0.05),
        ("12.5%", 0.125),
        ("100%", 1.0),
        (0.25, 0.25),
    ],
)
def test_parse_budget_valid(value, expected) -> None:
    assert parse_budget(value) == expected


@pytest.mark.parametrize("value", ["-3", -3, "ten", "", "5 percent", "150%", "-5%", 1.5, True, [1]])
def test_parse_budget_invalid_names_value(value) -> None:
    with pytest.raises(ValueError) as err:
        parse_budget(value)
    assert repr(value) in str(err.value)


def test_resolve_budget() -> None:
    assert resolve_budget(None, 40) == 40
    assert resolve_budget("all", 40) == 40
    assert resolve_budget("10%", 40) == 4
    assert resolve_budget("50%", 5) == 3  # half up, not banker's rounding
    assert resolve_budget(40, 40) == 40
    with pytest.raises(ValueError, match=r"41.*40"):
        resolve_budget(41, 40)


# --------------------------------------------------------------------------- select_labeled


def _labels(n_normal: int, n_pneumonia: int, seed: int = 0) -> list[int]:
    labels = [0] * n_normal + [1] * n_pneumonia
    np.random.default_rng(seed).shuffle(labels)
    return labels


def test_select_counts_exact_and_stratified() -> None:
    labels = _labels(75, 25)
    idx = select_labeled(labels, 20, seed=0)
    assert len(idx) == 20 and idx == sorted(idx) and len(set(idx)) == 20
    assert Counter(labels[i] for i in idx) == {0: 15, 1: 5}


def test_select_largest_remainder_and_minimum_one_per_class() -> None:
    labels = _labels(60, 40)
    assert Counter(labels[i] for i in select_labeled(labels, 5, seed=1)) == {0: 3, 1: 2}
    rare = _labels(97, 3)
    assert Counter(rare[i] for i in select_labeled(rare, 10, seed=1)) == {0: 9, 1: 1}


def test_select_fraction_and_all() -> None:
    labels = _labels(30, 10)
    assert len(select_labeled(labels, "25%", seed=0)) == 10
    assert select_labeled(labels, None, seed=0) == list(range(40))


def test_select_deterministic_by_seed_and_varies_across_seeds() -> None:
    labels = _labels(75, 25)
    a = select_labeled(labels, 20, seed=7)
    assert a == select_labeled(labels, 20, seed=7)
    assert a != select_labeled(labels, 20, seed=8)


def test_select_unlabeled_pool_is_plain_random() -> None:
    idx = select_labeled([None] * 50, 12, seed=0)
    assert len(idx) == 12
    assert select_labeled([None] * 50, 12, seed=0, stratify=False) == idx


def test_select_budget_too_large() -> None:
    with pytest.raises(ValueError, match=r"11.*10"):
        select_labeled([0] * 10, 11, seed=0)


def _patients(n_patients: int, seed: int = 0) -> tuple[list[int], list[str]]:
    """1-4 images per patient; a patient's images share its label."""
    rng = np.random.default_rng(seed)
    labels, groups = [], []
    for p in range(n_patients):
        label = int(rng.random() < 0.3)
        for _ in range(int(rng.integers(1, 5))):
            labels.append(label)
            groups.append(f"p{p}")
    return labels, groups


@pytest.mark.parametrize("seed", range(5))
def test_select_grouped_never_splits_patient_and_never_exceeds(seed: int) -> None:
    labels, groups = _patients(40, seed)
    idx = select_labeled(labels, 30, seed=seed, groups=groups)
    chosen = {groups[i] for i in idx}
    unchosen = {g for i, g in enumerate(groups) if i not in set(idx)}
    assert not chosen & unchosen
    assert len(idx) <= 30
    # Documented rule: any patient left out is larger than the shortfall.
    sizes = Counter(groups)
    assert all(sizes[g] > 30 - len(idx) for g in unchosen)


def test_select_grouped_with_singletons_meets_budget() -> None:
    labels = [0, 0, 0, 1, 1, 0, 1, 0]
    groups = ["a", "a", "a", "", "", "b", "", "c"]  # '' = unknown patient -> its own group
    idx = select_labeled(labels, 4, seed=3, groups=groups)
    assert len(idx) == 4
    assert {0, 1, 2} <= set(idx) or not {0, 1, 2} & set(idx)


def test_select_groups_length_mismatch() -> None:
    with pytest.raises(ValueError, match="groups"):
        select_labeled([0, 1], 1, seed=0, groups=["a"])


# --------------------------------------------------------------------------- holdout


def _records(n: int, *, prefix: str = "r", source: str = "src", seed: int = 0) -> list[Record]:
    rng = np.random.default_rng(seed)
    return [
        Record(
            uid=f"{prefix}{i}",
            source=source,
            label=int(rng.random() < 0.25),
            patient_id=f"{prefix}p{i // 2}",  # two images per patient
        )
        for i in range(n)
    ]


def test_holdout_partitions_grouped_and_keeps_official_split() -> None:
    records = _records(200)
    records[0].split = "test"
    records[1].split = None  # same patient as record 0 -> must follow it into test
    records[10].split = "train"
    train, val, test = holdout(records, val_fraction=0.1, test_fraction=0.2, seed=0)
    uids = [r.uid for part in (train, val, test) for r in part]
    assert sorted(uids) == sorted(r.uid for r in records)
    assert records[0] in test and records[1] in test and records[10] in train
    patients = [{r.patient_id for r in part} for part in (train, val, test)]
    assert not (patients[0] & patients[1] or patients[0] & patients[2] or patients[1] & patients[2])
    free = 200 - 2  # records 0/1 were already test
    assert 0.1 * free - 2 <= len(val) <= 0.1 * free + 0.5
    assert 0.2 * free - 2 <= len(test) - 2 <= 0.2 * free + 0.5


def test_holdout_deterministic_and_stratified() -> None:
    records = _records(400, seed=1)
    a = holdout(records, val_fraction=0.25, test_fraction=0.25, seed=3)
    b = holdout(records, val_fraction=0.25, test_fraction=0.25, seed=3)
    c = holdout(records, val_fraction=0.25, test_fraction=0.25, seed=4)
    assert [[r.uid for r in p] for p in a] == [[r.uid for r in p] for p in b]
    assert [r.uid for r in a[2]] != [r.uid for r in c[2]]
    overall = np.mean([r.label for r in records])
    assert abs(np.mean([r.label for r in a[2]]) - overall) < 0.05


def test_holdout_bad_fractions() -> None:
    with pytest.raises(ValueError):
        holdout(_records(10), val_fraction=0.5, test_fraction=0.5, seed=0)


# --------------------------------------------------------------------------- Split files


def _split() -> Split:
    return Split(
        seg=TaskSplit(labeled=["a"], unlabeled=["b", "c"]),
        cls=TaskSplit(labeled=["d"], unlabeled=["e"]),
        val=["v"],
        test=["t"],
        cross=["x"],
        meta={"seed": 1, "seg_budget": "5%"},
    )


def test_split_save_load_round_trip_atomic(tmp_path) -> None:
    path = tmp_path / "nested" / "split.json"
    split = _split()
    split.save(path)
    split.save(path)  # overwriting goes through the same temp-file path
    assert Split.load(path) == split
    assert Split.from_dict(split.to_dict()) == split
    assert [p.name for p in path.parent.iterdir()] == ["split.json"]  # no temp file left


def test_split_save_failure_leaves_old_file_and_no_temp(tmp_path) -> None:
    path = tmp_path / "split.json"
    _split().save(path)
    bad = _split()
    bad.meta["oops"] = object()  # not JSON-serialisable
    with pytest.raises(TypeError):
        bad.save(path)
    assert Split.load(path) == _split()
    assert [p.name for p in tmp_path.iterdir()] == ["split.json"]


def test_split_load_errors_name_the_file(tmp_path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(FileNotFoundError, match="missing.json"):
        Split.load(missing)
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"seg": [')
    with pytest.raises(SplitFileError, match="corrupt.json"):
        Split.load(corrupt)
    incomplete = tmp_path / "incomplete.json"
    d = _split().to_dict()
    del d["cls"]["labeled"]
    incomplete.write_text(json.dumps(d))
    with pytest.raises(SplitFileError, match=r"incomplete.json.*cls\.labeled"):
        Split.load(incomplete)


# --------------------------------------------------------------------------- build_split


def _seg_pool(n: int) -> list[Record]:
    mask = np.zeros((4, 4), np.uint8)
    return [Record(uid=f"s{i}", source="seg", mask=mask if i % 4 else None, patient_id=f"sp{i}") for i in range(n)]


def test_build_split_counts_and_disjointness() -> None:
    seg = _seg_pool(40)  # 30 with masks
    cls = _records(100, prefix="c")
    val, test = _records(10, prefix="v"), _records(10, prefix="t")
    cross = _records(5, prefix="x", source="other")
    split = build_split(seg, cls, seg_budget=6, cls_budget="10%", seed=0, val=val, test=test, cross=cross)
    assert len(split.seg.labeled) == 6 and len(split.seg.unlabeled) == 34
    assert all(u in {r.uid for r in seg if r.has_mask} for u in split.seg.labeled)
    assert not set(split.seg.labeled) & set(split.seg.unlabeled)
    assert not set(split.cls.labeled) & set(split.cls.unlabeled)
    assert len(split.cls.labeled) == 10 and len(split.cls.unlabeled) == 90
    by_uid = {r.uid: r for r in cls}
    labeled_patients = {by_uid[u].patient_id for u in split.cls.labeled}
    assert not labeled_patients & {by_uid[u].patient_id for u in split.cls.unlabeled}
    assert split.val == [r.uid for r in val] and split.cross == [r.uid for r in cross]
    assert split.meta["exclude_labeled_from_unlabeled"] is True
    assert split.meta["cls_budget"] == "10%" and split.meta["cls_budget_resolved"] == 10
    json.dumps(split.to_dict())  # meta stays JSON-serialisable


def test_build_split_keep_labeled_in_unlabeled_and_determinism() -> None:
    seg, cls = _seg_pool(20), _records(50, prefix="c")
    a = build_split(seg, cls, seg_budget=3, cls_budget=10, seed=5)
    b = build_split(seg, cls, seg_budget=3, cls_budget=10, seed=5)
    c = build_split(seg, cls, seg_budget=3, cls_budget=10, seed=6)
    assert a == b and a.cls.labeled != c.cls.labeled
    keep = build_split(seg, cls, seg_budget=3, cls_budget=10, seed=5, exclude_labeled_from_unlabeled=False)
    assert keep.cls.labeled == a.cls.labeled
    assert keep.cls.unlabeled == [r.uid for r in cls]
    assert keep.meta["exclude_labeled_from_unlabeled"] is False


def test_build_split_errors() -> None:
    seg, cls = _seg_pool(8), _records(20, prefix="c")  # 6 seg records with masks
    with pytest.raises(ValueError, match=r"seg.*\b7\b.*\b6\b"):
        build_split(seg, cls, seg_budget=7, cls_budget=1, seed=0)
    with pytest.raises(ValueError, match=r"cls.*\b21\b.*\b20\b"):
        build_split(seg, cls, seg_budget=1, cls_budget=21, seed=0)
    with pytest.raises(ValueError, match="seg.*no records with a mask"):
        build_split([], cls, seg_budget=1, cls_budget=1, seed=0)
    with pytest.raises(ValueError, match="also in a training pool"):
        build_split(seg, cls, seg_budget=1, cls_budget=1, seed=0, test=cls[:1])
    with pytest.raises(ValueError, match="bogus"):
        build_split(seg, cls, seg_budget="bogus", cls_budget=1, seed=0)
    empty = build_split([], cls, seg_budget="all", cls_budget=0, seed=0)
    assert empty.seg == TaskSplit([], []) and empty.cls.labeled == []


# --------------------------------------------------------------------------- a source's parts


def _official(records: list[Record], parts: dict[str, int]) -> list[Record]:
    """Give the first records official splits: ``{"train": 180, "val": 4}`` in that order."""
    names = [name for name, n in parts.items() for _ in range(n)]
    for record, name in zip(records, names):
        record.split = name
    return records


def _parts(records: list[Record], **data) -> tuple[list[Record], list[Record], list[Record]]:
    from multimix.config import RealDataConfig
    from multimix.data.pools import assign_splits

    return assign_splits(records, RealDataConfig(**data), seed=0)


def _patient_ids(part: list[Record]) -> set[str]:
    return {r.patient_id for r in part}


def test_a_source_without_official_split_is_split_by_the_fractions() -> None:
    train, val, test = _parts(_records(200), val_fraction=0.05, test_fraction=0.5)
    assert len(test) == 100 and len(val) == 10 and len(train) == 90


def test_a_train_only_release_lends_a_patient_disjoint_test_and_validation_part() -> None:
    # data as some redistributors ship CheX: the official training split alone
    records = _official(_records(400), {"train": 400})
    train, val, test = _parts(records, val_fraction=0.05, test_fraction=0.5)
    assert len(test) == 200 and len(val) == 10 and len(train) == 190
    assert not (
        _patient_ids(train) & _patient_ids(test)
        or _patient_ids(train) & _patient_ids(val)
        or _patient_ids(val) & _patient_ids(test)
    )


def test_a_token_validation_part_is_topped_up_and_the_official_test_kept() -> None:
    # CheX's own release: 5,232 train, 16 val, 624 test (here scaled down)
    records = _official(_records(400), {"train": 300, "val": 4, "test": 96})
    train, val, test = _parts(records, val_fraction=0.05, test_fraction=0.5)
    official_val = [r.uid for r in records if r.split == "val"]
    assert len(test) == 96 and {r.split for r in test} == {"test"}
    wanted = round(0.05 * 304)  # patients stay whole (two images each here), so one patient short at most
    assert set(official_val) <= {r.uid for r in val} and wanted - 2 <= len(val) <= wanted
    assert len(train) + len(val) == 304 and not _patient_ids(train) & _patient_ids(val)


def test_a_sufficient_official_validation_part_is_left_alone() -> None:
    records = _official(_records(200), {"train": 150, "val": 20, "test": 30})
    train, val, test = _parts(records, val_fraction=0.05, test_fraction=0.5)
    assert (len(train), len(val), len(test)) == (150, 20, 30)
