"""A refused set-up leaves no run folder behind to block the corrected retry.

Tiny runs; each case failed before its fix (docs/troubleshooting.md)."""

from __future__ import annotations

import json

from fault_cases import one_error_line, train

# --- 10. refusals leave no run folder ------------------------------------------------------------


def test_a_missing_init_encoder_leaves_no_run_folder(tmp_path, capsys):
    assert train(tmp_path / "D", "--init-encoder", str(tmp_path / "missing.pt")) == 1
    assert "missing.pt" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "D").exists()


def test_a_split_of_other_data_leaves_no_run_folder(finished_run, tmp_path, capsys):
    split = json.loads((finished_run / "split.json").read_text())
    split["test"] = ["nowhere/x.png"]
    (tmp_path / "split.json").write_text(json.dumps(split))
    assert train(tmp_path / "D", "--split", str(tmp_path / "split.json")) == 1
    assert "split.json" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "D").exists()
