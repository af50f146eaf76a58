"""The paper's ablation grid: seven models x label budgets x seeds, trained, evaluated and tabulated.

Every cell is an ordinary training run in its own folder (``<out>/runs/<cell>``), so a grid can be
stopped and restarted at will: finished runs (those with ``summary.json``) are skipped, an
interrupted one resumes from its ``last.pt``. Cells that differ only in a budget a model ignores
(U-Net and classification labels, Enc and segmentation labels) are trained once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from multimix.config.presets import PRESET_NAMES, preset_overrides, preset_table
from multimix.evaluation.report import (
    paper_table,
    report_markdown,
    table_records,
    table_rows,
    write_figures,
)
from multimix.evaluation.results import EvaluationSettings, ModelResult
from multimix.evaluation.tables import write_result_files
from multimix.models.factory import model_heads
from multimix.runs.evaluate import evaluate_checkpoints
from multimix.runs.flags import DEFAULT_CONFIG
from multimix.runs.grid import train_or_resume
from multimix.utils.atomic import atomic_write_text

DEFAULT_SEG_BUDGETS = ("10", "50", "all")
DEFAULT_CLS_BUDGETS = ("100", "1000", "all")

# --quick: small images, a few hundred steps, the unsupervised terms ramped in quickly
QUICK_OVERRIDES: dict[str, Any] = {
    "data.image_size": 32,
    "train.epochs": 4,
    "train.steps_per_epoch": 100,
    "train.warmup_steps": 20,
    "method.ssl_rampup_steps": 60,
    "synthetic.val_per_site": 30,
    "synthetic.test_per_site": 60,
    "synthetic.cls_pool": 2000,  # so that 1000 labels are not already all of them
}


def ignores_masks(preset: str) -> bool:
    """The preset's model has no segmentation decoder (read from the model), so its mask budget is moot."""
    return not model_heads(preset_table()[preset][0])[0]


def ignores_labels(preset: str) -> bool:
    """The preset's model has no class head (read from the model), so its class-label budget is moot."""
    return not model_heads(preset_table()[preset][0])[1]


@dataclass(frozen=True)
class Cell:
    """One training run of the grid."""

    preset: str
    seg_labels: str
    cls_labels: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.preset}-seg{self.seg_labels}-cls{self.cls_labels}-seed{self.seed}"


def grid(
    presets: Sequence[str], seg_budgets: Sequence[str], cls_budgets: Sequence[str], seeds: Sequence[int]
) -> list[Cell]:
    """The cells to train, in table order; a budget a preset ignores is pinned to its first value."""
    unknown = [p for p in presets if p not in PRESET_NAMES]
    if unknown:
        raise ValueError(f"unknown models {unknown}; available: {', '.join(PRESET_NAMES)}")
    cells: dict[Cell, None] = {}
    for preset in presets:
        for seg in seg_budgets:
            for cls in cls_budgets:
                for seed in seeds:
                    cell = Cell(
                        preset,
                        seg_budgets[0] if ignores_masks(preset) else seg,
                        cls_budgets[0] if ignores_labels(preset) else cls,
                        seed,
                    )
                    cells[cell] = None
    return list(cells)


def train_cell(cell: Cell, out: Path, *, base_config: str | Path, overrides: dict[str, Any], progress: bool) -> Path:
    """Train one cell unless it is finished (resume it if interrupted); returns the run folder."""
    values = {
        **overrides,
        **preset_overrides(cell.preset),
        "data.seg_labels": cell.seg_labels,
        "data.cls_labels": cell.cls_labels,
        "train.seed": cell.seed,
    }
    return train_or_resume(out / "runs" / cell.name, base_config=base_config, values=values, progress=progress)


def display_budgets(result: ModelResult) -> None:
    """Show ``-`` for the budget a model ignores, so its row reads like the paper's."""
    seg_head, cls_head = model_heads(result.config.model.name)
    if not seg_head:
        result.config.data.seg_labels = "-"
    if not cls_head:
        result.config.data.cls_labels = "-"


def run_ablation(
    cells: Sequence[Cell],
    out: str | Path,
    *,
    base_config: str | Path = DEFAULT_CONFIG,
    overrides: dict[str, Any] | None = None,
    settings: EvaluationSettings | None = None,
    progress: bool = True,
) -> Path:
    """Train every cell (skipping finished ones), evaluate all, write the combined report.

    Writes ``<out>/table.md``, ``table.csv`` and ``table.json`` (mean ± sd over seeds, with the command,
    commit, machine and date that made them), ``<out>/report.md``
    with figures for the first seed of each label budget, and ``<out>/runs/<cell>/``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = settings or EvaluationSettings(progress=False)
    run_dirs = []
    for cell in tqdm(cells, desc="ablation", unit="run", disable=not progress):
        run_dirs.append(train_cell(cell, out, base_config=base_config, overrides=overrides or {}, progress=False))
    results = evaluate_checkpoints([d / "checkpoints" / "best.pt" for d in run_dirs], settings, progress=progress)
    for result in results:
        display_budgets(result)
    rows = table_rows(results, group_seeds=True)
    write_result_files(out, "table", markdown=paper_table(rows), records=table_records(rows))
    figure_runs = _first_seed_per_budget(cells, results)
    figs = {}
    for (seg, cls), group in figure_runs.items():
        for caption, path in write_figures(group, out / "figures" / f"seg{seg}-cls{cls}").items():
            figs[f"{caption} (seg {seg}, cls {cls}, seed {min(c.seed for c in cells)})"] = path
    seeds = sorted({c.seed for c in cells})
    intro = (
        f"{len(cells)} training runs in `runs/`, seeds {seeds}; table cells are the mean ± sample sd over seeds of "
        f"each run's point estimate (one value when there is one seed). `table.csv` holds the same numbers. "
        f"Each run's own metrics with CIs: `multimix evaluate --checkpoint runs/<run>/checkpoints/best.pt`."
    )
    report = report_markdown([], rows, figs, out, settings, title="Ablation: the paper's grid", intro=intro)
    atomic_write_text(out / "report.md", report)
    return out / "report.md"


def _first_seed_per_budget(
    cells: Sequence[Cell], results: Sequence[ModelResult]
) -> dict[tuple[str, str], list[ModelResult]]:
    """Results of the lowest seed, grouped by (seg, cls) budget; budget-blind models join every group."""
    first = min(c.seed for c in cells)
    blind = {c.preset for c in cells if ignores_masks(c.preset) or ignores_labels(c.preset)}
    budgets = list(dict.fromkeys((c.seg_labels, c.cls_labels) for c in cells if c.preset not in blind))
    groups: dict[tuple[str, str], list[ModelResult]] = {b: [] for b in budgets}
    for cell, result in zip(cells, results, strict=True):
        if cell.seed != first:
            continue
        for seg, cls in budgets or [(cell.seg_labels, cell.cls_labels)]:
            if (ignores_masks(cell.preset) or cell.seg_labels == seg) and (
                ignores_labels(cell.preset) or cell.cls_labels == cls
            ):
                groups.setdefault((seg, cls), []).append(result)
    for group in groups.values():
        for r in group:
            r.label = r.model_name
    return groups
