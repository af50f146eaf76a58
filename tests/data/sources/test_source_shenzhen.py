from pathlib import Path

import pytest
from fake_trees import png, shenzhen, touch

from multimix.data.sources import shenzhen as source
from multimix.data.sources.base import DatasetItemError, DatasetLayoutError

STEMS = ["CHNCXR_0001_0", "CHNCXR_0002_1", "CHNCXR_0003_1"]


def test_partial_masks_and_tb_meta(tmp_path):
    shenzhen(tmp_path, STEMS, masks=STEMS[1:2])
    result = source.scan(tmp_path)
    assert [r.uid for r in result.records] == [f"shenzhen/CXR_png/{s}.png" for s in STEMS]
    assert [r.mask_paths for r in result.records] == [
        (),
        (str(tmp_path / "mask/CHNCXR_0002_1_mask.png"),),
        (),
    ]
    assert [r.meta["tb"] for r in result.records] == [False, True, True]
    assert {r.label for r in result.records} == {None}
    assert [r.patient_id for r in result.records] == ["CHNCXR_0001", "CHNCXR_0002", "CHNCXR_0003"]
    assert result.summary()["masks"] == 1


@pytest.mark.parametrize("mask_dir", ["mask", "masks", "lung_masks"])
def test_any_sibling_mask_folder_one_level_down(tmp_path, mask_dir):
    base = shenzhen(tmp_path / "ChinaSet_AllFiles", STEMS[:2], masks=STEMS[:2], mask_dir=mask_dir)
    touch(base / "ClinicalReadings/CHNCXR_0001_0.txt", "male 35yrs\nnormal\n")
    touch(base / mask_dir / ".DS_Store")
    result = source.scan(tmp_path)
    assert result.root == base
    assert all(r.has_mask for r in result.records)
    assert result.records[0].meta == {"tb": False, "sex": "M", "age": 35}
    assert result.skipped == []


def test_wrong_layout_names_expected_and_found(tmp_path):
    png(tmp_path / "pictures/CHNCXR_0001_0.png")
    with pytest.raises(DatasetLayoutError, match=r"CXR_png/CHNCXR_####_\{0,1\}\.png") as error:
        source.scan(tmp_path)
    assert "_mask.png" in str(error.value) and "pictures/" in str(error.value)


def test_mask_without_image(tmp_path):
    shenzhen(tmp_path, STEMS[:1], masks=STEMS[:2])
    with pytest.raises(DatasetItemError, match="without an image") as error:
        source.scan(tmp_path)
    assert "CHNCXR_0002_1_mask.png" in str(error.value)
    result = source.scan(tmp_path, on_error="skip")
    assert [r.has_mask for r in result.records] == [True]
    assert [Path(s.path).name for s in result.skipped] == ["CHNCXR_0002_1_mask.png"]


def test_unparseable_image_name_raise_or_skip(tmp_path):
    shenzhen(tmp_path, [STEMS[0], "MCUCXR_0001_0", "scan 7"])
    with pytest.raises(DatasetItemError, match=r"does not match CHNCXR_####") as error:
        source.scan(tmp_path)
    assert "MCUCXR_0001_0.png" in str(error.value)
    result = source.scan(tmp_path, on_error="skip")
    assert [r.patient_id for r in result.records] == ["CHNCXR_0001"]
    assert sorted(Path(s.path).name for s in result.skipped) == ["MCUCXR_0001_0.png", "scan 7.png"]


def test_unparseable_mask_name_and_duplicate_mask(tmp_path):
    shenzhen(tmp_path, STEMS[:1], masks=STEMS[:1])
    png(tmp_path / "mask/CHNCXR_0001_0.png")  # no _mask suffix
    with pytest.raises(DatasetItemError, match="mask file name does not match") as error:
        source.scan(tmp_path)
    assert "mask/CHNCXR_0001_0.png" in str(error.value)
    shenzhen(tmp_path, [], masks=STEMS[:1], mask_dir="masks")
    result = source.scan(tmp_path, on_error="skip")
    assert sorted(s.reason.split(" (")[0] for s in result.skipped) == [
        "mask file name does not match CHNCXR_####_{0,1}_mask.png",
        "second mask for the same image",
    ]
    assert result.records[0].has_mask


def test_bad_on_error_rejected_up_front(tmp_path):
    shenzhen(tmp_path, STEMS[:1])
    with pytest.raises(ValueError, match="on_error"):
        source.scan(tmp_path, on_error="warn")
