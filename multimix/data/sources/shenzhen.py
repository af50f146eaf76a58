"""Shenzhen No.3 People's Hospital tuberculosis chest X-rays, with lung masks for part of them.

Distributed by the U.S. National Library of Medicine (public domain). 662 frontal images
(326 normal, 336 tuberculosis); lung masks (both lungs in one file) were drawn later for about
570 of them and are shipped in a separate folder whose name varies between copies::

    ChinaSet_AllFiles/                    # the root, or its single sub-folder
    ├── CXR_png/CHNCXR_0001_0.png         # last digit: 1 tuberculosis, 0 normal
    ├── mask/CHNCXR_0001_0_mask.png       # any sibling folder of *_mask.png files ("masks/"...)
    └── ClinicalReadings/CHNCXR_0001_0.txt   # sex, age and the reading (optional)

Records: ``source="shenzhen"``, ``label=None`` (tuberculosis is not pneumonia, so this set has
no label for the normal/pneumonia task), ``meta["tb"]`` the TB finding plus ``sex`` / ``age``
when the clinical reading gives them, ``patient_id="CHNCXR_####"``, ``mask_paths=(mask,)`` for
the images that have a mask and ``()`` for the others.
"""

from __future__ import annotations

from pathlib import Path

from multimix.data.sources._files import (
    image_files,
    is_image,
    visible_children,
    visible_dirs,
)
from multimix.data.sources.base import SourceScan, check_on_error, locate_root
from multimix.data.sources.nlm import (
    name_pattern,
    nlm_records,
    parse_nlm_stem,
    report_orphan_masks,
    scan_nlm_images,
)

NAME = "shenzhen"
PREFIX = "CHNCXR"
MASK_SUFFIX = "_mask"
EXPECTED = (
    f"CXR_png/{name_pattern(PREFIX)} with masks {name_pattern(PREFIX, MASK_SUFFIX)} in a sibling folder such as mask/"
)

__all__ = ["NAME", "scan"]


def scan(root: str | Path, *, on_error: str = "raise") -> SourceScan:
    """Find the Shenzhen images under ``root`` (or its single sub-folder) and pair their masks.

    Every sibling folder of ``CXR_png`` holding ``*_mask.png`` files is read as a mask folder.
    Images without mask are kept without mask. Unparseable names, masks without an image and a
    second mask for the same image go to ``skip_or_raise``.
    """
    check_on_error(on_error)
    base = locate_root(root, name=NAME, looks_right=lambda p: (p / "CXR_png").is_dir(), expected=EXPECTED)
    result = SourceScan(NAME, base)
    images = scan_nlm_images(result, base / "CXR_png", PREFIX, on_error)
    masks: dict[str, Path] = {}
    for folder in _mask_folders(base):
        _collect_masks(result, folder, masks, on_error)
    report_orphan_masks(result, masks, images, base / "CXR_png", on_error)
    result.records = nlm_records(NAME, base, images, {stem: (path,) for stem, path in masks.items()})
    return result


def _is_mask_file(path: Path) -> bool:
    return is_image(path) and path.stem.endswith(MASK_SUFFIX)


def _mask_folders(base: Path) -> list[Path]:
    """Sibling folders of ``CXR_png`` that hold at least one ``*_mask`` image."""
    return [d for d in visible_dirs(base) if d.name != "CXR_png" and any(_is_mask_file(p) for p in visible_children(d))]


def _collect_masks(result: SourceScan, folder: Path, masks: dict[str, Path], on_error: str) -> None:
    """Add the masks of ``folder`` to ``masks`` keyed by their image's stem."""
    pattern = name_pattern(PREFIX, MASK_SUFFIX)
    for path in image_files(folder, result):
        stem = path.stem.removesuffix(MASK_SUFFIX)
        if not path.stem.endswith(MASK_SUFFIX) or parse_nlm_stem(stem, PREFIX) is None:
            result.skip_or_raise(path, f"mask file name does not match {pattern}", on_error)
        elif stem in masks:
            result.skip_or_raise(path, f"second mask for the same image (first: {masks[stem]})", on_error)
        else:
            masks[stem] = path
