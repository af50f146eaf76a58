"""Find the datasets under a data root, validate them, report, and build their caches."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multimix.data.cache import CachedSource, build_cache
from multimix.data.sources import DATASETS, present_sources, scan_source
from multimix.utils.atomic import atomic_write_text

REPORT_COLUMNS = ("source", "images", "masks", "normal", "pneumonia", "unlabeled", "patients", "splits", "skipped")


def default_cache_dir() -> Path:
    """``$MULTIMIX_CACHE``, else ``$XDG_CACHE_HOME/multimix``, else ``~/.cache/multimix``."""
    if os.environ.get("MULTIMIX_CACHE"):
        return Path(os.environ["MULTIMIX_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "multimix"


@dataclass
class PreparedSource:
    name: str
    summary: dict[str, Any]
    cached: CachedSource
    seconds: float


def prepare_source(
    spec: str,
    data_root: str | Path | None,
    image_size: int,
    cache_dir: str | Path,
    *,
    on_error: str = "skip",
    progress: bool = True,
) -> PreparedSource:
    """Scan one source, then build (or reuse) its cache at ``image_size``."""
    started = time.perf_counter()
    scan = scan_source(spec, data_root, on_error=on_error)
    cached = build_cache(scan.records, image_size, cache_dir, name=scan.name, on_error=on_error, progress=progress)
    summary = scan.summary()
    summary["skipped"] += len(cached.skipped)
    summary["skipped_items"] = [{"path": s.path, "reason": s.reason} for s in scan.skipped]
    for item in cached.skipped:
        reason = item["reason"].split(": ", 1)[-1]
        summary["skip_reasons"][reason] = summary["skip_reasons"].get(reason, 0) + 1
        summary["skipped_items"].append({"path": item["path"], "reason": reason})
    summary["used"] = len(cached.records)
    return PreparedSource(scan.name, summary, cached, time.perf_counter() - started)


def prepare_all(data_root: str | Path, image_size: int, cache_dir: str | Path, **kw: Any) -> list[PreparedSource]:
    """:func:`prepare_source` for every dataset folder present under ``data_root``."""
    names = present_sources(data_root)
    if not names:
        raise FileNotFoundError(
            f"no dataset folder under {data_root}; expected one or more of {', '.join(f'{n}/' for n in DATASETS)}"
        )
    return [prepare_source(name, data_root, image_size, cache_dir, **kw) for name in names]


def format_report(prepared: list[PreparedSource]) -> str:
    """A fixed-width table of what was found, used and skipped, with skip reasons below it."""
    rows = [" ".join(f"{c:>10}" for c in (*REPORT_COLUMNS, "used", "seconds"))]
    for item in prepared:
        s = item.summary
        classes = s["classes"]
        splits = ",".join(f"{k}:{v}" for k, v in s["splits"].items())
        cells = (
            s["source"],
            s["images"],
            s["masks"],
            classes.get("normal", 0),
            classes.get("pneumonia", 0),
            classes.get("unlabeled", 0),
            s["patients"],
            splits,
            s["skipped"],
            s["used"],
            f"{item.seconds:.1f}",
        )
        rows.append(" ".join(f"{str(c):>10}" for c in cells))
    for item in prepared:
        rows.extend(f"  {item.name}: {line}" for line in skip_lines(item.summary))
        rows.extend(f"  {item.name}: {line}" for line in note_lines(item.summary))
    return "\n".join(rows)


def skip_lines(summary: dict[str, Any], shown: int = 3) -> list[str]:
    """One line per skip reason: how many files, and the first ``shown`` of them by name."""
    return _lines_by_reason("skipped", summary.get("skipped_items", []), "reason", shown)


def _lines_by_reason(verb: str, items: list[dict[str, str]], reason_key: str, shown: int) -> list[str]:
    by_reason: dict[str, list[str]] = {}
    for item in items:
        by_reason.setdefault(item[reason_key], []).append(Path(item["path"]).name)
    lines = []
    for reason, names in by_reason.items():
        more = f" and {len(names) - shown} more" if len(names) > shown else ""
        lines.append(f"{verb} {len(names)} x {reason}: {', '.join(names[:shown])}{more}")
    return lines


SKIP_REPORT_COLUMNS = ("source", "path", "reason")


def write_skip_report(items: list[dict[str, str]], path: str | Path) -> Path:
    """Every skipped file as CSV rows ``source,path,reason`` (atomic)."""
    import io

    from multimix.utils.csv_safe import SafeDictWriter

    buffer = io.StringIO()
    writer = SafeDictWriter(buffer, fieldnames=SKIP_REPORT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(items)
    atomic_write_text(Path(path), buffer.getvalue())
    return Path(path)


def note_lines(summary: dict[str, Any], shown: int = 3) -> list[str]:
    """One line per kind of note in a scan summary: how many, and the first ``shown`` files."""
    return _lines_by_reason("used", summary.get("notes", []), "note", shown)
