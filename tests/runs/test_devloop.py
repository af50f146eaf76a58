"""The development loop: variants file, scoring of a trained run, the table, skipping finished runs."""

import json

import numpy as np
import pytest

from multimix.evaluation.inference import ImageResults
from multimix.runs.devloop import (
    Variant,
    broken_mask_share,
    format_table,
    load_variants,
    run_devloop,
)

from helpers import TINY


def test_variants_file_order_selection_and_errors(tmp_path):
    path = tmp_path / "v.yaml"
    path.write_text("variants:\n  a: {}\n  b:\n    data.intensity: clahe\n")
    assert [v.name for v in load_variants(path)] == ["a", "b"]
    assert load_variants(path, ["b"]) == [Variant("b", {"data.intensity": "clahe"})]
    with pytest.raises(ValueError, match="no variant"):
        load_variants(path, ["c"])
    (tmp_path / "empty.yaml").write_text("other: 1\n")
    with pytest.raises(ValueError, match="variants"):
        load_variants(tmp_path / "empty.yaml")


def test_broken_masks_are_those_not_two_solid_regions():
    results = ImageResults(uids=["a", "b", "c", "d"], sources=["s"] * 4, labels=np.zeros(4), prob_pneumonia=None,
                           has_mask=np.zeros(4, bool), pred_regions=np.array([2, 3, 2, 1]), pred_holes=np.array([0, 0, 1, 0]))
    assert broken_mask_share(results) == 0.75


def test_table_lists_the_columns_any_row_has():
    table = format_table([{"variant": "a", "cross_auroc": 0.5, "jsrt_dice": 0.91}, {"variant": "b", "cross_auroc": 0.75}])
    lines = table.splitlines()
    assert lines[0] == "| variant | JSRT Dice | NIH AUROC |"
    assert lines[2] == "| a | 0.910 | 0.500 |" and lines[3] == "| b | - | 0.750 |"


def test_devloop_trains_scores_and_skips_finished_variants(tmp_path):
    overrides = {**TINY, "data.seg_labels": "4", "data.cls_labels": "8", "train.steps": 2}
    variants = [Variant("plain", {}), Variant("clahe-lung", {"data.intensity": "clahe", "model.cls_pooling": "lung"})]
    rows = run_devloop(variants, tmp_path, base_config=None, overrides=overrides, device="cpu", progress=False)
    assert [r["variant"] for r in rows] == ["plain", "clahe-lung"]
    for row in rows:
        assert 0 <= row["in_acc"] <= 1 and 0 <= row["cross_auroc"] <= 1 and 0 <= row["jsrt_dice"] <= 1
        assert 0 <= row["adults_normal"] <= 1 and 0 <= row["child_masks_broken"] <= 1
        assert row["jsrt_dice_clean"] is not None and row["train_minutes"] > 0
    saved = json.loads((tmp_path / "clahe-lung" / "dev_scores.json").read_text())
    assert saved["overrides"] == {"data.intensity": "clahe", "model.cls_pooling": "lung"}
    assert "clahe-lung" in (tmp_path / "table.md").read_text() and (tmp_path / "child_masks.png").stat().st_size > 0
    stamp = (tmp_path / "plain" / "summary.json").stat().st_mtime_ns
    again = run_devloop(variants[:1], tmp_path, base_config=None, overrides=overrides, device="cpu", progress=False)
    assert again[0] == rows[0] and (tmp_path / "plain" / "summary.json").stat().st_mtime_ns == stamp
