"""What the two NLM tuberculosis sets (Montgomery, Shenzhen) share: file names and pairing.

Both sets are distributed by the U.S. National Library of Medicine and name every image
``<PREFIX>_<4-digit number>_<tb>.png``: ``MCUCXR_0001_0.png`` (Montgomery) or
``CHNCXR_0001_1.png`` (Shenzhen), where the last digit is 1 for tuberculosis and 0 for a normal
reading. Each image has a ``ClinicalReadings/<same stem>.txt`` with the patient's sex and age.

The class label of this library is normal/pneumonia, and tuberculosis is not pneumonia: records
from these sets keep the TB finding in ``meta["tb"]`` and have ``label=None``, so they serve the
segmentation task (and as unlabeled images for classification).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multimix.data.records import Record
from multimix.data.sources._files import absolute, image_files, make_uid
from multimix.data.sources.base import SourceScan

_NAME = re.compile(r"^(?P<patient>(?P<prefix>[A-Za-z]+)_\d{4})_(?P<tb>[01])$")
# Montgomery writes "Patient's Sex: M" / "Patient's Age: 048Y"; Shenzhen writes "male 35yrs".
_SEX = re.compile(r"sex:\s*(?P<short>[mf])\b|\b(?P<word>female|male)\b", re.IGNORECASE)
_AGE = re.compile(r"age:\s*(?P<a>\d+)\s*y|\b(?P<b>\d+)\s*(?:yrs?|years?)\b", re.IGNORECASE)


@dataclass(frozen=True)
class NlmName:
    """A parsed NLM image stem: ``CHNCXR_0001_1`` -> patient ``CHNCXR_0001``, tb ``True``."""

    stem: str
    patient_id: str
    tb: bool


def parse_nlm_stem(stem: str, prefix: str) -> NlmName | None:
    """Parse ``<prefix>_####_{0,1}``; ``None`` when ``stem`` is not such a name."""
    match = _NAME.match(stem)
    if match is None or match["prefix"] != prefix:
        return None
    return NlmName(stem, match["patient"], match["tb"] == "1")


def name_pattern(prefix: str, suffix: str = "") -> str:
    """The expected file name, for error messages: ``MCUCXR_####_{0,1}.png``."""
    return f"{prefix}_####_{{0,1}}{suffix}.png"


def scan_nlm_images(scan: SourceScan, folder: Path, prefix: str, on_error: str) -> dict[str, tuple[Path, NlmName]]:
    """Images of ``folder`` keyed by stem; names that do not parse go to ``skip_or_raise``."""
    images: dict[str, tuple[Path, NlmName]] = {}
    for path in image_files(folder, scan):
        name = parse_nlm_stem(path.stem, prefix)
        if name is None:
            scan.skip_or_raise(path, f"file name does not match {name_pattern(prefix)}", on_error)
        else:
            images[path.stem] = (path, name)
    return images


def report_orphan_masks(
    scan: SourceScan,
    masks: Mapping[str, Path],
    images: Mapping[str, Any],
    image_folder: Path,
    on_error: str,
) -> None:
    """``skip_or_raise`` every mask whose image (``image_folder/<stem>.png``) is absent."""
    for stem, mask in sorted(masks.items()):
        if stem not in images:
            scan.skip_or_raise(
                mask,
                f"lung mask without an image: {image_folder / (stem + '.png')} not found",
                on_error,
            )


def read_clinical_reading(path: Path) -> dict[str, Any]:
    """``{"sex": "M"|"F", "age": years}`` from a ClinicalReadings file; missing parts are left out.

    The readings are free text written by hand, so anything unreadable is ignored rather than
    reported: they are extra metadata, not part of the training targets.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    meta: dict[str, Any] = {}
    if sex := _SEX.search(text):
        meta["sex"] = (sex["short"] or sex["word"])[0].upper()
    if age := _AGE.search(text):
        meta["age"] = int(age["a"] or age["b"])
    return meta


def nlm_records(
    source: str,
    root: Path,
    images: Mapping[str, tuple[Path, NlmName]],
    masks: Mapping[str, tuple[Path, ...]],
    *,
    pixel_spacing_mm: float | None = None,
) -> list[Record]:
    """One unlabeled record per image with its TB finding, clinical reading and masks.

    ``pixel_spacing_mm`` is the published pixel size of the files, when the source gives one.
    """
    records = []
    for stem, (path, name) in images.items():
        meta = {"tb": name.tb, **read_clinical_reading(root / "ClinicalReadings" / f"{stem}.txt")}
        if pixel_spacing_mm is not None:
            meta["pixel_spacing_mm"] = (pixel_spacing_mm, pixel_spacing_mm)
        records.append(
            Record(
                uid=make_uid(source, root, path),
                source=source,
                label=None,
                image_path=absolute(path),
                mask_paths=tuple(absolute(m) for m in masks.get(stem, ())),
                patient_id=name.patient_id,
                meta=meta,
            )
        )
    return sorted(records, key=lambda r: r.uid)
