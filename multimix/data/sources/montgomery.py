"""Montgomery County tuberculosis chest X-rays, with manual lung masks.

Distributed by the U.S. National Library of Medicine (public domain). 138 frontal PA images
(80 normal, 58 tuberculosis) from the Montgomery County TB screening program, each with a
manual mask of the left lung and one of the right lung::

    MontgomerySet/                  # the root, or its single sub-folder
    ├── CXR_png/MCUCXR_0001_0.png   # last digit: 1 tuberculosis, 0 normal
    ├── ManualMask/
    │   ├── leftMask/MCUCXR_0001_0.png
    │   └── rightMask/MCUCXR_0001_0.png
    └── ClinicalReadings/MCUCXR_0001_0.txt   # sex, age and the reading (optional)

Records: ``source="montgomery"``, ``label=None`` (tuberculosis is not pneumonia, so this set
has no label for the normal/pneumonia task), ``meta["tb"]`` the TB finding plus ``sex`` /
``age`` when the clinical reading gives them, ``patient_id="MCUCXR_####"`` and
``mask_paths=(left, right)``: the lung mask is the union of the two files.
"""

from __future__ import annotations

from pathlib import Path

from multimix.data.sources._files import image_files
from multimix.data.sources.base import SourceScan, check_on_error, locate_root
from multimix.data.sources.nlm import (
    name_pattern,
    nlm_records,
    report_orphan_masks,
    scan_nlm_images,
)

NAME = "montgomery"
PREFIX = "MCUCXR"
PIXEL_SPACING_MM = 0.0875  # published for the 4020 x 4892 / 4892 x 4020 PNGs
EXPECTED = (
    f"CXR_png/{name_pattern(PREFIX)} with masks ManualMask/leftMask/<same name> and ManualMask/rightMask/<same name>"
)

__all__ = ["NAME", "scan"]


def scan(root: str | Path, *, on_error: str = "raise") -> SourceScan:
    """Find the Montgomery images under ``root`` (or its single sub-folder) and pair their masks.

    An image without any mask is kept, without mask. A left mask without its right mask (or the
    reverse), a mask without an image and an unparseable image name go to ``skip_or_raise``:
    with ``on_error="skip"`` the half-masked image is kept without mask and the problem is
    listed in ``skipped``.
    """
    check_on_error(on_error)
    base = locate_root(root, name=NAME, looks_right=lambda p: (p / "CXR_png").is_dir(), expected=EXPECTED)
    result = SourceScan(NAME, base)
    images = scan_nlm_images(result, base / "CXR_png", PREFIX, on_error)
    left = _mask_files(result, base / "ManualMask" / "leftMask")
    right = _mask_files(result, base / "ManualMask" / "rightMask")
    report_orphan_masks(result, {**right, **left}, images, base / "CXR_png", on_error)
    masks = {stem: _pair(result, stem, left, right, on_error) for stem in images}
    result.records = nlm_records(NAME, base, images, masks, pixel_spacing_mm=PIXEL_SPACING_MM)
    return result


def _mask_files(result: SourceScan, folder: Path) -> dict[str, Path]:
    """Mask files of one lung keyed by stem; a missing folder means no masks for that lung."""
    return {p.stem: p for p in image_files(folder, result)} if folder.is_dir() else {}


def _pair(
    result: SourceScan, stem: str, left: dict[str, Path], right: dict[str, Path], on_error: str
) -> tuple[Path, ...]:
    """``(left, right)`` when both exist, ``()`` when neither; half a mask is an item error.

    A single lung would silently teach the model that the other lung is background, so it is
    never used as the mask.
    """
    if stem in left and stem in right:
        return (left[stem], right[stem])
    if stem in left or stem in right:
        present, missing, side = (
            (left[stem], "rightMask", "right") if stem in left else (right[stem], "leftMask", "left")
        )
        missing_path = present.parent.parent / missing / present.name
        other = "left" if side == "right" else "right"
        result.skip_or_raise(missing_path, f"{side} lung mask missing (the {other} one exists)", on_error)
    return ()
