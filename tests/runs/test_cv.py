"""multimix cv: stratified, patient-grouped folds, one run per fold, one table; resumable."""

import json

import pytest

from multimix.data.records import Record
from multimix.runs import grid
from multimix.runs.cli import main as multimix
from multimix.runs.cv import fold_members

from helpers import tiny_cli_args


def test_folds_are_stratified_grouped_and_cover_the_pool():
    records = [Record(f"r{i}", "s", label=int(i % 3 == 0), patient_id=f"p{i // 2}") for i in range(30)]
    folds = fold_members(records, 3, seed=0)
    assert sorted(r.uid for f in folds for r in f) == sorted(r.uid for r in records)  # a partition
    for fold in folds:
        assert 1 <= sum(r.label for r in fold) <= 6  # both classes in every fold
    patients = [{r.patient_id for r in f} for f in folds]
    assert not (patients[0] & patients[1]) and not (patients[1] & patients[2])  # a patient in one fold
    with pytest.raises(ValueError, match="at least 3 labeled images of every class"):
        fold_members(records[:4], 3, seed=0)
    with pytest.raises(ValueError, match="at least 2"):
        fold_members(records, 1, seed=0)


def test_cv_trains_one_run_per_fold_and_prints_the_table(tmp_path, capsys, monkeypatch):
    out = tmp_path / "cv"
    args = ["cv", "--folds", "3", "--seg-labels", "4", "--cls-labels", "6", "--steps", "2", "--out", str(out)]
    assert multimix([*args, "--no-progress", *tiny_cli_args()]) == 0
    table = (out / "cv_table.md").read_text()
    assert "mean ± sd (3 folds)" in table and "| fold 2 |" in table and "in-domain accuracy" in table
    assert "in-domain accuracy" in capsys.readouterr().out
    tests = []
    for k in range(3):
        split = json.loads((out / f"fold{k}" / "split.json").read_text())
        fold_test = [u for u in split["test"] if "cls" in u]
        assert fold_test and not set(fold_test) & set(split["cls"]["labeled"] + split["cls"]["unlabeled"])
        tests.append(set(fold_test))
    assert not (tests[0] & tests[1]) and not (tests[1] & tests[2])  # every image is tested once
    assert len(json.loads((out / "cv.json").read_text())) == 3
    monkeypatch.setattr(grid, "run_training", lambda *a, **k: pytest.fail("finished folds must be skipped"))
    assert multimix([*args, "--no-progress", *tiny_cli_args()]) == 0
    capsys.readouterr()
    # continuing with other settings or another fold count would mix two protocols in one table
    before = (out / "config.yaml").read_text()
    assert multimix([*args, "--no-progress", *tiny_cli_args(), "--set", "method.ce_weight=2"]) == 1
    assert "method.ce_weight was 1.0, now 2.0" in capsys.readouterr().err
    folds4 = [a if a != "3" else "4" for a in args]
    assert multimix([*folds4, "--no-progress", *tiny_cli_args()]) == 1
    assert "holds a 3-fold cross-validation" in capsys.readouterr().err
    assert (out / "config.yaml").read_text() == before


def test_cv_refuses_one_fold(capsys):
    assert multimix(["cv", "--folds", "1"]) == 2
    assert "--folds must be at least 2" in capsys.readouterr().err


def test_a_refused_cross_validation_leaves_nothing_and_the_corrected_one_runs(tmp_path, capsys):
    out = tmp_path / "cv"
    args = ["cv", "--seg-labels", "4", "--cls-labels", "6", "--steps", "1", "--out", str(out), "--no-progress"]
    assert multimix([*args, "--folds", "41", *tiny_cli_args()]) == 1
    assert "at least 41 labeled images of every class" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
    # a folder an earlier version left behind (its config, no folds drawn) does not block the retry
    out.mkdir(exist_ok=True)
    (out / "splits").mkdir()
    (out / "config.yaml").write_text("data:\n  cls_labels: '10'\n")
    assert multimix([*args, "--folds", "2", *tiny_cli_args()]) == 0
    assert len(json.loads((out / "cv.json").read_text())) == 2
