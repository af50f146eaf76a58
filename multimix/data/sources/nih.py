"""NIH ChestX-ray14 (Wang et al. 2017).

Distributed by the NIH Clinical Center (no usage restrictions). The publisher's layout,
possibly one folder down; the full release splits the PNGs over twelve archives::

    <root>/
        Data_Entry_2017.csv        Image Index, Finding Labels ("A|B|..."), Follow-up #,
                                   Patient ID, ..., View Position (may be blank)
        train_val_list.txt         optional: official split, one Image Index per line
        test_list.txt              optional
        images/                    00000001_000.png ...        (a sample / re-pack)
        images_001/images/         00000001_000.png ...        (the full release)
        images_002/images/         ...

Images are searched in ``images*`` folders directly under the root and one level inside
them. Every image must have a CSV row and every CSV row an image (else ``on_error``
applies). The 14 findings are mapped to the binary task by a *label rule*:

* ``"pneumonia"`` (default): ``No Finding`` -> NORMAL, any finding containing ``Pneumonia``
  -> PNEUMONIA; all other images are left out and listed in ``skipped`` (never raised: they
  are a choice of the rule, not a data error);
* ``"abnormal"``: ``No Finding`` -> NORMAL, any finding -> PNEUMONIA (the positive class).

``patient_id`` is the CSV ``Patient ID``; ``split`` is ``"train"`` / ``"test"`` from the list
files, else ``None``; ``meta`` holds ``findings`` (list), ``view`` (``"PA"``/``"AP"`` or
``None`` when blank) and ``follow_up`` (int or ``None``).
"""

from __future__ import annotations

import csv
from pathlib import Path

from multimix.data.records import NORMAL, PNEUMONIA, Record
from multimix.data.sources.base import (
    DatasetLayoutError,
    Skipped,
    SourceScan,
    check_on_error,
    locate_root,
)

__all__ = ["LABEL_RULES", "NAME", "REQUIRED_COLUMNS", "map_findings", "scan"]

NAME = "nih"
CSV_NAME = "Data_Entry_2017.csv"
SPLIT_LISTS = {"train_val_list.txt": "train", "test_list.txt": "test"}
REQUIRED_COLUMNS = ("Image Index", "Finding Labels", "Patient ID")
LABEL_RULES = ("pneumonia", "abnormal")
NO_FINDING = "No Finding"
EXPECTED = f"{CSV_NAME} beside images*/ folders of PNGs (images/*.png or images_001/images/*.png ...)"


def map_findings(findings: list[str], rule: str) -> int | None:
    """The class index for an image's findings under ``rule``, or ``None`` if it is left out."""
    if rule not in LABEL_RULES:
        raise ValueError(f"unknown label_rule {rule!r}; choose one of {LABEL_RULES}")
    if findings == [NO_FINDING]:
        return NORMAL
    if rule == "abnormal":
        return PNEUMONIA
    return PNEUMONIA if any("Pneumonia" in f for f in findings) else None


def scan(root: str | Path, *, on_error: str = "raise", label_rule: str = "pneumonia") -> SourceScan:
    """Pair the ChestX-ray14 PNGs under ``root`` with their CSV rows, without decoding pixels.

    Args:
        root: the folder holding ``Data_Entry_2017.csv`` and the ``images*`` folders.
        on_error: ``"raise"`` to stop with :class:`~.base.DatasetItemError` at the first
            unusable item (CSV row without image, image without row, blank or duplicate
            row), ``"skip"`` to list it in ``SourceScan.skipped`` and go on. A partial download
            (only some ``images_0XX`` archives) needs ``"skip"``.
        label_rule: ``"pneumonia"`` or ``"abnormal"`` (see the module docstring).

    Raises:
        ValueError: unknown ``label_rule`` or ``on_error``.
        DatasetLayoutError: no CSV, or the CSV lacks a required column.
    """
    check_on_error(on_error)
    map_findings([NO_FINDING], label_rule)  # validates the rule before touching the disk
    base = locate_root(root, name=NAME, looks_right=_looks_like_nih, expected=EXPECTED)
    result = SourceScan(name=NAME, root=base)
    rows = _read_csv(base / CSV_NAME)
    images = _find_images(result, base, on_error)
    splits = _read_split_lists(result, base, on_error)
    seen: set[str] = set()
    for row in rows:
        record = _row_record(result, row, images, splits, seen, label_rule, on_error)
        if record is not None:
            result.records.append(record)
    for name, path in images.items():
        if name not in seen:
            result.skip_or_raise(path, f"image not listed in {CSV_NAME}", on_error)
    return result


def _looks_like_nih(folder: Path) -> bool:
    return (folder / CSV_NAME).is_file() or any(_image_folders(folder))


def _image_folders(base: Path) -> list[Path]:
    """``images*`` folders under ``base`` and one level inside them (``images_001/images``)."""
    top = sorted(p for p in base.glob("images*") if p.is_dir())
    return top + sorted(p for folder in top for p in folder.glob("images*") if p.is_dir())


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise DatasetLayoutError(f"{NAME}: {path} not found. Expected {EXPECTED}")
    with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: tolerate a BOM
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        for column in REQUIRED_COLUMNS:
            if column not in columns:
                raise DatasetLayoutError(f"{NAME}: {path} lacks the required column {column!r}; found {columns}")
        return [_clean_row(row) for row in reader]


def _clean_row(row: dict) -> dict[str, str]:
    """Strip keys and values; short rows give ``""``, surplus fields (key ``None``) are dropped."""
    return {key.strip(): (value or "").strip() for key, value in row.items() if key is not None}


def _find_images(result: SourceScan, base: Path, on_error: str) -> dict[str, Path]:
    images: dict[str, Path] = {}
    for folder in _image_folders(base):
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.name.startswith("."):
                continue  # nested images*/ folders are visited on their own; hidden files are not data
            if path.suffix.lower() != ".png":
                result.skip_or_raise(path, "not a .png file", on_error)
            elif path.name in images:
                result.skip_or_raise(path, f"second copy of {path.name} (first: {images[path.name]})", on_error)
            else:
                images[path.name] = path
    return images


def _read_split_lists(result: SourceScan, base: Path, on_error: str) -> dict[str, str]:
    splits: dict[str, str] = {}
    for file_name, split in SPLIT_LISTS.items():
        path = base / file_name
        if not path.is_file():
            continue
        for name in path.read_text(encoding="utf-8").split():
            if splits.get(name, split) != split:
                result.skip_or_raise(path, f"{name} is listed in both official splits", on_error)
            splits[name] = split
    return splits


def _row_record(
    result: SourceScan,
    row: dict[str, str],
    images: dict[str, Path],
    splits: dict[str, str],
    seen: set[str],
    rule: str,
    on_error: str,
) -> Record | None:
    name, labels, patient = row["Image Index"], row["Finding Labels"], row["Patient ID"]
    where = f"{result.root / CSV_NAME} row {name or '<blank Image Index>'}"
    if not name or not labels or not patient:
        result.skip_or_raise(where, "blank Image Index, Finding Labels or Patient ID", on_error)
        return None
    if name in seen:
        result.skip_or_raise(where, "duplicate row for this image", on_error)
        return None
    seen.add(name)
    findings = [f.strip() for f in labels.split("|") if f.strip()]
    label = map_findings(findings, rule)
    if label is None:
        result.skipped.append(Skipped(where, f"finding not in rule {rule!r}: {labels}"))
        return None
    if name not in images:
        result.skip_or_raise(where, "image not found in any images*/ folder", on_error)
        return None
    return Record(
        uid=f"{NAME}/{name}",
        source=NAME,
        label=label,
        image_path=str(images[name].absolute()),
        patient_id=patient,
        split=splits.get(name),
        meta={
            "findings": findings,
            "view": row.get("View Position") or None,
            "follow_up": _int_or_none(row.get("Follow-up #")),
        },
    )


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None
