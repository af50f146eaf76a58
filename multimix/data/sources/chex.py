"""Kermany et al. pediatric pneumonia chest X-rays ("CheX").

Distributed by Mendeley Data (Kermany et al. 2018, CC BY 4.0) and mirrored on Kaggle as
"Chest X-Ray Images (Pneumonia)". The publisher's layout, possibly one folder down
(``<root>/chest_xray/train/...``)::

    <root>/
        train/
            NORMAL/      IM-0115-0001.jpeg, NORMAL2-IM-0007-0001.jpeg, ...
            PNEUMONIA/   person1_bacteria_1.jpeg, person1_virus_6.jpeg, ...
        val/             (same two class folders; tiny, some copies omit it)
        test/            (same two class folders)

The class comes from the class folder, the official split from the split folder, and the
patient from the file name (``person1_bacteria_1`` -> ``person1``, ``IM-0115-0001`` ->
``IM-0115``, ``NORMAL2-IM-0007-0001`` -> ``NORMAL2-IM-0007``). The release also holds
follow-up images with one more number (``IM-0011-0001-0001``, ``NORMAL2-IM-0246-0001-0002``,
``person447_virus_921_1``): they belong to the same patient. Pneumonia images keep their
subtype (``"bacteria"`` / ``"virus"``) in ``meta["subtype"]``; normal images have ``None``.
A name that fits no pattern is still used: the file becomes its own patient (so it can never
leak across a patient-grouped split) and is listed in ``SourceScan.notes``.
"""

from __future__ import annotations

import re
from pathlib import Path

from multimix.data.records import NORMAL, PNEUMONIA, Record
from multimix.data.sources._files import absolute, make_uid
from multimix.data.sources.base import SourceScan, check_on_error, locate_root

__all__ = ["CLASS_FOLDERS", "IMAGE_SUFFIXES", "NAME", "SPLITS", "parse_file_name", "scan"]

NAME = "chex"
SPLITS = ("train", "val", "test")
CLASS_FOLDERS = {"NORMAL": NORMAL, "PNEUMONIA": PNEUMONIA}
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
EXPECTED = "{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg (at least one split with both class folders)"

_PNEUMONIA_NAME = re.compile(r"(person\d+)_(bacteria|virus)_\d+(?:_\d+)?")
_NORMAL_NAME = re.compile(r"((?:NORMAL\d*-)?IM-\d+)(?:-\d+){1,2}")
UNPARSED_NOTE = (
    "file name fits no CheX pattern (personN_bacteria_M, personN_virus_M, IM-XXXX-YYYY, "
    "NORMAL2-IM-XXXX-YYYY); used as its own patient"
)


def parse_file_name(stem: str) -> tuple[str, str | None] | None:
    """``(patient_id, subtype)`` from a CheX file stem, or ``None`` if it matches no pattern.

    ``subtype`` is ``"bacteria"`` / ``"virus"`` for pneumonia names and ``None`` for normal ones.
    """
    match = _PNEUMONIA_NAME.fullmatch(stem)
    if match:
        return match.group(1), match.group(2)
    match = _NORMAL_NAME.fullmatch(stem)
    if match:
        return match.group(1), None
    return None


def scan(root: str | Path, *, on_error: str = "raise") -> SourceScan:
    """Find every CheX image under ``root`` (or one folder down) without decoding pixels.

    Args:
        root: the dataset folder as unpacked.
        on_error: ``"raise"`` to stop with :class:`~.base.DatasetItemError` at the first
            unusable item (unparseable name, empty or missing class folder, non-image file),
            ``"skip"`` to list it in ``SourceScan.skipped`` and go on.

    Raises:
        DatasetLayoutError: no split folder holding both ``NORMAL/`` and ``PNEUMONIA/`` exists.
    """
    check_on_error(on_error)
    base = locate_root(root, name=NAME, looks_right=_has_complete_split, expected=EXPECTED)
    result = SourceScan(name=NAME, root=base)
    for split in SPLITS:
        split_dir = base / split
        if split_dir.is_dir():
            _scan_split(result, base, split_dir, on_error)
    return result


def _has_complete_split(folder: Path) -> bool:
    return any(all((folder / split / cls).is_dir() for cls in CLASS_FOLDERS) for split in SPLITS)


def _scan_split(result: SourceScan, base: Path, split_dir: Path, on_error: str) -> None:
    missing = [cls for cls in CLASS_FOLDERS if not (split_dir / cls).is_dir()]
    if missing:
        # A split with one class only would silently bias its class balance; report it.
        found = sorted(p.name for p in split_dir.iterdir() if not p.name.startswith(".")) or "nothing"
        result.skip_or_raise(
            split_dir,
            f"split folder lacks class folder(s) {missing}: expected NORMAL/ and PNEUMONIA/, found {found}",
            on_error,
        )
    for cls, label in CLASS_FOLDERS.items():
        if (split_dir / cls).is_dir():
            _scan_class_folder(result, base, split_dir / cls, label, on_error)


def _scan_class_folder(result: SourceScan, base: Path, folder: Path, label: int, on_error: str) -> None:
    found_image = False
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):  # .DS_Store, ._* from macOS archives: not data
            continue
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            result.skip_or_raise(path, f"not an image file (expected {'/'.join(IMAGE_SUFFIXES)})", on_error)
            continue
        found_image = True
        record = _make_record(result, base, path, label, on_error)
        if record is not None:
            result.records.append(record)
    if not found_image:
        result.skip_or_raise(folder, "empty class folder: no image files", on_error)


def _make_record(result: SourceScan, base: Path, path: Path, label: int, on_error: str) -> Record | None:
    uid = make_uid(NAME, base, path)
    parsed = parse_file_name(path.stem)
    if parsed is None:
        # the label comes from the folder, so the image is still usable; only the patient is unknown
        result.note(path, UNPARSED_NOTE)
        return _record(uid, path, label, patient_id=uid, subtype=None)
    patient_id, subtype = parsed
    if (subtype is not None) != (label == PNEUMONIA):
        # The name and the folder disagree: the label would be a guess either way.
        result.skip_or_raise(path, f"file name says {subtype or 'normal'} but it sits in {path.parent.name}/", on_error)
        return None
    return _record(uid, path, label, patient_id=patient_id, subtype=subtype)


def _record(uid: str, path: Path, label: int, *, patient_id: str, subtype: str | None) -> Record:
    return Record(
        uid=uid,
        source=NAME,
        label=label,
        image_path=absolute(path),
        patient_id=patient_id,
        split=path.parent.parent.name,
        meta={"subtype": subtype},
    )
