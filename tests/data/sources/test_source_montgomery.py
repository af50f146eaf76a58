from pathlib import Path

import pytest
from fake_trees import montgomery, png, touch

from multimix.data.sources import montgomery as source
from multimix.data.sources.base import DatasetItemError, DatasetLayoutError

STEMS = ["MCUCXR_0001_0", "MCUCXR_0002_1", "MCUCXR_0003_0"]


def test_pairs_left_and_right_masks_and_keeps_tb_in_meta(tmp_path):
    montgomery(tmp_path, STEMS, left=STEMS[:2], right=STEMS[:2])
    result = source.scan(tmp_path)
    assert [r.uid for r in result.records] == [f"montgomery/CXR_png/{s}.png" for s in STEMS]
    first, second, third = result.records
    assert first.mask_paths == (
        str(tmp_path / "ManualMask/leftMask/MCUCXR_0001_0.png"),
        str(tmp_path / "ManualMask/rightMask/MCUCXR_0001_0.png"),
    )
    assert Path(first.image_path).is_absolute() and first.image_path.endswith("CXR_png/MCUCXR_0001_0.png")
    assert third.mask_paths == ()  # image without mask: still a record
    assert [r.meta["tb"] for r in result.records] == [False, True, False]
    assert {r.label for r in result.records} == {None}  # TB is not pneumonia
    assert second.patient_id == "MCUCXR_0002" and second.source == "montgomery"
    assert result.summary()["masks"] == 2 and result.skipped == []


def test_tree_one_level_down_and_junk_files(tmp_path):
    montgomery(tmp_path / "MontgomerySet", STEMS[:1], left=STEMS[:1], right=STEMS[:1])
    touch(tmp_path / "MontgomerySet/CXR_png/.DS_Store")
    touch(tmp_path / "MontgomerySet/CXR_png/._MCUCXR_0001_0.png")
    touch(tmp_path / "MontgomerySet/CXR_png/Thumbs.db")
    touch(tmp_path / "MontgomerySet/CXR_png/readme.txt")
    result = source.scan(tmp_path)
    assert result.root == tmp_path / "MontgomerySet"
    assert [r.uid for r in result.records] == ["montgomery/CXR_png/MCUCXR_0001_0.png"]
    assert [Path(s.path).name for s in result.skipped] == ["readme.txt"]
    assert "not an image" in result.skipped[0].reason


def test_clinical_readings_give_sex_and_age(tmp_path):
    montgomery(tmp_path, STEMS[:1])
    touch(
        tmp_path / "ClinicalReadings/MCUCXR_0001_0.txt",
        "Patient's Sex: F\nPatient's Age: 048Y\nnormal\n",
    )
    meta = source.scan(tmp_path).records[0].meta
    assert meta == {"tb": False, "sex": "F", "age": 48, "pixel_spacing_mm": (0.0875, 0.0875)}


def test_wrong_layout_names_expected_and_found(tmp_path):
    png(tmp_path / "images/x.png")
    with pytest.raises(DatasetLayoutError) as error:
        source.scan(tmp_path)
    assert "CXR_png/MCUCXR_####_{0,1}.png" in str(error.value) and "leftMask" in str(error.value)
    assert "images/" in str(error.value)


def test_missing_right_mask_is_named(tmp_path):
    montgomery(tmp_path, STEMS[:2], left=STEMS[:2], right=STEMS[:1])
    missing = tmp_path / "ManualMask/rightMask/MCUCXR_0002_1.png"
    with pytest.raises(DatasetItemError, match="right lung mask missing") as error:
        source.scan(tmp_path)
    assert str(missing) in str(error.value)
    result = source.scan(tmp_path, on_error="skip")
    assert [s.path for s in result.skipped] == [str(missing)]
    assert [r.has_mask for r in result.records] == [True, False]  # image kept, half mask not used


def test_missing_left_mask_is_named(tmp_path):
    montgomery(tmp_path, STEMS[:1], right=STEMS[:1])
    with pytest.raises(DatasetItemError, match="left lung mask missing") as error:
        source.scan(tmp_path)
    assert str(tmp_path / "ManualMask/leftMask/MCUCXR_0001_0.png") in str(error.value)


def test_mask_without_image(tmp_path):
    montgomery(tmp_path, STEMS[:1], left=STEMS[:2], right=STEMS[:2])
    with pytest.raises(DatasetItemError, match="without an image") as error:
        source.scan(tmp_path)
    assert "MCUCXR_0002_1.png" in str(error.value)
    result = source.scan(tmp_path, on_error="skip")
    assert len(result.records) == 1 and len(result.skipped) == 1


@pytest.mark.parametrize("stem", ["MCUCXR_0001", "MCUCXR_01_0", "CHNCXR_0001_0", "MCUCXR_0001_2"])
def test_unparseable_name_raise_or_skip(tmp_path, stem):
    montgomery(tmp_path, [STEMS[0], stem])
    with pytest.raises(DatasetItemError, match="does not match MCUCXR_####") as error:
        source.scan(tmp_path)
    assert f"{stem}.png" in str(error.value)
    result = source.scan(tmp_path, on_error="skip")
    assert [r.patient_id for r in result.records] == ["MCUCXR_0001"]
    assert [Path(s.path).name for s in result.skipped] == [f"{stem}.png"]


def test_bad_on_error_rejected_up_front(tmp_path):
    montgomery(tmp_path, STEMS[:1])
    with pytest.raises(ValueError, match="on_error"):
        source.scan(tmp_path, on_error="warn")
