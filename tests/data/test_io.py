import numpy as np
import pytest
from skimage import io as skio

from multimix.data.io import read_image_file, read_record_image, read_record_mask
from multimix.data.pixels import ImageReadError
from multimix.data.records import Record


def test_8_and_16_bit_png_and_rgb_read_as_unit_float(tmp_path):
    skio.imsave(tmp_path / "a8.png", np.array([[0, 255], [51, 102]], np.uint8), check_contrast=False)
    skio.imsave(tmp_path / "a16.png", np.array([[0, 65535], [13107, 26214]], np.uint16), check_contrast=False)
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 1] = 255
    skio.imsave(tmp_path / "rgb.png", rgb, check_contrast=False)
    expected = np.array([[0, 1], [0.2, 0.4]], np.float32)
    for name in ("a8.png", "a16.png"):
        image = read_image_file(str(tmp_path / name))
        assert image.dtype == np.float32 and np.allclose(image, expected, atol=1e-6)
    image = read_image_file(str(tmp_path / "rgb.png"))
    assert image.shape == (2, 2) and image[0, 1] == pytest.approx(1.0, abs=1e-3) and image[0, 0] == 0


def test_corrupt_and_missing_files_are_named(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ImageReadError, match="broken.png: cannot decode"):
        read_image_file(str(bad))
    with pytest.raises(ImageReadError, match="gone.png: file not found"):
        read_image_file(str(tmp_path / "gone.png"))
    with pytest.raises(ImageReadError, match="neither pixels nor an image path"):
        read_record_image(Record(uid="r1", source="x"))


def test_left_and_right_masks_merge(tmp_path):
    left = np.zeros((4, 4), np.uint8)
    right = np.zeros((4, 4), np.uint8)
    left[:, :2], right[:, 3] = 255, 255
    skio.imsave(tmp_path / "l.png", left, check_contrast=False)
    skio.imsave(tmp_path / "r.png", right, check_contrast=False)
    record = Record(uid="m", source="x", mask_paths=(str(tmp_path / "l.png"), str(tmp_path / "r.png")))
    merged = read_record_mask(record)
    assert merged.dtype == np.uint8 and merged.sum() == 12 and merged[:, 2].sum() == 0
    skio.imsave(tmp_path / "small.png", np.zeros((2, 2), np.uint8), check_contrast=False)
    odd = Record(uid="m", source="x", mask_paths=(str(tmp_path / "l.png"), str(tmp_path / "small.png")))
    with pytest.raises(ImageReadError, match="small.png: mask size"):
        read_record_mask(odd)
    assert read_record_mask(Record(uid="n", source="x")) is None
