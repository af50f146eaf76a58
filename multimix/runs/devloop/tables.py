"""The development table: its columns, mean ± sd over seeds and the paired differences to a baseline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from multimix.evaluation.tables import is_beyond_spread, mean_sd_text
from multimix.evaluation.tables import paired_differences as seed_differences

# column key -> (header, format); the order of the printed table
COLUMNS: dict[str, tuple[str, str]] = {
    "in_acc": ("in acc", "{:.3f}"),
    "in_f1_normal": ("in F1-N", "{:.3f}"),
    "in_f1_pneumonia": ("in F1-P", "{:.3f}"),
    "in_auroc": ("in AUROC", "{:.3f}"),
    "jsrt_dice": ("JSRT Dice", "{:.3f}"),
    "jsrt_dice_clean": ("Dice clean", "{:.3f}"),
    "jsrt_hd95": ("HD95 px", "{:.1f}"),
    "adults_normal": ("adults normal", "{:.3f}"),
    "child_masks_broken": ("child masks broken", "{:.3f}"),
    "cross_acc": ("NIH acc", "{:.3f}"),
    "cross_f1_normal": ("NIH F1-N", "{:.3f}"),
    "cross_auroc": ("NIH AUROC", "{:.3f}"),
    "cross_acc_prior_em": ("NIH acc adapted", "{:.3f}"),
    "cross_f1_normal_prior_em": ("NIH F1-N adapted", "{:.3f}"),
    "cross_acc_score_mixture": ("NIH acc mixture", "{:.3f}"),
    "cross_f1_normal_score_mixture": ("NIH F1-N mixture", "{:.3f}"),
    "cross_acc_youden": ("NIH acc calibrated", "{:.3f}"),
    "cross_f1_normal_youden": ("NIH F1-N calibrated", "{:.3f}"),
    "cross_auroc_low": ("NIH AUROC CI low", "{:.3f}"),
    "cross_auroc_high": ("NIH AUROC CI high", "{:.3f}"),
    "cross_majority_acc": ("NIH majority acc", "{:.3f}"),
    "cross_dice": ("cross Dice", "{:.3f}"),
    "cross_dice_raw": ("cross Dice raw", "{:.3f}"),
    "cross_below_half": ("cross Dice<0.5", "{:.3f}"),
    "cross_hd95": ("cross HD95 px", "{:.1f}"),
    "shift_share_err_prior_em": ("shift share err EM", "{:.3f}"),
    "shift_share_err_score_mixture": ("shift share err mixture", "{:.3f}"),
    "shift_acc_gain_prior_em": ("shift acc gain EM", "{:+.3f}"),
    "shift_acc_gain_score_mixture": ("shift acc gain mixture", "{:+.3f}"),
    "shift_refused": ("shift refused", "{:.0f}"),
    "temperature": ("temperature", "{:.2f}"),
    "val_f1_normal_min": ("val F1-N min", "{:.3f}"),
    "train_minutes": ("train min", "{:.1f}"),
}

# columns where lower is better (the paired-difference table flips their sign for "gain")
LOWER_IS_BETTER = (
    "jsrt_hd95",
    "child_masks_broken",
    "cross_below_half",
    "cross_hd95",
    "shift_share_err_prior_em",
    "shift_share_err_score_mixture",
    "shift_refused",
    "train_minutes",
)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table: one row per run, the columns of :data:`COLUMNS` that any row has."""
    keys = [k for k in COLUMNS if any(k in row for row in rows)]
    lines = ["| variant | " + " | ".join(COLUMNS[k][0] for k in keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for row in rows:
        cells = [COLUMNS[k][1].format(row[k]) if row.get(k) is not None else "-" for k in keys]
        name = row["variant"] + (f" (seed {row['seed']})" if "seed" in row else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _by_variant(rows: Sequence[dict[str, Any]]) -> dict[str, dict[int, dict[str, Any]]]:
    grouped: dict[str, dict[int, dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["variant"], {})[int(row.get("seed", 0))] = row
    return grouped


def summary_table(rows: Sequence[dict[str, Any]]) -> str:
    """Mean ± sd over seeds per variant (``val F1-N min``: the lowest over every seed)."""
    grouped = _by_variant(rows)
    keys = [k for k in COLUMNS if any(k in row for row in rows)]
    lines = ["| variant | seeds | " + " | ".join(COLUMNS[k][0] for k in keys) + " |", "|---" * (len(keys) + 2) + "|"]
    for name, runs in grouped.items():
        cells = []
        for key in keys:
            values = [float(r[key]) for r in runs.values() if r.get(key) is not None]
            if key == "val_f1_normal_min":
                cells.append(COLUMNS[key][1].format(min(values)) if values else "-")
            else:
                cells.append(mean_sd_text(values, COLUMNS[key][1]))
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_differences(rows: Sequence[dict[str, Any]], baseline: str) -> dict[str, dict[str, list[float]]]:
    """Per variant and column, the differences to ``baseline`` on the seeds both have."""
    grouped = _by_variant(rows)
    base = grouped.get(baseline, {})
    return {
        name: {
            key: seed_differences({s: r.get(key) for s, r in runs.items()}, {s: r.get(key) for s, r in base.items()})
            for key in COLUMNS
        }
        for name, runs in grouped.items()
        if name != baseline
    }


def paired_table(rows: Sequence[dict[str, Any]], baseline: str) -> str:
    """Paired difference to ``baseline`` per column (mean ± sd over the shared seeds); a cell is
    **bold** where the mean difference is larger than its spread (sd) in the better direction,
    *italic* where it is larger in the worse direction; the rest is noise."""
    diffs = paired_differences(rows, baseline)
    keys = [k for k in COLUMNS if k != "val_f1_normal_min" and any(d.get(k) for d in diffs.values())]
    lines = [
        f"| vs {baseline} | seeds | " + " | ".join(COLUMNS[k][0] for k in keys) + " |",
        "|---" * (len(keys) + 2) + "|",
    ]
    for name, columns in diffs.items():
        seeds = max((len(v) for v in columns.values()), default=0)
        cells = []
        for key in keys:
            values = columns.get(key, [])
            if not values:
                cells.append("-")
                continue
            mean = float(np.mean(values))
            text = mean_sd_text(values, COLUMNS[key][1], signed=True)
            better = -mean if key in LOWER_IS_BETTER else mean
            if is_beyond_spread(values):
                text = f"**{text}**" if better > 0 else f"*{text}*"
            cells.append(text)
        lines.append(f"| {name} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_report(rows: Sequence[dict[str, Any]], baseline: str | None = None, *, note: str = "") -> str:
    """``table.md``: mean ± sd per variant, paired differences to ``baseline``, then every run
    (``note``, when given, opens it: where recorded rows came from)."""
    parts = [
        *([note, ""] if note else []),
        "Mean ± sd over seeds (val F1-N min: lowest over every validation after the warm-up, every seed)",
        "",
        summary_table(rows),
    ]
    if baseline is not None and len(_by_variant(rows)) > 1:
        parts += [
            "",
            f"Paired difference to {baseline} (bold: gain larger than its spread; italic: loss larger than its spread)",
            "",
            paired_table(rows, baseline),
        ]
    parts += ["", "Every run", "", format_table(rows)]
    return "\n".join(parts)
