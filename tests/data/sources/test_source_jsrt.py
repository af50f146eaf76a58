from pathlib import Path

import pytest

from multimix.data.sources import jsrt
from multimix.data.sources.base import DatasetItemError, DatasetLayoutError

from helpers import SHARED_DATA

SHARED = SHARED_DATA
SIDES = ("left lung", "right lung")


@pytest.fixture
def real_root() -> Path:
    root = SHARED / "jsrt"
    if not root.is_dir():
        pytest.skip(f"shared JSRT samples not found at {root}")
    return root


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"scan does not decode")
    return path


def fake_raw(root: Path, stems: list[str], masks: dict[str, tuple[str, ...]]) -> Path:
    """``All247images/<stem>.IMG`` plus ``SCR/fold2/masks/<side>/<stem>.gif`` for the given sides."""
    for stem in stems:
        touch(root / "All247images" / f"{stem}.IMG")
    for stem, sides in masks.items():
        for side in sides:
            touch(root / "SCR" / "fold2" / "masks" / side / f"{stem}.gif")
    return root


def test_real_sample_raw_and_png(real_root):
    scan = jsrt.scan(real_root)
    assert not scan.skipped and len(scan.records) == 6
    raw = [r for r in scan.records if r.meta["format"] == "raw"]
    png = [r for r in scan.records if r.meta["format"] == "png"]
    assert len(raw) == 4 and len(png) == 2
    for r in raw:
        assert [Path(p).parent.name for p in r.mask_paths] == list(SIDES)
        assert all(Path(p).name == f"{r.patient_id}.gif" and Path(p).is_file() for p in r.mask_paths)
    for r in png:
        assert len(r.mask_paths) == 1 and Path(r.mask_paths[0]).parent.name == "masks"
    for r in scan.records:
        assert r.label is None and r.split is None and r.source == "jsrt"
        assert r.meta["nodule"] is r.patient_id.startswith("JPCLN")
        assert r.patient_id == Path(r.image_path).stem and Path(r.image_path).is_absolute()
    assert {r.uid for r in raw} == {
        f"jsrt/All247images/{s}.IMG" for s in ("JPCLN001", "JPCLN002", "JPCNN001", "JPCNN002")
    }
    assert scan.summary()["masks"] == 6


def test_one_level_down_and_image_without_masks(tmp_path):
    root = fake_raw(tmp_path / "JSRT", ["JPCLN005", "JPCNN010"], {"JPCLN005": SIDES})
    scan = jsrt.scan(tmp_path)
    assert scan.root == root
    masks = {r.patient_id: r.mask_paths for r in scan.records}
    assert len(masks["JPCLN005"]) == 2 and masks["JPCNN010"] == ()
    assert not scan.skipped


def test_wrong_layout_names_expected_and_found(tmp_path):
    touch(tmp_path / "images" / "JPCLN001.png")
    with pytest.raises(DatasetLayoutError) as err:
        jsrt.scan(tmp_path)
    assert "All247images/*.IMG" in str(err.value) and "png/images/*.png" in str(err.value)
    assert "found images/" in str(err.value)


def test_mask_without_image_raise_vs_skip(tmp_path):
    fake_raw(tmp_path, ["JPCLN001"], {"JPCLN001": SIDES, "JPCNN077": SIDES})
    with pytest.raises(DatasetItemError, match=r"JPCNN077\.gif: mask without image: no All247images/JPCNN077\.IMG"):
        jsrt.scan(tmp_path)
    scan = jsrt.scan(tmp_path, on_error="skip")
    assert [r.patient_id for r in scan.records] == ["JPCLN001"]
    assert sorted(Path(s.path).parent.name for s in scan.skipped) == list(SIDES)


def test_png_mask_without_image_and_lone_lung(tmp_path):
    touch(tmp_path / "png" / "images" / "JPCLN003.png")
    touch(tmp_path / "png" / "masks" / "JPCLN003.png")
    touch(tmp_path / "png" / "masks" / "JPCNN004.png")
    fake_raw(tmp_path, ["JPCNN001"], {"JPCNN001": ("left lung",)})
    scan = jsrt.scan(tmp_path, on_error="skip")
    assert {r.patient_id: len(r.mask_paths) for r in scan.records} == {"JPCNN001": 0, "JPCLN003": 1}
    reasons = {Path(s.path).name: s.reason for s in scan.skipped}
    assert reasons["JPCNN004.png"] == "mask without image: no png/images/JPCNN004.png"
    assert "without its other side" in reasons["JPCNN001.gif"]
    with pytest.raises(DatasetItemError, match="left lung/JPCNN001.gif: lung mask without its other side"):
        jsrt.scan(tmp_path)


def test_bad_names_non_images_and_duplicates(tmp_path):
    fake_raw(tmp_path, ["JPCLN001", "IMAGE01"], {})
    touch(tmp_path / "All247images" / "readme.txt")
    touch(tmp_path / "All247images" / ".DS_Store")
    touch(tmp_path / "png" / "images" / "JPCLN001.png")
    with pytest.raises(DatasetItemError, match=r"IMAGE01\.IMG: not a JSRT file name"):
        jsrt.scan(tmp_path)
    scan = jsrt.scan(tmp_path, on_error="skip")
    assert [r.uid for r in scan.records] == ["jsrt/All247images/JPCLN001.IMG"]
    reasons = {Path(s.path).name: s.reason for s in scan.skipped}
    assert set(reasons) == {"IMAGE01.IMG", "readme.txt", "JPCLN001.png"}
    assert reasons["readme.txt"] == "not a .img file"
    assert "duplicate of the raw image" in reasons["JPCLN001.png"]
