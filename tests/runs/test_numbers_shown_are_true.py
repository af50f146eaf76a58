"""A number shown to a user is true (no small lies in logs and tables).

Tiny runs; each case failed before its fix (docs/troubleshooting.md)."""

from __future__ import annotations

import pytest
from fault_cases import SAMPLES, one_error_line, script, train

# --- 7. small lies -------------------------------------------------------------------------------


def test_nan_loss_message_does_not_point_at_a_missing_checkpoint(tmp_path, capsys):
    assert train(tmp_path / "run", "--steps", "3", "--lr", "1e30") == 1  # weights blow up after the first step
    line = one_error_line(capsys.readouterr().err)
    assert "no checkpoint was written before it" in line and "last.pt" not in line


@pytest.mark.skipif(not (SAMPLES / "chex").is_dir(), reason="needs the shared real samples")
def test_no_progress_silences_the_cache_bars(tmp_path, capsys):
    code = script("train")(
        [
            "--data-root",
            str(SAMPLES),
            "--seg-labels",
            "2",
            "--cls-labels",
            "4",
            "--steps",
            "1",
            "--image-size",
            "32",
            "--out",
            str(tmp_path / "run"),
            "--no-progress",
            "--set",
            "model.widths=[4,8,16]",
            "--set",
            f"real.cache_dir={tmp_path / 'cache'}",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "cache chex" not in captured.err and "img/s" not in captured.err
