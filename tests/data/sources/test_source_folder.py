from pathlib import Path

import pytest
from fake_trees import png, touch

from multimix.data.sources import folder as source
from multimix.data.sources.base import DatasetItemError, DatasetLayoutError

from helpers import SHARED_DATA

SAMPLE = SHARED_DATA / "folder_seg"


def test_classification_layout(tmp_path):
    png(tmp_path / "NORMAL/a.png")
    png(tmp_path / "normal2/b.jpg")
    png(tmp_path / "Pneumonia/c.jpeg")
    touch(tmp_path / "Pneumonia/.DS_Store")
    touch(tmp_path / "Pneumonia/._c.jpeg")
    touch(tmp_path / "Pneumonia/labels.csv")
    with pytest.raises(DatasetLayoutError):  # normal2 is not a class by default
        source.scan(tmp_path)
    result = source.scan(tmp_path, class_map={"normal": 0, "Normal2": 0, "pneumonia": 1}, name="mine")
    assert [(r.uid, r.label) for r in result.records] == [
        ("mine/NORMAL/a.png", 0),
        ("mine/Pneumonia/c.jpeg", 1),
        ("mine/normal2/b.jpg", 0),
    ]
    assert result.records[1].patient_id == "c" and result.records[1].meta == {"class_folder": "Pneumonia"}
    assert Path(result.records[0].image_path).is_absolute()
    assert [Path(s.path).name for s in result.skipped] == ["labels.csv"]


def test_segmentation_layout_with_mask_suffix_and_unmasked_image(tmp_path):
    png(tmp_path / "data/images/a.png")
    png(tmp_path / "data/images/b.jpg")
    png(tmp_path / "data/images/c.png")
    png(tmp_path / "data/masks/a.png", 255)
    png(tmp_path / "data/masks/b_mask.png", 255)
    result = source.scan(tmp_path / "data")
    assert result.name == "folder:data"
    assert [r.uid for r in result.records] == [
        "folder:data/images/a.png",
        "folder:data/images/b.jpg",
        "folder:data/images/c.png",
    ]
    assert [Path(m).name for r in result.records for m in r.mask_paths] == ["a.png", "b_mask.png"]
    assert not result.records[2].has_mask and {r.label for r in result.records} == {None}


def test_both_layouts_one_level_down(tmp_path):
    png(tmp_path / "export/normal/n.png")
    png(tmp_path / "export/images/s.png")
    png(tmp_path / "export/masks/s.png")
    result = source.scan(tmp_path)
    assert result.root == tmp_path / "export"
    assert [(r.uid, r.label, r.has_mask) for r in result.records] == [
        (f"folder:{tmp_path.name}/images/s.png", None, True),
        (f"folder:{tmp_path.name}/normal/n.png", 0, False),
    ]


def test_neither_layout_names_both_and_what_was_found(tmp_path):
    png(tmp_path / "scans/x.png")
    touch(tmp_path / "notes.txt")
    with pytest.raises(DatasetLayoutError) as error:
        source.scan(tmp_path)
    message = str(error.value)
    assert "normal/" in message and "pneumonia/" in message and "images/" in message and "masks/" in message
    assert "found notes.txt, scans/" in message


def test_unknown_class_folder_lists_found_and_accepted(tmp_path):
    png(tmp_path / "normal/a.png")
    png(tmp_path / "covid/b.png")
    with pytest.raises(DatasetLayoutError, match="unknown class folder") as error:
        source.scan(tmp_path)
    message = str(error.value)
    assert "'covid'" in message and "['normal', 'pneumonia']" in message and "Found: covid/, normal/" in message


def test_masks_without_images_folder(tmp_path):
    png(tmp_path / "masks/a.png")
    with pytest.raises(DatasetLayoutError, match="masks/ found without images/"):
        source.scan(tmp_path)


def test_empty_class_folder_raise_or_skip(tmp_path):
    png(tmp_path / "normal/a.png")
    touch(tmp_path / "pneumonia/.DS_Store")
    with pytest.raises(DatasetItemError, match="class folder holds no images") as error:
        source.scan(tmp_path)
    assert str(tmp_path / "pneumonia") in str(error.value)
    result = source.scan(tmp_path, on_error="skip")
    assert len(result.records) == 1
    assert [(s.path, s.reason.split(" (")[0]) for s in result.skipped] == [
        (str(tmp_path / "pneumonia"), "class folder holds no images")
    ]


def test_mask_without_image_raise_or_skip(tmp_path):
    png(tmp_path / "images/a.png")
    png(tmp_path / "masks/a_mask.png")
    png(tmp_path / "masks/z.png")
    with pytest.raises(DatasetItemError, match="mask without an image: no images/z") as error:
        source.scan(tmp_path)
    assert str(tmp_path / "masks/z.png") in str(error.value)
    result = source.scan(tmp_path, on_error="skip")
    assert [r.has_mask for r in result.records] == [True]
    assert [s.path for s in result.skipped] == [str(tmp_path / "masks/z.png")]


def test_ambiguous_stems(tmp_path):
    png(tmp_path / "images/a.png")
    png(tmp_path / "masks/a.png")
    png(tmp_path / "masks/a_mask.png")
    with pytest.raises(DatasetItemError, match="same stem as a.png") as error:
        source.scan(tmp_path)
    assert "a_mask.png" in str(error.value)


def test_bad_class_map():
    with pytest.raises(ValueError, match="labels are 0"):
        source.scan(".", class_map={"covid": 2})
    with pytest.raises(ValueError, match="reserved"):
        source.scan(".", class_map={"Images": 1})


def test_real_sample():
    if not SAMPLE.is_dir():
        pytest.skip(f"sample data not found at {SAMPLE}")
    result = source.scan(SAMPLE)
    assert result.name == "folder:folder_seg"
    assert len(result.records) == 6 and all(r.has_mask for r in result.records)
    for record in result.records:
        assert Path(record.image_path).stem == Path(record.mask_paths[0]).stem == record.patient_id
        assert Path(record.image_path).is_file() and record.label is None
    assert result.skipped == []


def test_bad_on_error_rejected_up_front(tmp_path):
    png(tmp_path / "normal/a.png")
    with pytest.raises(ValueError, match="on_error"):
        source.scan(tmp_path, on_error="ignore")


def test_default_name_of_relative_root(tmp_path, monkeypatch):
    png(tmp_path / "normal/a.png")
    monkeypatch.chdir(tmp_path)
    assert source.scan(".").name == f"folder:{tmp_path.name}"
