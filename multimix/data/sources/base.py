"""What every dataset source shares: the scan result, skip reports and layout errors.

A source module exposes ``scan(root, *, on_error="raise") -> SourceScan``: it walks a dataset
in its publisher's own layout and returns one :class:`~multimix.data.records.Record` per image,
without decoding pixels (decoding and pixel checks happen when the cache is built).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multimix.data.records import CLASS_NAMES, Record

ON_ERROR = ("raise", "skip")


def check_on_error(on_error: str) -> None:
    """``ValueError`` unless ``on_error`` is one of :data:`ON_ERROR` (what to do with a bad item)."""
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")


class DatasetLayoutError(ValueError):
    """A dataset root is missing or not in the layout its publisher ships."""


class DatasetItemError(ValueError):
    """One item of a dataset is unusable (unparseable name, missing mask, empty folder...)."""


@dataclass
class Skipped:
    """An item left out of a scan, and why."""

    path: str
    reason: str


@dataclass
class SourceScan:
    """The records found under one dataset root, plus everything that was skipped."""

    name: str
    root: Path
    records: list[Record] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[Skipped] = field(default_factory=list)  # items used, but worth a word (e.g. a guessed patient)

    def skip_or_raise(self, path: str | Path, reason: str, on_error: str) -> None:
        """Record ``path`` as skipped, or raise :class:`DatasetItemError` when ``on_error="raise"``."""
        check_on_error(on_error)
        if on_error == "raise":
            raise DatasetItemError(f"{path}: {reason}")
        self.skipped.append(Skipped(str(path), reason))

    def note(self, path: str | Path, reason: str) -> None:
        """Report ``path`` as used despite ``reason`` (listed in the summary, never dropped)."""
        self.notes.append(Skipped(str(path), reason))

    def summary(self) -> dict[str, Any]:
        """Counts for a report: images, masks, labels per class, patients, official splits, skips."""
        labels = Counter(CLASS_NAMES[r.label] if r.label is not None else "unlabeled" for r in self.records)
        return {
            "source": self.name,
            "root": str(self.root),
            "images": len(self.records),
            "masks": sum(r.has_mask for r in self.records),
            "classes": dict(sorted(labels.items())),
            # an image without a patient id is its own patient, as the split builder counts it
            "patients": len({r.patient_id or f"image:{r.uid}" for r in self.records}),
            "splits": dict(sorted(Counter(r.split or "none" for r in self.records).items())),
            "skipped": len(self.skipped),
            "skip_reasons": dict(Counter(s.reason for s in self.skipped)),
            "notes": [{"path": n.path, "note": n.reason} for n in self.notes],
        }


def locate_root(root: str | Path, *, name: str, looks_right: Callable[[Path], bool], expected: str) -> Path:
    """The folder holding the publisher's tree: ``root`` itself or one level down.

    Archives often unpack into a single sub-folder (``chex/chest_xray/train/...``), so a child
    of ``root`` that ``looks_right`` is accepted too. Otherwise raise
    :class:`DatasetLayoutError` saying what was expected and what was found.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f"{name}: dataset folder not found: {root}")
    if looks_right(root):
        return root
    children = sorted(p for p in root.iterdir() if p.is_dir())
    matches = [child for child in children if looks_right(child)]
    if len(matches) == 1:
        return matches[0]
    found = ", ".join(sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())[:12]) or "an empty folder"
    if len(matches) > 1:
        raise DatasetLayoutError(f"{name}: {root} holds several copies of the dataset: {[m.name for m in matches]}")
    raise DatasetLayoutError(f"{name}: {root} is not in the expected layout. Expected {expected}; found {found}")
