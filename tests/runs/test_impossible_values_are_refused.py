"""Values that cannot work are refused before anything is written.

Tiny runs; each case failed before its fix (docs/troubleshooting.md)."""

from __future__ import annotations

import pytest
from fault_cases import one_error_line, train

# --- 8. values that cannot work ------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, key",
    [
        ("model.widths=[-16,32,64]", "model.widths"),
        ("model.widths=[0,0,0]", "model.widths"),
        ("method.dice_weight=nan", "method.dice_weight"),
        ("method.ce_weight=1e309", "method.ce_weight"),
        ("method.kl_weight=-inf", "method.kl_weight"),
        ("method.fixmatch_weight=-1", "method.fixmatch_weight"),
        ("train.weight_decay=-1", "train.weight_decay"),
        ("model.dropout=2", "model.dropout"),
        ("data.image_size=100000", "data.image_size"),
    ],
)
def test_values_that_cannot_work_are_refused_before_anything_is_written(tmp_path, capsys, override, key):
    assert train(tmp_path / "run", "--set", override) == 1
    assert key in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()
