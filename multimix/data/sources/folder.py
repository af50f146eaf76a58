"""Users' own chest X-rays in a plain folder tree.

For data that no publisher-specific source covers. Two layouts are accepted, alone or together
under one root (or under its single sub-folder)::

    my_data/
    ├── normal/a.png            # classification: one folder per class (.png, .jpg, .jpeg)
    ├── pneumonia/b.jpg
    ├── images/c.png            # segmentation: images ...
    └── masks/c.png             # ... and binary lung masks with the same stem (c_mask.png too)

Class folder names map to labels through ``class_map``: by default ``normal`` -> 0 and
``pneumonia`` -> 1, case-insensitively. A mask's stem is its image's stem, optionally followed
by ``_mask`` (``c.png`` or ``c_mask.png`` both pair with ``images/c.png``; the extensions may
differ). Records: ``source = name or "folder:<root name>"``, ``label`` from the class folder
(``None`` for ``images/``), ``patient_id`` the file stem (this layout has no patient ids, so
each image counts as its own patient), ``meta["class_folder"]`` for classification images.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from multimix.data.records import CLASS_NAMES, NORMAL, PNEUMONIA, Record
from multimix.data.sources._files import (
    absolute,
    image_files,
    make_uid,
    visible_children,
    visible_dirs,
)
from multimix.data.sources.base import DatasetLayoutError, Skipped, SourceScan, check_on_error, locate_root

IMAGES, MASKS = "images", "masks"
MASK_SUFFIX = "_mask"
DEFAULT_CLASS_MAP: dict[str, int] = {"normal": NORMAL, "pneumonia": PNEUMONIA}

__all__ = ["DEFAULT_CLASS_MAP", "scan"]


def scan(
    root: str | Path,
    *,
    on_error: str = "raise",
    class_map: Mapping[str, int] | None = None,
    name: str | None = None,
) -> SourceScan:
    """Scan a classification and/or segmentation folder tree.

    Args:
        root: the folder holding the layout (or holding a single sub-folder that does).
        on_error: ``"raise"`` or ``"skip"`` for unusable items (empty class folder, mask without
            image, two files with the same stem).
        class_map: class folder name -> label (0 normal, 1 pneumonia), matched
            case-insensitively; replaces :data:`DEFAULT_CLASS_MAP` when given.
        name: the records' ``source``; defaults to ``"folder:<root folder name>"``.

    Raises:
        DatasetLayoutError: ``root`` has neither layout, a folder is not a known class, or
            ``masks/`` comes without ``images/``.
    """
    check_on_error(on_error)
    classes = _normalise_class_map(DEFAULT_CLASS_MAP if class_map is None else class_map)
    source = name or f"folder:{Path(root).absolute().name}"  # "." -> the folder's own name
    base = locate_root(
        root,
        name=source,
        looks_right=lambda p: _looks_right(p, classes),
        expected=_expected(classes),
    )
    result = SourceScan(source, base)
    class_dirs = _class_dirs(base, classes)
    for path in visible_children(base):
        if path.is_file():
            result.skipped.append(_stray(path))
    records = [r for d in class_dirs for r in _scan_class(result, d, classes[d.name.lower()], on_error)]
    if (base / IMAGES).is_dir():
        records += _scan_segmentation(result, base, on_error)
    result.records = sorted(records, key=lambda r: r.uid)
    return result


def _normalise_class_map(class_map: Mapping[str, int]) -> dict[str, int]:
    """Lower-cased names; labels must be class indices of this library."""
    classes: dict[str, int] = {}
    for folder, label in class_map.items():
        if label not in range(len(CLASS_NAMES)):
            raise ValueError(f"class_map[{folder!r}] = {label!r}: labels are 0 (normal) or 1 (pneumonia)")
        if folder.lower() in classes or folder.lower() in (IMAGES, MASKS):
            raise ValueError(f"class_map: {folder!r} clashes with another class or a reserved folder name")
        classes[folder.lower()] = label
    return classes


def _expected(classes: Mapping[str, int]) -> str:
    names = ", ".join(f"{c}/" for c in classes)
    return f"class folders ({names}) of images, and/or {IMAGES}/ with {MASKS}/ of matching stems"


def _looks_right(folder: Path, classes: Mapping[str, int]) -> bool:
    names = {d.name for d in visible_dirs(folder)}
    return IMAGES in names or MASKS in names or any(n.lower() in classes for n in names)


def _class_dirs(base: Path, classes: Mapping[str, int]) -> list[Path]:
    """The class folders of ``base``; any folder that is neither a class nor images/masks is an error."""
    dirs = [d for d in visible_dirs(base) if d.name not in (IMAGES, MASKS)]
    unknown = [d.name for d in dirs if d.name.lower() not in classes]
    if unknown:
        found = ", ".join(f"{d.name}/" for d in visible_dirs(base))
        raise DatasetLayoutError(
            f"{base}: unknown class folder(s) {unknown}. Accepted class folders: "
            f"{sorted(classes)} (case-insensitive; pass class_map to name others), plus {IMAGES}/ and "
            f"{MASKS}/ for segmentation. Found: {found}"
        )
    if (base / MASKS).is_dir() and not (base / IMAGES).is_dir():
        raise DatasetLayoutError(f"{base}: {MASKS}/ found without {IMAGES}/; expected {_expected(classes)}")
    return dirs


def _stray(path: Path) -> Skipped:
    return Skipped(str(path), "file at the dataset root ignored (images belong in a class folder or images/)")


def _scan_class(result: SourceScan, folder: Path, label: int, on_error: str) -> list[Record]:
    """One labelled record per image of a class folder; an empty folder is an item error."""
    images = image_files(folder, result)
    if not images:
        result.skip_or_raise(folder, "class folder holds no images (.png, .jpg, .jpeg)", on_error)
    return [_record(result, p, label=label, meta={"class_folder": folder.name}) for p in images]


def _scan_segmentation(result: SourceScan, base: Path, on_error: str) -> list[Record]:
    """Records for ``images/``, paired with ``masks/`` by stem; orphan masks are item errors."""
    images = _by_stem(result, image_files(base / IMAGES, result), on_error)
    mask_folder = base / MASKS
    masks = (
        _by_stem(result, image_files(mask_folder, result), on_error, strip=MASK_SUFFIX) if mask_folder.is_dir() else {}
    )
    for stem, mask in sorted(masks.items()):
        if stem not in images:
            result.skip_or_raise(mask, f"mask without an image: no {IMAGES}/{stem}.* found", on_error)
    return [
        _record(result, path, label=None, masks=(masks[stem],) if stem in masks else ())
        for stem, path in images.items()
    ]


def _by_stem(result: SourceScan, paths: list[Path], on_error: str, strip: str = "") -> dict[str, Path]:
    """Files keyed by stem (minus ``strip``); a second file with the same key is an item error,
    because it would make the image-mask pairing ambiguous."""
    keyed: dict[str, Path] = {}
    for path in paths:
        key = path.stem.removesuffix(strip) if strip else path.stem
        if key in keyed:
            result.skip_or_raise(path, f"same stem as {keyed[key].name}; cannot tell which one to pair", on_error)
        else:
            keyed[key] = path
    return keyed


def _record(
    result: SourceScan,
    path: Path,
    *,
    label: int | None,
    masks: tuple[Path, ...] = (),
    meta: dict | None = None,
) -> Record:
    return Record(
        uid=make_uid(result.name, result.root, path),
        source=result.name,
        label=label,
        image_path=absolute(path),
        mask_paths=tuple(absolute(m) for m in masks),
        patient_id=path.stem,
        meta=meta or {},
    )
