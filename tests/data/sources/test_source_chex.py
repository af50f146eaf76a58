from pathlib import Path

import pytest

from multimix.data.records import NORMAL, PNEUMONIA
from multimix.data.sources import chex
from multimix.data.sources.base import DatasetItemError, DatasetLayoutError

from helpers import SHARED_DATA

SHARED = SHARED_DATA


@pytest.fixture
def real_root() -> Path:
    root = SHARED / "chex"
    if not root.is_dir():
        pytest.skip(f"shared CheX samples not found at {root}")
    return root


def make_tree(root: Path, files: dict[str, list[str]]) -> Path:
    """Fake CheX tree: ``{"train/NORMAL": ["IM-0001-0001.jpeg"], ...}`` (empty list = empty folder)."""
    for folder, names in files.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            (root / folder / name).write_bytes(b"\xff\xd8not decoded by scan")
    return root


def test_real_sample_counts_labels_splits_and_subtypes(real_root):
    scan = chex.scan(real_root)
    assert scan.root.name == "chest_xray"  # found one level down
    assert len(scan.records) == 24 and not scan.skipped
    count = {(s, c): 0 for s in ("train", "test") for c in (NORMAL, PNEUMONIA)}
    for r in scan.records:
        count[(r.split, r.label)] += 1
        assert r.source == "chex" and Path(r.image_path).is_absolute() and Path(r.image_path).is_file()
        assert r.uid == "chex/" + Path(r.image_path).relative_to(scan.root).as_posix()
    assert count == {("train", NORMAL): 8, ("train", PNEUMONIA): 8, ("test", NORMAL): 4, ("test", PNEUMONIA): 4}
    train_subtypes = [r.meta["subtype"] for r in scan.records if r.split == "train" and r.label == PNEUMONIA]
    assert sorted(train_subtypes) == ["bacteria"] * 4 + ["virus"] * 4
    assert all(r.meta["subtype"] is None for r in scan.records if r.label == NORMAL)
    by_name = {Path(r.image_path).stem: r.patient_id for r in scan.records}
    assert by_name["person1000_virus_1681"] == by_name["person1000_bacteria_2931"] == "person1000"
    assert by_name["NORMAL2-IM-0959-0001"] == "NORMAL2-IM-0959"


@pytest.mark.parametrize(
    "stem, expected",
    [
        ("person1_bacteria_1", ("person1", "bacteria")),
        ("person1000_virus_1681", ("person1000", "virus")),
        ("IM-0115-0001", ("IM-0115", None)),
        ("NORMAL2-IM-0007-0001", ("NORMAL2-IM-0007", None)),
        # follow-up images of the published release (144 files, 10 of them in the official test split)
        ("IM-0011-0001-0001", ("IM-0011", None)),
        ("NORMAL2-IM-0246-0001-0002", ("NORMAL2-IM-0246", None)),
        ("person447_virus_921_1", ("person447", "virus")),
        ("IM-0011-0001-0001-0001", None),
        ("person1_fungus_2", None),
        ("IM-0115", None),
        ("scan_001", None),
    ],
)
def test_parse_file_name(stem, expected):
    assert chex.parse_file_name(stem) == expected


def test_one_level_down_with_symlinks_and_val_split(tmp_path, real_root):
    src = real_root / "chest_xray" / "train"
    for cls in ("NORMAL", "PNEUMONIA"):
        (tmp_path / "unpacked" / "val" / cls).mkdir(parents=True)
        for path in sorted((src / cls).iterdir())[:2]:
            (tmp_path / "unpacked" / "val" / cls / path.name).symlink_to(path)
    (tmp_path / "unpacked" / "val" / "NORMAL" / ".DS_Store").write_bytes(b"x")  # ignored
    scan = chex.scan(tmp_path)
    assert scan.root == tmp_path / "unpacked"
    assert len(scan.records) == 4 and {r.split for r in scan.records} == {"val"} and not scan.skipped
    assert all(r.uid.startswith("chex/val/") for r in scan.records)


def test_wrong_layout_names_expected_and_found(tmp_path):
    make_tree(tmp_path, {"training/NORMAL": ["IM-0001-0001.jpeg"], "train/NORMAL": ["IM-0002-0001.jpeg"]})
    with pytest.raises(DatasetLayoutError) as err:
        chex.scan(tmp_path)
    message = str(err.value)
    assert "{train,val,test}/{NORMAL,PNEUMONIA}" in message and "training/" in message and "train/" in message
    with pytest.raises(DatasetLayoutError, match="not found"):
        chex.scan(tmp_path / "missing")


def test_empty_class_folder_raises_or_is_skipped(tmp_path):
    make_tree(tmp_path, {"train/NORMAL": ["IM-0001-0001.jpeg"], "train/PNEUMONIA": []})
    with pytest.raises(DatasetItemError, match=r"PNEUMONIA: empty class folder"):
        chex.scan(tmp_path)
    scan = chex.scan(tmp_path, on_error="skip")
    assert len(scan.records) == 1
    assert [(Path(s.path).name, s.reason) for s in scan.skipped] == [
        ("PNEUMONIA", "empty class folder: no image files")
    ]


def test_unparseable_name_is_used_as_its_own_patient_and_reported(tmp_path):
    make_tree(
        tmp_path,
        {
            "test/NORMAL": ["IM-0001-0001.jpeg", "scan 7.jpeg"],
            "test/PNEUMONIA": ["person3_virus_9.jpeg", "scan 8.jpeg"],
        },
    )
    for on_error in ("raise", "skip"):  # a guessed patient is not an error: the label is known
        scan = chex.scan(tmp_path, on_error=on_error)
        by_name = {Path(r.image_path).name: r for r in scan.records}
        assert len(scan.records) == 4 and not scan.skipped
        assert by_name["scan 7.jpeg"].label == NORMAL and by_name["scan 8.jpeg"].label == PNEUMONIA
        assert by_name["scan 7.jpeg"].patient_id == "chex/test/NORMAL/scan 7.jpeg"
        assert by_name["scan 7.jpeg"].patient_id != by_name["scan 8.jpeg"].patient_id
        assert sorted(Path(n.path).name for n in scan.notes) == ["scan 7.jpeg", "scan 8.jpeg"]
        assert all("own patient" in n.reason for n in scan.notes)
    notes = scan.summary()["notes"]
    assert len(notes) == 2 and notes[0]["path"].endswith("scan 7.jpeg")


def test_follow_up_names_join_their_patient(tmp_path):
    make_tree(
        tmp_path,
        {
            "train/NORMAL": ["IM-0429-0001.jpeg", "IM-0429-0001-0002.jpeg", "NORMAL2-IM-0246-0001-0001.jpeg"],
            "train/PNEUMONIA": ["person447_virus_921_1.jpeg", "person447_bacteria_2.jpeg"],
        },
    )
    scan = chex.scan(tmp_path)
    assert len(scan.records) == 5 and not scan.skipped and not scan.notes
    patients = {Path(r.image_path).stem: r.patient_id for r in scan.records}
    assert patients["IM-0429-0001"] == patients["IM-0429-0001-0002"] == "IM-0429"
    assert patients["NORMAL2-IM-0246-0001-0001"] == "NORMAL2-IM-0246"
    assert patients["person447_virus_921_1"] == patients["person447_bacteria_2"] == "person447"


def test_non_images_incomplete_splits_and_mislabelled_names(tmp_path):
    make_tree(
        tmp_path,
        {
            "train/NORMAL": ["IM-0001-0001.jpeg", "notes.txt", "person2_virus_1.jpeg"],
            "train/PNEUMONIA": ["person1_bacteria_1.jpeg"],
            "test/NORMAL": ["IM-0003-0001.jpeg"],
        },
    )
    with pytest.raises(DatasetItemError, match=r"notes\.txt: not an image file"):
        chex.scan(tmp_path)
    scan = chex.scan(tmp_path, on_error="skip")
    assert sorted(Path(r.image_path).name for r in scan.records) == [
        "IM-0001-0001.jpeg",
        "IM-0003-0001.jpeg",
        "person1_bacteria_1.jpeg",
    ]
    reasons = {Path(s.path).name: s.reason for s in scan.skipped}
    assert reasons["notes.txt"].startswith("not an image file")
    assert "says virus but it sits in NORMAL/" in reasons["person2_virus_1.jpeg"]
    assert "lacks class folder(s) ['PNEUMONIA']" in reasons["test"]
    with pytest.raises(ValueError, match="on_error"):
        chex.scan(tmp_path, on_error="ignore")
