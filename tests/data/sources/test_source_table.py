"""csv:PATH sources: a hospital's label table (path, label, patient, mask, split)."""

from pathlib import Path

import pytest
from fake_trees import png

from multimix.data.records import NORMAL, PNEUMONIA
from multimix.data.sources import scan_source
from multimix.data.sources.base import DatasetItemError, DatasetLayoutError
from multimix.data.sources.table import label_names


def table(root: Path, text: str, name: str = "labels.csv", bom: bool = False) -> Path:
    path = root / name
    path.write_text(("\ufeff" if bom else "") + text)
    return path


@pytest.fixture
def hospital(tmp_path):
    for stem in ("a", "b", "c", "d"):
        png(tmp_path / "images" / f"{stem}.png")
    png(tmp_path / "masks" / "c.png", value=255)
    return tmp_path


def test_a_table_gives_labels_patients_masks_and_splits(hospital):
    path = table(
        hospital,
        "Path,Label,Patient,Mask,Split\n"
        "images/a.png,normal,P1,,train\n"
        "images/b.png,Pneumonia,P3,,test\n"
        "images/c.png,,P2,masks/c.png,\n",
        bom=True,  # a spreadsheet's export
    )
    scan = scan_source(f"csv:{path}")
    assert scan.name == "csv:labels" and not scan.skipped and not scan.notes
    a, b, c = scan.records
    assert (a.uid, a.label, a.patient_id, a.split) == ("csv:labels/images/a.png", NORMAL, "P1", "train")
    assert (b.label, b.split) == (PNEUMONIA, "test") and b.meta == {"row": 3, "label_name": "Pneumonia"}
    assert c.label is None and c.mask_paths == (str(hospital / "masks" / "c.png"),) and c.split is None
    assert Path(a.image_path).is_absolute() and Path(a.image_path).is_file()


def test_other_label_names_need_an_explicit_map_and_are_never_sorted_into_classes(hospital):
    # the case that flipped labels: sorted order would make abnormal "normal" and normal "pneumonia"
    path = table(hospital, "path,label\nimages/a.png,normal\nimages/b.png,abnormal\n")
    with pytest.raises(DatasetLayoutError, match=r"labels 'abnormal' are neither.*values found: abnormal, normal"):
        scan_source(f"csv:{path}")
    scan = scan_source(f"csv:{path}#abnormal=pneumonia")
    assert [(r.meta["label_name"], r.label) for r in scan.records] == [("normal", NORMAL), ("abnormal", PNEUMONIA)]
    assert "abnormal -> pneumonia, normal -> normal" in scan.notes[0].reason and scan.name == "csv:labels"
    assert label_names(["1", "0", ""]) == {"0": 0, "1": 1}
    assert label_names(["NORMAL", "pneumonia"]) == {"NORMAL": 0, "pneumonia": 1}
    with pytest.raises(DatasetLayoutError, match="effusion"):
        label_names(["normal", "pneumonia", "effusion"], origin="t.csv")
    with pytest.raises(DatasetLayoutError, match="must read WRITTEN=CLASS"):
        scan_source(f"csv:{path}#abnormal=sick")


@pytest.mark.parametrize("written", [["Normal", "normal"], ["1", "pneumonia"], ["0", "normal"]])
def test_one_class_written_two_ways_is_refused_unless_mapped(written):
    with pytest.raises(DatasetLayoutError, match=r"is written 2 ways"):
        label_names(written, origin="t.csv")
    explicit = {w: label_names([w])[w] for w in written}
    assert label_names(written, label_map=explicit) == explicit


def test_bad_rows_are_named_with_their_line_and_skipped_or_raised(hospital):
    png(hospital / "images" / "e.gif")
    path = table(
        hospital,
        "path,label,mask,split\n"
        "images/a.png,normal,,\n"
        "images/missing.png,normal,,\n"
        "images/a.png,pneumonia,,\n"
        "images/e.gif,normal,,\n"
        ",normal,,\n"
        "images/b.png,normal,masks/none.png,\n"
        "images/d.png,normal,,holdout\n",
    )
    scan = scan_source(f"csv:{path}", on_error="skip")
    assert [r.uid for r in scan.records] == ["csv:labels/images/a.png"]
    reasons = {s.path.split(str(hospital))[-1]: s.reason for s in scan.skipped}
    assert reasons == {
        "/labels.csv:3: images/missing.png": "image file not found",
        "/labels.csv:4: images/a.png": "listed twice",
        "/labels.csv:5: images/e.gif": (
            "not an image file (expected .png/.jpg/.jpeg/.dcm/.dicom, or DICOM content under any name)"
        ),
        "/labels.csv:6": "empty path",
        "/labels.csv:7: images/b.png": "mask file not found: masks/none.png",
        "/labels.csv:8: images/d.png": "unknown split 'holdout' (expected one of train, val, test or empty)",
    }
    with pytest.raises(DatasetItemError, match=r"labels.csv:3: images/missing.png: image file not found"):
        scan_source(f"csv:{path}")


def test_a_table_without_a_path_column_or_file_is_refused(tmp_path):
    with pytest.raises(DatasetLayoutError, match="no 'path' column.*found: file, class"):
        bad = table(tmp_path, "file,class\na.png,normal\n")
        scan_source(f"csv:{bad}")
    with pytest.raises(DatasetLayoutError, match="label table not found"):
        scan_source(f"csv:{tmp_path / 'none.csv'}")
    with pytest.raises(ValueError, match="csv:FILE"):
        scan_source("spreadsheet")


def test_a_hospital_table_trains_end_to_end(tmp_path):
    """Labels and masks from one CSV, patients kept together: `train --cls-sources csv:...` runs."""
    import json

    import numpy as np
    from skimage import io as skio

    from multimix.runs.train import run_training

    from helpers import tiny_config

    rng = np.random.default_rng(0)
    lines = ["path,label,patient,mask"]
    for i in range(24):
        image = (rng.random((40, 40)) * 255).astype(np.uint8)
        skio.imsave(tmp_path / f"x{i:02d}.png", image, check_contrast=False)
        mask = ""
        if i < 12:
            lung = np.zeros((40, 40), np.uint8)
            lung[8:32, 6:18] = lung[8:32, 22:34] = 255
            skio.imsave(tmp_path / f"m{i:02d}.png", lung, check_contrast=False)
            mask = f"m{i:02d}.png"
        lines.append(f"x{i:02d}.png,{'pneumonia' if i % 3 else 'normal'},P{i // 2},{mask}")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    spec = f"csv:{tmp_path / 'labels.csv'}"
    cfg = tiny_config(
        data__source="real",
        real__root=str(tmp_path),
        real__seg_sources=f"[{spec}]",
        real__cls_sources=f"[{spec}]",
        real__cross_seg_sources="[]",
        real__cross_cls_sources="[]",
        real__cache_dir=str(tmp_path / "cache"),
        data__seg_labels="4",
        data__cls_labels="6",
        train__steps=2,
        train__out=str(tmp_path / "run"),
    )
    summary = run_training(cfg, progress=False)
    assert summary["steps"] == 2 and 0 <= summary["in_domain"]["accuracy"] <= 1
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    held_out = set(split["test"]) | set(split["val"])
    assert held_out and held_out <= {f"csv:labels/x{i:02d}.png" for i in range(24)}
    for i in range(0, 24, 2):  # a patient's two images are on one side
        pair = {f"csv:labels/x{i:02d}.png", f"csv:labels/x{i + 1:02d}.png"}
        assert len(pair & held_out) in (0, 2)

    # a renamed copy of the training table, given to evaluate --sources / calibrate, leaves out
    # every image the run trained or validated on (and, for calibrate, tested on)
    from multimix.config import load_config
    from multimix.runs.held_out import load_split, source_records

    copy = tmp_path / "copy.csv"
    copy.write_text((tmp_path / "labels.csv").read_text())
    run_cfg = load_config(tmp_path / "run" / "config.yaml")
    checkpoint = tmp_path / "run" / "checkpoints" / "best.pt"
    run_split = load_split(checkpoint, run_cfg)
    used = {*run_split.seg.labeled, *run_split.cls.labeled, *run_split.seg.unlabeled, *run_split.cls.unlabeled}
    used |= set(run_split.val)
    used_files = {u.removeprefix("csv:labels/") for u in used}
    for exclude_test, allowed in ((False, set(run_split.test)), (True, set())):
        left = source_records(run_cfg, run_split, [f"csv:{copy}"], progress=False, exclude_test=exclude_test)
        left_files = {Path(r.image_path).name for r in left}
        assert not left_files & used_files
        assert left_files == {u.removeprefix("csv:labels/") for u in allowed}


def test_one_file_written_two_ways_is_one_image(hospital):
    """`images/a.png`, `images/../images/a.png` and its absolute path are one file: one record."""
    absolute_a = (hospital / "images" / "a.png").resolve()
    path = table(
        hospital,
        f"path,label\nimages/a.png,normal\nimages/../images/a.png,normal\n{absolute_a},normal\n"
        f"./images/b.png,pneumonia\n",
    )
    scan = scan_source(f"csv:{path}", on_error="skip")
    assert sorted(r.uid for r in scan.records) == ["csv:labels/images/a.png", "csv:labels/images/b.png"]
    assert [skipped.reason for skipped in scan.skipped] == ["listed twice", "listed twice"]
    with pytest.raises(DatasetItemError, match=r"labels.csv:3: images/../images/a.png: listed twice"):
        scan_source(f"csv:{path}", on_error="raise")


def test_absolute_rows_get_the_uid_of_their_relative_spelling(hospital):
    relative = scan_source("csv:" + str(table(hospital, "path,label\nimages/a.png,normal\n", name="rel.csv")))
    written = f"path,label\n{(hospital / 'images' / 'a.png').resolve()},normal\n"
    absolute = scan_source("csv:" + str(table(hospital, written, name="rel.csv")))
    assert [r.uid for r in relative.records] == [r.uid for r in absolute.records] == ["csv:rel/images/a.png"]


def test_a_split_column_that_splits_a_patient_is_refused(hospital):
    path = table(
        hospital,
        "path,label,patient,split\nimages/a.png,normal,P1,train\nimages/b.png,normal,P1,test\n"
        "images/c.png,pneumonia,P2,train\nimages/d.png,pneumonia,P2,train\n",
    )
    with pytest.raises(DatasetLayoutError, match=r"patient 'P1' on 2 sides \(test on line 3; train on line 2\)"):
        scan_source(f"csv:{path}")


def test_a_table_in_utf16_is_read_and_one_in_windows_1252_is_named_with_the_fix(hospital):
    text = "path,label,patient\nimages/a.png,normal,Müller\nimages/b.png,pneumonia,Zoë\n"
    (hospital / "utf16.csv").write_bytes(text.encode("utf-16"))
    assert [r.patient_id for r in scan_source(f"csv:{hospital / 'utf16.csv'}").records] == ["Müller", "Zoë"]
    (hospital / "cp1252.csv").write_bytes(text.encode("cp1252"))
    with pytest.raises(
        DatasetLayoutError, match=r"cp1252.csv: line 2: byte 0xfc is not UTF-8.*save the table as UTF-8"
    ):
        scan_source(f"csv:{hospital / 'cp1252.csv'}")


def test_a_table_without_a_patient_column_counts_every_image_as_its_own_patient(hospital):
    path = table(hospital, "path,label\nimages/a.png,normal\nimages/b.png,pneumonia\nimages/c.png,normal\n")
    assert scan_source(f"csv:{path}").summary()["patients"] == 3
