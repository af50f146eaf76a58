"""No formula in a CSV: cells a spreadsheet would run are neutralised.

Tiny runs; each case failed before its fix (docs/troubleshooting.md)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from fault_cases import evaluate, png, predict, rows

from multimix.data.prepare import write_skip_report
from multimix.utils.csv_safe import safe_cell

# --- 3. no formula in a CSV ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["=cmd|calc!A0", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_a_cell_a_spreadsheet_would_run_is_neutralised(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["-0.25", "+3", "-", "x=1", "scan.png", 0.5, -1, None])
def test_numbers_and_plain_text_are_left_alone(value):
    assert safe_cell(value) == value


def test_predictions_csv_neutralises_a_formula_file_name(trained_checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the file column holds the name as given: here it starts with "="
    png(tmp_path / "=cmd|calc!A0.png")
    assert predict(Path("=cmd|calc!A0.png"), trained_checkpoint, tmp_path / "out") == 0
    (row,) = rows(tmp_path / "out" / "predictions.csv")
    cells = [row["file"], row["mask_png"], row["saliency_png"], row["boundary_png"]]
    assert all(cell.startswith("'=") for cell in cells), cells


def test_the_skip_report_neutralises_a_formula_path(tmp_path):
    path = write_skip_report([{"source": "chex", "path": "@evil.png", "reason": "-bad"}], tmp_path / "skipped.csv")
    (row,) = rows(path)
    assert row["path"] == "'@evil.png" and row["reason"] == "'-bad"


def test_per_image_csv_neutralises_a_formula_uid(trained_checkpoint, tmp_path, monkeypatch):
    from multimix.runs import evaluate as evaluate_module

    sets = evaluate_module.evaluation_sets

    def renamed(*args, **kwargs):
        found = sets(*args, **kwargs)
        return {name: [dataclasses.replace(r, uid="=" + r.uid) for r in records] for name, records in found.items()}

    monkeypatch.setattr(evaluate_module, "evaluation_sets", renamed)
    assert evaluate(trained_checkpoint, tmp_path / "E") == 0
    assert all(row["uid"].startswith("'=") for row in rows(tmp_path / "E" / "per_image.csv"))
