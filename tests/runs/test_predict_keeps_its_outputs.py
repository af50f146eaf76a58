"""predict never wipes or re-reads its own outputs.

Tiny runs; each case failed before its fix (docs/troubleshooting.md)."""

from __future__ import annotations

from fault_cases import flat_png, one_error_line, script

# --- 5. predict.py never wipes or re-reads its own outputs ---------------------------------------


def test_predict_bad_batch_size_leaves_predictions_csv_alone(tmp_path, trained_checkpoint, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "predictions.csv").write_text("earlier results\n")
    flat_png(tmp_path / "x.png", 90, size=40)
    code = script("predict")(
        [str(tmp_path / "x.png"), "--checkpoint", str(trained_checkpoint), "--out", str(out), "--batch-size", "0"]
    )
    assert code == 2 and "--batch-size" in one_error_line(capsys.readouterr().err)
    assert (out / "predictions.csv").read_text() == "earlier results\n"


def test_predict_into_a_folder_inside_its_input_skips_its_own_outputs(tmp_path, trained_checkpoint, capsys):
    folder = tmp_path / "in"
    flat_png(folder / "a.png", 90, size=40)
    args = [str(folder), "--checkpoint", str(trained_checkpoint), "--out", str(folder / "pred"), "--no-progress"]
    predict = script("predict")
    assert predict(args) == 0
    assert predict(args) == 0  # the second run must not predict the first one's PNGs
    rows = (folder / "pred" / "predictions.csv").read_text().splitlines()
    assert len(rows) == 2 and "a.png" in rows[1]
