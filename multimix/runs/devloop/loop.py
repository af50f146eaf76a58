"""The development grid: train every variant for every seed (resuming what stopped), score each run, write the table."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from multimix.config import load_config
from multimix.evaluation.tables import write_result_files
from multimix.runs.devloop.figure import child_mask_figure
from multimix.runs.devloop.scoring import prior_shift_scores, score_checkpoint
from multimix.runs.devloop.tables import format_report
from multimix.runs.devloop.variants import Variant, seed_folder
from multimix.runs.grid import cell_state, train_or_resume
from multimix.utils.atomic import atomic_write_text


def run_devloop(
    variants: Sequence[Variant],
    out: str | Path,
    *,
    base_config: str | Path,
    overrides: dict[str, Any],
    seeds: Sequence[int] = (0,),
    baseline: str | None = None,
    device: str = "auto",
    progress: bool = True,
    train: bool = True,
    recorded: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Train and score every variant with every seed (seeds outer, variants inner); writes
    ``<out>/<variant>/seed<k>/dev_scores.json``, ``<out>/scores.json`` (every run's row) and
    ``<out>/table.md`` (mean ± sd per variant, paired differences to ``baseline``; with ``table.csv`` and
    ``table.json``, each naming the command, commit, machine and date) after every run,
    and returns the per-run rows. ``train=False`` trains nothing: the table of the runs finished
    so far (a grid still running elsewhere, or one stopped for good). ``recorded`` is an earlier
    grid's ``table.json``: its rows of ``baseline`` for the seeds run here join the tables (the
    baseline need not be trained again), and the report says where they came from."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if recorded and (baseline is None or baseline in [v.name for v in variants]):
        raise ValueError("--recorded takes the baseline's runs from an earlier grid: name a --baseline not run here")
    earlier, note = recorded_rows(recorded, seeds, str(baseline)) if recorded else ([], "")
    known = [v.name for v in variants] + sorted({r["variant"] for r in earlier})
    if baseline is not None and baseline not in known:
        raise ValueError(f"baseline {baseline!r} is not one of the variants run or recorded: {', '.join(known)}")
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        for variant in variants:
            run_dir = seed_folder(out, variant.trained_as, seed)
            if not train and cell_state(run_dir) != "finished":
                continue
            trains_with = variant.overrides if variant.scores_of is None else (variant.trains_with or {})
            values = {**overrides, "train.seed": seed, **trains_with}
            train_or_resume(run_dir, base_config=base_config, values=values, progress=progress)
            rows.append(variant_row(variant, run_dir, seed=seed, device=device))
            atomic_write_text(out / "scores.json", json.dumps(rows, indent=2))
            report = format_report([*earlier, *rows], baseline, note=note)
            write_result_files(out, "table", markdown=report, records=[*earlier, *rows])
    if not rows:
        raise ValueError(f"{out}: no finished run of these variants and seeds yet")
    child_mask_figure([r for r in rows if r["seed"] == seeds[0]], out, seed=seeds[0])
    return [*earlier, *rows]


def recorded_rows(path: str | Path, seeds: Sequence[int], variant: str) -> tuple[list[dict[str, Any]], str]:
    """The rows of ``variant`` for ``seeds`` in an earlier grid's ``table.json``, and a sentence
    naming the file and the run that wrote it."""
    try:
        stored = json.loads(Path(path).read_text())
        records, made_by = stored["records"], stored.get("made_by", {})
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a devloop result file (table.json with records): {err}") from None
    rows = [r for r in records if r.get("seed") in seeds and r.get("variant") == variant]
    if not rows:
        raise ValueError(f"{path}: no recorded run of {variant!r} with seeds {list(seeds)}")
    origin = ", ".join(str(made_by[k]) for k in ("commit", "date") if made_by.get(k))
    return rows, f"Rows of {variant} are recorded in {path} ({origin or 'no provenance'}), not trained again."


def variant_row(variant: Variant, run_dir: Path, *, seed: int = 0, device: str = "auto") -> dict[str, Any]:
    """Scores of a finished run (computed once, then read from ``dev_scores.json``; a variant that
    scores another's runs keeps its own ``dev_scores-<variant>.json`` there)."""
    cached = run_dir / ("dev_scores.json" if variant.scores_of is None else f"dev_scores-{variant.name}.json")
    inference = variant.overrides if variant.scores_of is not None else None
    if cached.exists():
        return _with_added_columns(cached, run_dir / "checkpoints" / "best.pt", device, inference)
    started = time.perf_counter()
    summary = json.loads((run_dir / "summary.json").read_text())
    row: dict[str, Any] = {"variant": variant.name, "seed": seed, "overrides": variant.overrides}
    samples = run_dir / "dev_samples.npz" if variant.scores_of is None else None
    row.update(
        score_checkpoint(run_dir / "checkpoints" / "best.pt", device=device, samples=samples, inference=inference)
    )
    lowest = lowest_validation(run_dir, "f1_normal")
    if lowest is not None:
        row["val_f1_normal_min"] = lowest
    row["train_minutes"] = summary["wall_seconds"] / 60
    row["best_step"] = summary.get("best_step")
    row["score_seconds"] = round(time.perf_counter() - started, 1)
    atomic_write_text(cached, json.dumps(row, indent=2))
    return row


def _with_added_columns(
    cached: Path, checkpoint: Path, device: str, inference: dict[str, Any] | None
) -> dict[str, Any]:
    """A cached row, with the columns added since it was scored computed now and cached too."""
    found: dict[str, Any] = json.loads(cached.read_text())
    if "in_acc" in found and "shift_refused" not in found:  # scored before the prior-shift columns
        found.update(prior_shift_scores(checkpoint, device=device, inference=inference))
        atomic_write_text(cached, json.dumps(found, indent=2))
    return found


def lowest_validation(run_dir: Path, metric: str) -> float | None:
    """The lowest validation ``metric`` of a run after its supervised warm-up
    (``method.supervised_warmup_steps``; every validation when there is none), from ``metrics.jsonl``."""
    cfg = load_config(run_dir / "config.yaml")
    warmup = cfg.method.supervised_warmup_steps
    values = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry.get("phase") == "val" and metric in entry and entry["step"] > warmup:
            values.append(float(entry[metric]))
    return min(values) if values else None
