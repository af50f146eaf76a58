"""The one definition of mean ± sd and paired differences, and the result files commands write."""

import csv
import json

import pytest

from multimix.evaluation.tables import (
    is_beyond_spread,
    mean_sd_text,
    paired_differences,
    sample_sd,
    write_result_files,
)
from multimix.utils import environment


def test_spread_is_the_sample_standard_deviation():
    # 0.6, 0.7, 0.8: squared deviations 0.01 + 0 + 0.01 over n - 1 = 2
    assert sample_sd([0.6, 0.7, 0.8]) == pytest.approx(0.1)
    assert sample_sd([0.5]) is None and sample_sd([]) is None
    assert mean_sd_text([0.6, 0.7, 0.8]) == "0.700 ± 0.100"
    assert mean_sd_text([0.25]) == "0.250" and mean_sd_text([]) == "-"


def test_a_signed_difference_carries_one_sign_and_an_unsigned_spread():
    assert mean_sd_text([0.01, 0.03], signed=True) == "+0.020 ± 0.014"
    assert mean_sd_text([-0.01, -0.03], signed=True) == "-0.020 ± 0.014"
    # a format that already signs (a gain column) is not signed twice, nor is its spread
    assert mean_sd_text([0.01, 0.03], "{:+.3f}", signed=True) == "+0.020 ± 0.014"


def test_paired_differences_use_only_the_seeds_both_have():
    new = {0: 0.8, 1: 0.7, 2: None, 3: 0.9}
    base = {0: 0.7, 1: 0.75, 2: 0.6}
    assert paired_differences(new, base) == pytest.approx([0.1, -0.05])
    assert is_beyond_spread([0.10, 0.05, 0.10]) and not is_beyond_spread([0.10, -0.10, 0.10])
    assert not is_beyond_spread([0.5])  # one pair has no spread to beat


def test_result_files_name_the_command_the_machine_and_hold_the_same_records(tmp_path, monkeypatch):
    monkeypatch.setattr(environment, "_command", None)  # what the cli records, undone after the test
    environment.record_command(["multimix", "devloop", "--seeds", "0,1"])
    records = [{"variant": "a", "seed": 0, "auroc": 0.75, "overrides": {"x": 1}}, {"variant": "b", "seed": 0}]
    paths = write_result_files(tmp_path, "table", markdown="| a |\n|---|", records=records)
    text = paths["md"].read_text()
    assert text.startswith("Written by `multimix devloop --seeds 0,1` (")
    assert "Machine: " in text and " cores (" in text and text.rstrip().endswith("| a |\n|---|")
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [r["variant"] for r in rows] == ["a", "b"] and rows[1]["auroc"] == ""
    assert json.loads(rows[0]["overrides"]) == {"x": 1}
    made = json.loads(paths["json"].read_text())
    assert made["records"] == records and made["made_by"]["command"] == "multimix devloop --seeds 0,1"
    assert made["made_by"]["machine"]["cpu_count"] >= 1 and "UTC" in made["made_by"]["date"]
