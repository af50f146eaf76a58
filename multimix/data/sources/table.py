"""A hospital's own label table: one CSV row per image, as a PACS or spreadsheet export gives it.

::

    path,label,patient,mask,split
    images/a.png,normal,P001,masks/a.png,train
    images/b.png,pneumonia,P002,,test
    images/c.png,,P003,masks/c.png,

``path`` is required and relative to the CSV's folder (an absolute path is kept as it is);
``label``, ``patient``, ``mask`` and ``split`` are optional columns (header names are matched
case-insensitively; a spreadsheet's byte-order mark is ignored). An empty label is an unlabeled
image, an empty patient an image that is its own patient, an empty split "no official split".

Labels mean what they say: ``normal`` / ``pneumonia`` (any case) and ``0`` / ``1`` are the two
classes of MultiMix's head. Any other name needs an explicit map after the path,
``csv:labels.csv#healthy=normal,abnormal=pneumonia`` (noted in the scan); an unmapped name, or
one class written two ways without a map (``Normal`` and ``normal``, ``1`` and ``pneumonia``),
is an error that lists the values found. Nothing is ever mapped by sorted order.

A row that cannot be used (no such image file, not an image, a mask that is missing, a path
listed twice, an unknown split) is skipped with its line number, or raised with
``on_error="raise"``. Records: ``source = name or "csv:<file stem>"``, uid ``<source>/<path>``,
``meta["row"]`` the CSV line and ``meta["label_name"]`` the label as written.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from multimix.data.records import CLASS_NAMES, Record, file_key
from multimix.data.sources._files import IMAGE_SUFFIXES, absolute, is_image
from multimix.data.sources.base import DatasetLayoutError, SourceScan, check_on_error
from multimix.data.splits import OFFICIAL_SPLITS

PATH, LABEL, PATIENT, MASK, SPLIT = "path", "label", "patient", "mask", "split"
MAP_SEPARATOR = "#"  # csv:labels.csv#written=class,...

__all__ = ["MAP_SEPARATOR", "label_names", "parse_label_map", "scan"]


def scan(
    csv_path: str | Path, *, on_error: str = "raise", name: str | None = None, label_map: dict[str, int] | None = None
) -> SourceScan:
    """Scan the images a label table lists; ``label_map`` (:func:`parse_label_map`) gives the
    meaning of labels written other than normal/pneumonia or 0/1.

    Raises:
        DatasetLayoutError: the file is missing, has no ``path`` column, or its labels are not
            clear (see the module doc).
    """
    check_on_error(on_error)
    table = Path(csv_path)
    source = name or f"csv:{table.stem}"
    if not table.is_file():
        raise DatasetLayoutError(f"{source}: label table not found: {table}")
    rows = _read_rows(table)
    classes = label_names([row.get(LABEL, "") for _, row in rows], origin=str(table), label_map=label_map)
    result = SourceScan(source, table.parent)
    if label_map:
        result.note(table, "labels mapped: " + ", ".join(f"{n} -> {CLASS_NAMES[i]}" for n, i in classes.items()))
    seen: set[str] = set()
    for line, row in rows:
        record = _record(result, table, line, row, classes, seen, on_error)
        if record is not None:
            result.records.append(record)
    result.records.sort(key=lambda r: r.uid)
    _check_patients_on_one_side(result.records, table)
    return result


def _check_patients_on_one_side(records: list[Record], table: Path) -> None:
    """A ``split`` column may not put one patient's images on two sides (a test image of a patient
    the model trained on)."""
    sides: dict[str, dict[str, list[int]]] = {}
    for record in records:
        if record.patient_id and record.split:
            sides.setdefault(record.patient_id, {}).setdefault(record.split, []).append(record.meta["row"])
    split_patients = {p: s for p, s in sides.items() if len(s) > 1}
    if split_patients:
        patient, where = sorted(split_patients.items())[0]
        lines = "; ".join(f"{side} on line {', '.join(map(str, rows))}" for side, rows in sorted(where.items()))
        raise DatasetLayoutError(
            f"{table}: the split column puts patient {patient!r} on {len(where)} sides ({lines})"
            + (f", and {len(split_patients) - 1} more patients likewise" if len(split_patients) > 1 else "")
            + "; a patient's images must all be in one split"
        )


def _table_text(table: Path) -> str:
    """The table's text: UTF-8 (with or without a byte-order mark) or UTF-16 with its mark (Excel's
    "Unicode text"); anything else is refused naming the line and the byte, with the fix."""
    data = table.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DatasetLayoutError(
            f"{table}: line {line}: byte {data[err.start]:#04x} is not UTF-8 (a Windows-1252 or Latin-1 "
            "export?); save the table as UTF-8 (in Excel: 'CSV UTF-8')"
        ) from None


def _read_rows(table: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, row with lower-cased keys and stripped values); a table without ``path`` is an error."""
    with io.StringIO(_table_text(table), newline="") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip().lower() for h in reader.fieldnames or []]
        if PATH not in header:
            raise DatasetLayoutError(
                f"{table}: no '{PATH}' column; expected a header like path,label,patient,mask,split "
                f"(found: {', '.join(header) or 'an empty file'})"
            )
        return [
            (reader.line_num, {k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None})
            for row in reader
        ]


def parse_label_map(text: str, *, origin: str = "label map") -> dict[str, int]:
    """``"healthy=normal,abnormal=pneumonia"`` -> ``{"healthy": 0, "abnormal": 1}`` (a class by
    its name, any case, or its index)."""
    mapping: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        written, sep, meaning = (x.strip() for x in part.partition("="))
        index = _known_class(meaning)
        if not sep or not written or index is None:
            raise DatasetLayoutError(
                f"{origin}: label map entry {part!r} must read WRITTEN=CLASS with CLASS one of "
                f"{', '.join(CLASS_NAMES)} (or 0/1)"
            )
        mapping[written] = index
    return mapping


def _known_class(name: str) -> int | None:
    if name.lower() in CLASS_NAMES:
        return CLASS_NAMES.index(name.lower())
    return int(name) if name in ("0", "1") else None


def label_names(
    values: list[str], *, origin: str = "labels", label_map: dict[str, int] | None = None
) -> dict[str, int]:
    """Label as written -> class index: ``label_map`` first, then ``normal``/``pneumonia`` (any case)
    and ``0``/``1``. Refused, naming the values found: a label none of these explains, and a class
    written two ways that the map does not name (a file exported from two systems)."""
    label_map = label_map or {}
    names = sorted({v for v in values if v})
    classes = {n: label_map[n] if n in label_map else _known_class(n) for n in names}
    unknown = [n for n, i in classes.items() if i is None]
    if unknown:
        raise DatasetLayoutError(
            f"{origin}: labels {', '.join(map(repr, unknown))} are neither {' nor '.join(CLASS_NAMES)} nor 0/1 "
            f"(values found: {', '.join(names)}); give their meaning after the path, e.g. "
            f"csv:FILE#{unknown[0]}={CLASS_NAMES[0]}"
        )
    for index, name in enumerate(CLASS_NAMES):
        implicit = [n for n, i in classes.items() if i == index and n not in label_map]
        if len(implicit) > 1:
            raise DatasetLayoutError(
                f"{origin}: class {name} is written {len(implicit)} ways ({', '.join(implicit)}); "
                "write it one way, or map every spelling explicitly (csv:FILE#"
                + ",".join(f"{n}={name}" for n in implicit)
                + ")"
            )
    return {n: int(i) for n, i in classes.items() if i is not None}


def _record(
    result: SourceScan,
    table: Path,
    line: int,
    row: dict[str, str],
    classes: dict[str, int],
    seen: set[str],
    on_error: str,
) -> Record | None:
    where = f"{table}:{line}"
    written = row.get(PATH, "")
    if not written:
        result.skip_or_raise(where, "empty path", on_error)
        return None
    image = _resolve(table, written)
    problem = _problem(image, row, table, seen)
    if problem is not None:
        result.skip_or_raise(f"{where}: {written}", problem, on_error)
        return None
    seen.add(file_key(image))
    mask = row.get(MASK, "")
    label_name = row.get(LABEL, "")
    return Record(
        uid=f"{result.name}/{_spelled_once(image, table)}",
        source=result.name,
        label=classes[label_name] if label_name else None,
        image_path=absolute(image),
        mask_paths=(absolute(_resolve(table, mask)),) if mask else (),
        patient_id=row.get(PATIENT, ""),
        split=row.get(SPLIT, "").lower() or None,
        meta={"row": line, "label_name": label_name},
    )


def _problem(image: Path, row: dict[str, str], table: Path, seen: set[str]) -> str | None:
    """Why a row cannot be used, or ``None``."""
    if file_key(image) in seen:
        return "listed twice"
    if not image.is_file():
        return "image file not found"
    if not is_image(image):
        return f"not an image file (expected {'/'.join(IMAGE_SUFFIXES)}, or DICOM content under any name)"
    mask = row.get(MASK, "")
    if mask and not _resolve(table, mask).is_file():
        return f"mask file not found: {mask}"
    split = row.get(SPLIT, "").lower()
    if split and split not in OFFICIAL_SPLITS:
        return f"unknown split {split!r} (expected one of {', '.join(OFFICIAL_SPLITS)} or empty)"
    return None


def _spelled_once(image: Path, table: Path) -> str:
    """The image's path relative to the table's folder with ``..`` and ``.`` folded (absolute where
    it lies outside; links are kept), so every spelling of one path gets one uid."""
    path, folder = os.path.normpath(os.path.abspath(image)), os.path.normpath(os.path.abspath(table.parent))
    inside = os.path.commonpath([path, folder]) == folder
    return Path(os.path.relpath(path, folder) if inside else path).as_posix()


def _resolve(table: Path, written: str) -> Path:
    path = Path(written).expanduser()
    return path if path.is_absolute() else table.parent / path
