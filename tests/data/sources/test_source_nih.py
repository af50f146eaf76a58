from pathlib import Path

import pytest

from multimix.data.records import NORMAL, PNEUMONIA
from multimix.data.sources import nih
from multimix.data.sources.base import DatasetItemError, DatasetLayoutError

from helpers import SHARED_DATA

SHARED = SHARED_DATA
HEADER = "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position\n"


@pytest.fixture
def real_root() -> Path:
    root = SHARED / "nih"
    if not root.is_dir():
        pytest.skip(f"shared NIH samples not found at {root}")
    return root


def fake_nih(
    root: Path, rows: list[str], images: list[str], header: str = HEADER, folder: str = "images_001/images"
) -> Path:
    (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "Data_Entry_2017.csv").write_text(header + "".join(row + "\n" for row in rows))
    for name in images:
        (root / folder / name).write_bytes(b"\x89PNG not decoded by scan")
    return root


ROWS = [
    "00000001_000.png,No Finding,0,1,58,M,PA",
    "00000002_000.png,Pneumonia|Edema,0,2,81,M,",
    "00000003_001.png,Effusion,1,3,74,F,AP",
]
IMAGES = ["00000001_000.png", "00000002_000.png", "00000003_001.png"]


def test_real_sample(real_root):
    scan = nih.scan(real_root)
    assert len(scan.records) == 12 and not scan.skipped
    assert sum(r.label == NORMAL for r in scan.records) == 6
    assert sum(r.label == PNEUMONIA for r in scan.records) == 6
    record = next(r for r in scan.records if r.uid == "nih/00000061_012.png")
    assert record.patient_id == "61" and record.split is None and Path(record.image_path).is_file()
    assert record.meta == {
        "findings": ["Effusion", "Infiltration", "Pneumonia", "Edema", "Pleural_Thickening"],
        "view": None,
        "follow_up": 12,
    }


def test_label_rules_splits_and_nested_layout(tmp_path):
    root = fake_nih(tmp_path / "ChestX-ray14", ROWS, IMAGES)
    (root / "train_val_list.txt").write_text("00000001_000.png\n00000002_000.png\n")
    (root / "test_list.txt").write_text("00000003_001.png\n")
    scan = nih.scan(tmp_path)  # one level down, images_001/images/
    assert scan.root == root
    assert {r.uid: (r.label, r.split) for r in scan.records} == {
        "nih/00000001_000.png": (NORMAL, "train"),
        "nih/00000002_000.png": (PNEUMONIA, "train"),
    }
    assert [s.reason for s in scan.skipped] == ["finding not in rule 'pneumonia': Effusion"]
    assert scan.records[0].meta["view"] == "PA" and scan.records[1].meta["view"] is None
    abnormal = nih.scan(root, label_rule="abnormal")
    assert [(r.label, r.split) for r in abnormal.records] == [
        (NORMAL, "train"),
        (PNEUMONIA, "train"),
        (PNEUMONIA, "test"),
    ]
    assert not abnormal.skipped
    with pytest.raises(ValueError, match=r"unknown label_rule 'covid'.*'pneumonia', 'abnormal'"):
        nih.scan(root, label_rule="covid")


def test_missing_csv_and_wrong_layout(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(
        DatasetLayoutError, match=r"Data_Entry_2017\.csv not found\. Expected Data_Entry_2017\.csv beside images\*/"
    ):
        nih.scan(tmp_path)
    other = tmp_path / "other"
    (other / "pngs").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match=r"Expected Data_Entry_2017\.csv.*found pngs/"):
        nih.scan(other)


def test_csv_missing_column(tmp_path):
    fake_nih(
        tmp_path,
        ["00000001_000.png,No Finding,0"],
        ["00000001_000.png"],
        header="Image Index,Finding Labels,Follow-up #\n",
    )
    with pytest.raises(DatasetLayoutError) as err:
        nih.scan(tmp_path)
    assert "Data_Entry_2017.csv lacks the required column 'Patient ID'" in str(err.value)


def test_row_without_image_and_image_without_row(tmp_path):
    fake_nih(tmp_path, ROWS, ["00000001_000.png", "00000009_000.png"], folder="images")
    with pytest.raises(DatasetItemError, match=r"row 00000002_000\.png: image not found in any images\*/ folder"):
        nih.scan(tmp_path)
    scan = nih.scan(tmp_path, on_error="skip")
    assert [r.uid for r in scan.records] == ["nih/00000001_000.png"]
    reasons = {Path(s.path).name: s.reason for s in scan.skipped}
    assert reasons["Data_Entry_2017.csv row 00000002_000.png"] == "image not found in any images*/ folder"
    # excluded by the rule before its missing image matters: not an error
    assert reasons["Data_Entry_2017.csv row 00000003_001.png"] == "finding not in rule 'pneumonia': Effusion"
    assert reasons["00000009_000.png"] == "image not listed in Data_Entry_2017.csv"


def test_image_without_row_raises(tmp_path):
    fake_nih(tmp_path, ROWS[:1], ["00000001_000.png", "00000009_000.png"])
    with pytest.raises(DatasetItemError, match=r"images/00000009_000\.png: image not listed in Data_Entry_2017\.csv"):
        nih.scan(tmp_path)


def test_excluded_findings_never_raise(tmp_path):
    fake_nih(tmp_path, ROWS[2:], IMAGES[2:])
    scan = nih.scan(tmp_path, on_error="raise")
    assert not scan.records and scan.summary()["skip_reasons"] == {"finding not in rule 'pneumonia': Effusion": 1}
