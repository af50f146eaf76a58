"""Dataset sources: each turns a folder in its publisher's layout into records.

``scan_source("chex", data_root="DIR")`` scans ``DIR/chex``; ``scan_source("folder:/path")``
scans a user's own folder dataset, ``scan_source("csv:/path/labels.csv")`` a label table. The
synthetic generator is no scanner: it is
:mod:`multimix.data.synthetic`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from multimix.data.sources.base import DatasetItemError, DatasetLayoutError, Skipped, SourceScan
from multimix.utils.registry import Registry

# name -> module holding scan(root, *, on_error=...), imported when the source is scanned; the
# folder under --data-root has the same name. A new published layout is one module and one line.
DATASETS: Registry[str] = Registry("data source")
for _name in ("chex", "jsrt", "montgomery", "shenzhen", "nih"):
    DATASETS.register(_name, f"{__name__}.{_name}")
FOLDER_PREFIX = "folder:"
CSV_PREFIX = "csv:"  # a label table: csv:PATH/labels.csv, or csv:PATH/labels.csv#healthy=normal,sick=pneumonia


def available_sources() -> list[str]:
    """Dataset names accepted by :func:`scan_source` (plus ``folder:PATH``)."""
    return list(DATASETS)


def scan_source(
    spec: str, data_root: str | Path | None = None, *, on_error: str = "raise", **options: Any
) -> SourceScan:
    """Scan one source: a dataset name (looked up as ``data_root/<name>``) or ``folder:PATH``."""
    if spec.startswith(FOLDER_PREFIX):
        from multimix.data.sources import folder

        return folder.scan(Path(spec[len(FOLDER_PREFIX) :]).expanduser(), on_error=on_error, **options)
    if spec.startswith(CSV_PREFIX):
        from multimix.data.sources import table

        path, _, mapping = spec[len(CSV_PREFIX) :].partition(table.MAP_SEPARATOR)
        label_map = table.parse_label_map(mapping, origin=spec) if mapping else None
        return table.scan(Path(path).expanduser(), on_error=on_error, label_map=label_map, **options)
    if spec not in DATASETS:
        raise ValueError(f"unknown data source {spec!r}; available: {', '.join(DATASETS)}, folder:PATH or csv:FILE")
    if data_root is None:
        raise ValueError(f"source {spec!r} needs a data root (--data-root DIR holding {spec}/)")
    module = importlib.import_module(DATASETS.get(spec))
    return module.scan(Path(data_root) / spec, on_error=on_error, **options)


def present_sources(data_root: str | Path) -> list[str]:
    """The dataset names that have a folder under ``data_root``."""
    root = Path(data_root)
    if not root.is_dir():
        raise DatasetLayoutError(f"data root not found: {root}")
    return [name for name in DATASETS if (root / name).is_dir()]


__all__ = [
    "DATASETS",
    "DatasetItemError",
    "DatasetLayoutError",
    "Skipped",
    "SourceScan",
    "available_sources",
    "present_sources",
    "scan_source",
]
