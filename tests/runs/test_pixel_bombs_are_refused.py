"""Pixel bombs are refused from the header, before their pixels take memory.

Tiny runs; each case failed before its fix (docs/troubleshooting.md)."""

from __future__ import annotations

import pytest
from fake_trees import pixel_bomb
from fault_cases import flat_png, script

from multimix.data import pixels
from multimix.data.io import read_image_file
from multimix.data.pixels import ImageReadError, ImageTooLargeError
from multimix.prediction.reader import decode_image_bytes

# --- 3. pixel bombs are refused from the header ----------------------------------------------------


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pixel_bomb_is_refused_before_decoding(tmp_path):
    bomb = pixel_bomb(tmp_path / "bomb.png")
    with pytest.raises(ImageTooLargeError, match="12000x12000.*limit of 100"):
        read_image_file(str(bomb))
    with pytest.raises(ImageTooLargeError, match="upload"):
        decode_image_bytes(bomb.read_bytes())
    pixels.set_max_megapixels(200)  # a higher limit lets the decoder have it
    try:
        try:
            read_image_file(str(bomb))
        except ImageTooLargeError:
            pytest.fail("the raised limit was ignored")
        except ImageReadError:
            pass  # the stub's pixel data may or may not decode
    finally:
        pixels.set_max_megapixels(pixels.DEFAULT_MAX_MEGAPIXELS)


def test_predict_skips_a_pixel_bomb_and_names_it(tmp_path, trained_checkpoint, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    flat_png(folder / "fine.png", 90, size=40)
    pixel_bomb(folder / "bomb.png")
    code = script("predict")(
        [
            str(folder),
            "--checkpoint",
            str(trained_checkpoint),
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
            "--max-megapixels",
            "50",
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "bomb.png" in err and "limit of 50" in err
    rows = (tmp_path / "out" / "predictions.csv").read_text().splitlines()
    assert len(rows) == 3 and any("bomb.png" in r and ",error," in r for r in rows)


def test_prepare_data_skips_a_pixel_bomb_and_lists_it(tmp_path, capsys):
    chex = tmp_path / "data" / "chex" / "chest_xray" / "train"
    for i in range(2):
        flat_png(chex / "NORMAL" / f"IM-000{i}-0001.jpeg", 100)
        flat_png(chex / "PNEUMONIA" / f"person{i}_bacteria_{i}.jpeg", 150)
    pixel_bomb(chex / "NORMAL" / "IM-0009-0001.jpeg")  # PNG bytes: a reader judges by content
    (chex / "NORMAL" / "IM-0008-0001.jpeg").write_bytes(b"")  # a zero-byte file
    code = script("prepare_data")(
        [
            "--data-root",
            str(tmp_path / "data"),
            "--image-size",
            "16",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-progress",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "IM-0009-0001.jpeg" in out and "megapixels" in out
    assert "IM-0008-0001.jpeg" in out and "empty file (0 bytes)" in out
    report = (tmp_path / "cache" / "skipped-16px.csv").read_text()
    assert "IM-0009-0001.jpeg" in report and "IM-0008-0001.jpeg" in report
