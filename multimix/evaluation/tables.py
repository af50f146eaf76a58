"""Tables of results over seeds or folds, and the result files a command leaves.

One definition of the spread (the sample standard deviation, ``ddof=1``: seeds and folds are a
sample of what another draw would give), one of a paired difference, one Markdown table; and
:func:`write_result_files`, which writes a table as Markdown + CSV + JSON headed by the command
line, the commit, the machine and the date that made it, so no result is typed by hand.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from multimix import __version__
from multimix.utils.atomic import atomic_write_text
from multimix.utils.csv_safe import SafeWriter
from multimix.utils.environment import command_line, git_commit, machine_info


def sample_sd(values: Sequence[float]) -> float | None:
    """The sample standard deviation (``ddof=1``); ``None`` for fewer than two values."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def mean_sd_text(values: Sequence[float], fmt: str = "{:.3f}", *, signed: bool = False) -> str:
    """``mean ± sd`` with ``fmt`` (``-`` when empty, the value alone for one); ``signed`` puts a
    ``+`` on a non-negative mean (a difference), never on the spread."""
    if not values:
        return "-"
    mean = sum(values) / len(values)
    text = fmt.format(mean)
    if signed and not text.startswith(("-", "+")):
        text = "+" + text
    sd = sample_sd(values)
    return text if sd is None else f"{text} ± {fmt.format(sd).lstrip('+')}"


def paired_differences(values: Mapping[Any, float | None], baseline: Mapping[Any, float | None]) -> list[float]:
    """``value - baseline`` for every key (seed, fold) both have a number for, in key order."""
    shared = sorted(k for k in values.keys() & baseline.keys() if values[k] is not None and baseline[k] is not None)
    return [float(values[k]) - float(baseline[k]) for k in shared]  # type: ignore[arg-type]


def is_beyond_spread(differences: Sequence[float]) -> bool:
    """Whether a mean paired difference is larger than its own spread (one pair never is)."""
    sd = sample_sd(differences)
    return sd is not None and abs(sum(differences) / len(differences)) > sd


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def provenance() -> dict[str, Any]:
    """What made a result: the command line, the commit (or version), the machine and the UTC date."""
    return {
        "command": command_line(),
        "multimix": __version__,
        "commit": git_commit(),
        "machine": machine_info(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def provenance_text(made_by: Mapping[str, Any]) -> str:
    """Two Markdown lines naming the command, the code, the machine and the date."""
    machine = made_by["machine"]
    flags = " ".join(machine.get("cpu_flags") or []) or "none of the speed flags"
    device = machine.get("gpu") or f"no GPU, bf16 {'native' if machine.get('bf16_native') else 'emulated'}"
    code = f"commit `{made_by['commit'][:12]}`" if made_by.get("commit") else f"multimix {made_by['multimix']}"
    return (
        f"Written by `{made_by['command']}` ({code}, {made_by['date']}).\n"
        f"Machine: {machine['processor']}, {machine['cpu_count']} cores ({flags}), {device}, "
        f"torch {machine['torch']}."
    )


def records_csv(records: Sequence[Mapping[str, Any]]) -> str:
    """CSV of flat records: the union of their keys in first-seen order; nested values as JSON."""
    keys = list(dict.fromkeys(k for r in records for k in r))
    buffer = io.StringIO()
    writer = SafeWriter(buffer)
    writer.writerow(keys)
    for record in records:
        writer.writerow(["" if record.get(k) is None else _csv_cell(record[k]) for k in keys])
    return buffer.getvalue()


def _csv_cell(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (dict, list, tuple)) else str(value)


def write_result_files(
    folder: str | Path, stem: str, *, markdown: str, records: Sequence[Mapping[str, Any]]
) -> dict[str, Path]:
    """Write ``<stem>.md`` (provenance, then ``markdown``), ``<stem>.csv`` (``records``) and
    ``<stem>.json`` (provenance and records) into ``folder``, each atomically; returns the paths."""
    folder = Path(folder)
    made_by = provenance()
    paths = {
        "md": atomic_write_text(folder / f"{stem}.md", f"{provenance_text(made_by)}\n\n{markdown.rstrip()}\n"),
        "csv": atomic_write_text(folder / f"{stem}.csv", records_csv(records)),
        "json": atomic_write_text(
            folder / f"{stem}.json", json.dumps({"made_by": made_by, "records": list(records)}, indent=2) + "\n"
        ),
    }
    return paths
