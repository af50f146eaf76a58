"""JSRT chest X-rays (247 images) with SCR lung masks.

The images are distributed by the JSRT database (Japanese Society of Radiological Technology,
Shiraishi et al. 2000, research use) and the lung masks by the SCR database (van Ginneken et
al. 2006). Two layouts are supported, side by side or alone, possibly one folder down::

    <root>/
        All247images/          JPCLN001.IMG ... JPCNN093.IMG   raw: no header, 2048x2048,
                                                               uint16 big-endian, 12-bit,
                                                               high value = dark
        SCR/                   (searched recursively: SCR ships fold1/ and fold2/)
            fold1/masks/
                left lung/     JPCLN001.gif ...                1024x1024, 0/255
                right lung/    JPCLN001.gif ...
        png/                   a common PNG conversion of the same data
            images/            JPCLN003.png ...                display polarity
            masks/             JPCLN003.png ...                left + right already merged

Raw images get ``mask_paths=(left, right)`` (merged by union when read), PNG images
``mask_paths=(mask,)``; an image without masks is still a record, with empty ``mask_paths``.
JSRT has no pneumonia labels, so ``label`` is ``None``; ``meta["nodule"]`` is ``True`` for
``JPCLN*`` (lung nodule) and ``False`` for ``JPCNN*``; the patient id is the file stem (one
image per patient); ``split`` is ``None`` (the paper's split is applied elsewhere).
``meta["format"]`` is ``"raw"`` or ``"png"``. When both layouts hold the same stem, the raw
image wins and the PNG copy is listed in ``skipped``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from multimix.data.records import Record
from multimix.data.sources._files import absolute, make_uid, visible_children
from multimix.data.sources.base import Skipped, SourceScan, check_on_error, locate_root

__all__ = ["NAME", "scan"]

NAME = "jsrt"
RAW_DIR = "All247images"
PNG_IMAGES, PNG_MASKS = Path("png/images"), Path("png/masks")
LUNG_SIDES = ("left lung", "right lung")
EXPECTED = (
    "All247images/*.IMG (with optional SCR/**/masks/{left lung,right lung}/*.gif) "
    "and/or png/images/*.png (with optional png/masks/*.png)"
)

_STEM = re.compile(r"JPC(LN|NN)\d{3}")


def scan(root: str | Path, *, on_error: str = "raise") -> SourceScan:
    """Find every JSRT image under ``root`` (or one folder down) and pair it with its masks.

    Args:
        root: the folder holding ``All247images/`` and/or ``png/`` (and ``SCR/``).
        on_error: ``"raise"`` to stop with :class:`~.base.DatasetItemError` at the first
            unusable item (mask without image, lone left/right mask, unknown file name,
            non-image file), ``"skip"`` to list it in ``SourceScan.skipped`` and go on.

    Raises:
        DatasetLayoutError: neither ``All247images/`` nor ``png/images/`` exists.
    """
    check_on_error(on_error)
    base = locate_root(root, name=NAME, looks_right=_looks_like_jsrt, expected=EXPECTED)
    result = SourceScan(name=NAME, root=base)
    if (base / RAW_DIR).is_dir():
        _scan_raw(result, base, on_error)
    if (base / PNG_IMAGES).is_dir():
        _scan_png(result, base, on_error)
    return result


def _looks_like_jsrt(folder: Path) -> bool:
    return (folder / RAW_DIR).is_dir() or (folder / PNG_IMAGES).is_dir()


def _scan_raw(result: SourceScan, base: Path, on_error: str) -> None:
    images = _stems(result, base / RAW_DIR, ".img", on_error)
    sides = [_scr_masks(result, base, side, on_error) for side in LUNG_SIDES]
    for stem in sorted(set(sides[0]) | set(sides[1])):
        if stem not in images:
            for masks in sides:
                if stem in masks:
                    result.skip_or_raise(masks[stem], f"mask without image: no {RAW_DIR}/{stem}.IMG", on_error)
        elif not all(stem in masks for masks in sides):
            # One lung alone would teach the other lung is background: better no mask at all.
            lone = sides[0].get(stem) or sides[1][stem]
            result.skip_or_raise(lone, "lung mask without its other side (need left lung and right lung)", on_error)
    for stem, path in images.items():
        pair = tuple(str(masks[stem].absolute()) for masks in sides if stem in masks)
        result.records.append(_record(base, path, stem, pair if len(pair) == 2 else (), "raw"))


def _scan_png(result: SourceScan, base: Path, on_error: str) -> None:
    images = _stems(result, base / PNG_IMAGES, ".png", on_error)
    masks = _stems(result, base / PNG_MASKS, ".png", on_error) if (base / PNG_MASKS).is_dir() else {}
    for stem, path in masks.items():
        if stem not in images:
            result.skip_or_raise(path, f"mask without image: no {PNG_IMAGES.as_posix()}/{stem}.png", on_error)
    have = {r.patient_id for r in result.records}
    for stem, path in images.items():
        if stem in have:
            # Both conversions of one image are not an error, but only one may be used.
            result.skipped.append(_duplicate(path, stem))
            continue
        mask = (str(masks[stem].absolute()),) if stem in masks else ()
        result.records.append(_record(base, path, stem, mask, "png"))


def _duplicate(path: Path, stem: str) -> Skipped:
    return Skipped(str(path), f"duplicate of the raw image {RAW_DIR}/{stem}.IMG")


def _stems(result: SourceScan, folder: Path, suffix: str, on_error: str) -> dict[str, Path]:
    """``{stem: path}`` of the JSRT-named ``suffix`` files in ``folder``; others are reported."""
    found: dict[str, Path] = {}
    for path in _visible_files(folder):
        if path.suffix.lower() != suffix:
            result.skip_or_raise(path, f"not a {suffix} file", on_error)
        elif not _STEM.fullmatch(path.stem):
            result.skip_or_raise(path, "not a JSRT file name (expected JPCLNnnn or JPCNNnnn)", on_error)
        else:
            found[path.stem] = path
    return found


def _scr_masks(result: SourceScan, base: Path, side: str, on_error: str) -> dict[str, Path]:
    """``{stem: gif}`` from every ``masks/<side>/`` folder below ``base`` (SCR's fold1/fold2)."""
    found: dict[str, Path] = {}
    for folder in sorted(p for p in base.rglob(side) if p.is_dir() and p.parent.name == "masks"):
        for stem, path in _stems(result, folder, ".gif", on_error).items():
            if stem in found:
                result.skip_or_raise(path, f"second {side} mask for {stem} (first: {found[stem]})", on_error)
            else:
                found[stem] = path
    return found


FIELD_OF_VIEW_MM = (2048 * 0.175, 2048 * 0.175)


def _visible_files(folder: Path) -> Iterator[Path]:
    return (p for p in visible_children(folder) if p.is_file())


def _record(base: Path, path: Path, stem: str, mask_paths: tuple[str, ...], fmt: str) -> Record:
    return Record(
        uid=make_uid(NAME, base, path),
        source=NAME,
        label=None,
        image_path=absolute(path),
        mask_paths=mask_paths,
        patient_id=stem,
        split=None,
        # 2048 x 2048 films digitised at 0.175 mm; the PNG releases are rescaled copies of the same field
        meta={"nodule": stem.startswith("JPCLN"), "format": fmt, "field_of_view_mm": FIELD_OF_VIEW_MM},
    )
