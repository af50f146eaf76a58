from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from multimix.data.io import read_image_file, read_record_mask
from multimix.data.jsrt_raw import read_jsrt_raw
from multimix.data.pixels import ImageReadError
from multimix.data.records import Record

from helpers import SHARED_DATA

SHARED = SHARED_DATA
SIDE = 2048


def write_raw(path: Path, values: np.ndarray) -> str:
    values.astype(">u2").tofile(path)
    return str(path)


def test_raw_decodes_big_endian_with_display_polarity_and_window(tmp_path):
    values = np.zeros((SIDE, SIDE), np.uint16)
    values[:, : SIDE // 2] = 4000  # dense film = dark in display
    values[:, SIDE // 2 :] = 1000
    path = write_raw(tmp_path / "JPCLN001.IMG", values)
    image = read_image_file(path)  # .IMG dispatches to read_jsrt_raw
    assert image.shape == (SIDE, SIDE) and image.dtype == np.float32
    assert image[0, 0] == 0.0 and image[0, -1] == 1.0  # window stretches to the full range
    assert np.array_equal(image, read_jsrt_raw(path))
    # Little-endian bytes of 1000 would read as 59395 (> 4095): the byte order matters.
    values.astype("<u2").tofile(tmp_path / "swapped.img")
    with pytest.raises(ImageReadError, match=r"swapped\.img: value \d+ exceeds the 12-bit"):
        read_image_file(str(tmp_path / "swapped.img"))


def test_raw_wrong_size_and_missing_are_named(tmp_path):
    small = tmp_path / "short.IMG"
    small.write_bytes(b"\x00" * 1000)
    with pytest.raises(ImageReadError) as err:
        read_jsrt_raw(str(small))
    assert "short.IMG" in str(err.value) and "8388608" in str(err.value) and "1000 bytes" in str(err.value)
    with pytest.raises(ImageReadError, match="gone.IMG: file not found"):
        read_image_file(str(tmp_path / "gone.IMG"))


def test_gif_masks_normalise_to_2d(tmp_path):
    mask = np.zeros((6, 8), np.uint8)
    mask[1:4, 2:5] = 255
    Image.fromarray(mask, mode="L").save(tmp_path / "gray.gif")
    Image.fromarray(mask, mode="L").convert("P").save(tmp_path / "palette.gif")
    Image.fromarray(np.stack([mask] * 3, -1), mode="RGB").save(tmp_path / "rgb.gif")
    for name in ("gray.gif", "palette.gif", "rgb.gif"):
        image = read_image_file(str(tmp_path / name))
        assert image.shape == (6, 8), name
        assert np.array_equal(image > 0.5, mask > 0), name


def test_real_jsrt_lungs_darker_than_mediastinum():
    root = SHARED / "jsrt"
    if not root.is_dir():
        pytest.skip(f"shared JSRT samples not found at {root}")
    image = read_jsrt_raw(str(root / "All247images" / "JPCNN001.IMG"))
    masks = tuple(str(root / "SCR" / "fold1" / "masks" / side / "JPCNN001.gif") for side in ("left lung", "right lung"))
    mask = read_record_mask(Record(uid="j", source="jsrt", mask_paths=masks)).astype(bool)
    assert mask.shape == (1024, 1024) and 0.15 < mask.mean() < 0.5
    half = image.reshape(1024, 2, 1024, 2).mean(axis=(1, 3))  # masks are at half resolution
    strip = np.zeros_like(mask)
    strip[300:800, 462:562] = True  # the mediastinum / spine between the lungs
    strip &= ~mask
    assert half[mask].mean() + 0.1 < half[strip].mean()
