"""Every image mode reads as its grey level, and one odd image never stops a batch.

Tiny runs; each case failed before its fix (docs/troubleshooting.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fault_cases import png, predict, rows
from PIL import Image

from multimix.data.cache import build_cache
from multimix.data.io import read_image_file
from multimix.data.records import Record
from multimix.prediction.reader import decode_image_bytes

# --- 4. every image mode, and one odd image never stops a batch -----------------------------------


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "CMYK"])
def test_every_image_mode_reads_as_its_gray_level(tmp_path, mode):
    value = 255 if mode == "1" else 128
    path = png(tmp_path / "x.png", mode, value=value)
    pixels = read_image_file(str(path))
    assert pixels.shape == (24, 24) and pixels.dtype == np.float32
    np.testing.assert_allclose(pixels, value / 255, atol=0.02)
    if path.suffix in (".png", ".jpg"):  # uploads: PNG, JPEG or DICOM
        np.testing.assert_allclose(decode_image_bytes(path.read_bytes(), name=path.name), pixels, atol=0.02)


def test_a_palette_png_with_transparency_reads_its_colours(tmp_path):
    image = Image.new("L", (8, 8), 200).convert("P")
    image.save(tmp_path / "p.png", transparency=0)
    np.testing.assert_allclose(read_image_file(str(tmp_path / "p.png")), 200 / 255, atol=0.01)


def test_alpha_is_dropped_not_composited(tmp_path):
    pixels = np.zeros((8, 8, 2), np.uint8)
    pixels[..., 0] = 100  # gray 100, fully transparent: compositing on white would give 1.0
    Image.fromarray(pixels, "LA").save(tmp_path / "la.png")
    np.testing.assert_allclose(read_image_file(str(tmp_path / "la.png")), 100 / 255, atol=1e-6)


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((10, 20), np.uint8)
    pixels[:, :5] = 255  # a bright left edge, stored as a landscape image
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    Image.fromarray(pixels).save(tmp_path / "phone.jpg", exif=exif, quality=100)
    upright = read_image_file(str(tmp_path / "phone.jpg"))
    assert upright.shape == (20, 10)
    assert upright[:5].mean() > 0.9 and upright[-5:].mean() < 0.1  # the bright edge is now at the top


def test_predict_with_one_grey_alpha_png_among_good_files_predicts_the_others(trained_checkpoint, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name, mode in (("a.png", "L"), ("b.png", "LA"), ("c.png", "RGB")):
        png(inputs / name, mode)
    (inputs / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert predict(inputs, trained_checkpoint, tmp_path / "out") == 0
    status = {Path(r["file"]).name: r["status"] for r in rows(tmp_path / "out" / "predictions.csv")}
    assert status["a.png"] == status["b.png"] == status["c.png"] == "ok"
    assert status["d.png"] != "ok"


def test_a_cache_build_over_a_grey_alpha_png_keeps_it(tmp_path):
    paths = {m: png(tmp_path / f"{m}.png", m) for m in ("L", "LA", "RGBA")}
    records = [Record(uid=f"d/{m}.png", source="d", image_path=str(path)) for m, path in paths.items()]
    cached = build_cache(records, 16, tmp_path / "cache", name="d", on_error="skip", progress=False)
    assert [r.uid for r in cached.records] == [r.uid for r in records] and not cached.skipped
