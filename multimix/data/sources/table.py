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

Labels are taken from the data, two classes for MultiMix's head: ``normal`` / ``pneumonia``
(any case) or ``0`` / ``1`` keep their meaning; any other two names are mapped in sorted order
(the first to 0, "normal"), and the mapping is noted in the scan. A third name is an error that
lists them. A row that cannot be used (no such image file, not an image, a mask that is missing,
a path listed twice, an unknown split) is skipped with its line number, or raised with
``on_error="raise"``. Records: ``source = name or "csv:<file stem>"``, uid ``<source>/<path>``,
``meta["row"]`` the CSV line and ``meta["label_name"]`` the label as written.
"""

from __future__ import annotations

import csv
from pathlib import Path

from multimix.data.records import CLASS_NAMES, Record
from multimix.data.sources._files import IMAGE_SUFFIXES, absolute
from multimix.data.sources.base import DatasetLayoutError, SourceScan, check_on_error
from multimix.data.splits import OFFICIAL_SPLITS

PATH, LABEL, PATIENT, MASK, SPLIT = "path", "label", "patient", "mask", "split"

__all__ = ["label_names", "scan"]


def scan(csv_path: str | Path, *, on_error: str = "raise", name: str | None = None) -> SourceScan:
    """Scan the images a label table lists.

    Raises:
        DatasetLayoutError: the file is missing, has no ``path`` column, or names more than two
            classes.
    """
    check_on_error(on_error)
    table = Path(csv_path)
    source = name or f"csv:{table.stem}"
    if not table.is_file():
        raise DatasetLayoutError(f"{source}: label table not found: {table}")
    rows = _read_rows(table)
    classes = label_names([row.get(LABEL, "") for _, row in rows], origin=str(table))
    result = SourceScan(source, table.parent)
    if any(n.lower() not in CLASS_NAMES and n not in ("0", "1") for n in classes):
        result.note(table, "labels mapped: " + ", ".join(f"{n} -> {CLASS_NAMES[i]}" for n, i in classes.items()))
    seen: set[str] = set()
    for line, row in rows:
        record = _record(result, table, line, row, classes, seen, on_error)
        if record is not None:
            result.records.append(record)
    result.records.sort(key=lambda r: r.uid)
    return result


def _read_rows(table: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, row with lower-cased keys and stripped values); a table without ``path`` is an error."""
    with open(table, newline="", encoding="utf-8-sig") as handle:
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


def label_names(values: list[str], *, origin: str = "labels") -> dict[str, int]:
    """Label as written -> class index: ``normal``/``pneumonia`` (any case) and ``0``/``1`` keep their
    meaning, two other names go in sorted order; more than two classes is an error naming them."""
    names = sorted({v for v in values if v})
    if len(names) > len(CLASS_NAMES):
        raise DatasetLayoutError(
            f"{origin}: {len(names)} classes ({', '.join(names)}); MultiMix's head has two ({', '.join(CLASS_NAMES)})"
        )
    known = {n: CLASS_NAMES.index(n.lower()) for n in names if n.lower() in CLASS_NAMES}
    known.update({n: int(n) for n in names if n in ("0", "1")})
    if len(known) == len(names) and len(set(known.values())) == len(known):
        return known
    return {n: i for i, n in enumerate(names)}


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
    seen.add(str(image))
    mask = row.get(MASK, "")
    label_name = row.get(LABEL, "")
    return Record(
        uid=f"{result.name}/{Path(written).as_posix()}",
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
    if str(image) in seen:
        return "listed twice"
    if image.suffix.lower() not in IMAGE_SUFFIXES:
        return f"not an image file (expected {'/'.join(IMAGE_SUFFIXES)})"
    if not image.is_file():
        return "image file not found"
    mask = row.get(MASK, "")
    if mask and not _resolve(table, mask).is_file():
        return f"mask file not found: {mask}"
    split = row.get(SPLIT, "").lower()
    if split and split not in OFFICIAL_SPLITS:
        return f"unknown split {split!r} (expected one of {', '.join(OFFICIAL_SPLITS)} or empty)"
    return None


def _resolve(table: Path, written: str) -> Path:
    path = Path(written).expanduser()
    return path if path.is_absolute() else table.parent / path
