"""A report folder never mixes two evaluations; a new report replaces the old whole.

Tiny runs; each case failed before its fix (docs/troubleshooting.md)."""

from __future__ import annotations

import json
import shutil

from fault_cases import evaluate, one_error_line

from multimix.utils.locks import exclusive_lock

# --- 1, 2. a report folder never mixes two evaluations -------------------------------------------


def test_a_second_evaluate_into_a_busy_out_refuses_at_once(trained_checkpoint, tmp_path, capsys):
    out = tmp_path / "E"
    with exclusive_lock(tmp_path / ".E.lock", what="evaluation folder E"):  # another evaluate is writing E
        assert evaluate(trained_checkpoint, out) == 1
    assert "in use by another process" in one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_a_new_report_replaces_the_old_one_whole(trained_checkpoint, tmp_path):
    other = tmp_path / "b" / "checkpoints"
    shutil.copytree(trained_checkpoint.parent.parent, tmp_path / "b", dirs_exist_ok=True)
    out = tmp_path / "E"
    assert evaluate(trained_checkpoint, out) == 0
    (out / "figures" / "stale.png").write_bytes(b"from the first model")
    assert evaluate(other / "best.pt", out) == 0
    assert str(other / "best.pt") in (out / "report.md").read_text()
    assert json.loads((out / "metrics.json").read_text())["models"][0]["checkpoint"] == str(other / "best.pt")
    assert not (out / "figures" / "stale.png").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".E.")] == [".E.lock"]  # no temporary folder


def test_an_interrupted_evaluate_leaves_the_previous_report_as_it_was(
    trained_checkpoint, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "E"
    assert evaluate(trained_checkpoint, out) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("multimix.evaluation.report.write_figures", interrupted)
    assert evaluate(trained_checkpoint, out) == 130
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".E.")] == [".E.lock"]


def test_evaluate_refuses_an_out_holding_other_files_before_evaluating(trained_checkpoint, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert evaluate(trained_checkpoint, tmp_path) == 1
    assert "not an evaluation report" in one_error_line(capsys.readouterr().err)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
