"""A refused --resume leaves the run as it was.

Tiny runs; each case failed before its fix (docs/troubleshooting.md)."""

from __future__ import annotations

import pytest
from fault_cases import copy_run, one_error_line, train

# --- 1. a refused --resume leaves the run as it was ---------------------------------------------


@pytest.mark.parametrize("override", ["synthetic.cls_pool=40", "model.widths=[8,16,32]"])
def test_refused_resume_names_the_setting_and_writes_nothing(finished_run, tmp_path, capsys, override):
    run = copy_run(finished_run, tmp_path / "run")

    def files():  # the lock file holds the pid of whoever holds it last: not run content
        return {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}

    before = files()
    capsys.readouterr()
    assert train(run, "--resume", "--steps", "4", "--set", override) == 1
    line = one_error_line(capsys.readouterr().err)
    assert override.split("=")[0] in line and "nothing was written" in line
    assert files() == before
    assert train(run, "--resume", "--steps", "4") == 0  # the run still resumes
    assert "resuming" in capsys.readouterr().out


def test_resume_of_an_empty_folder_says_it_starts_fresh(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert train(tmp_path / "empty", "--resume", "--steps", "2") == 0
    assert "has no checkpoint yet; starting a new run" in capsys.readouterr().out


def test_truncated_last_checkpoint_on_resume_is_one_line(finished_run, tmp_path, capsys):
    run = copy_run(finished_run, tmp_path / "run")
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    assert train(run, "--resume", "--steps", "4") == 1
    line = one_error_line(capsys.readouterr().err)
    assert "last.pt" in line and "truncated or corrupt" in line
