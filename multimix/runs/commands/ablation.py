"""Run the paper's ablation grid and write the combined table (mean ± std over seeds) and figures.

    multimix ablation --quick                       # whole grid, small and fast, synthetic data
    multimix ablation --models umtls,multimix --seg-labels 10 --cls-labels 100 --seeds 3
    multimix ablation --out runs/ablation            # run again: finished runs are skipped

Each cell is a normal training run in <out>/runs/<model>-seg<N>-cls<M>-seed<S>/.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from multimix.config import config_yaml, load_config
from multimix.config.presets import PRESET_NAMES
from multimix.evaluation.results import EvaluationSettings
from multimix.evaluation.summary import BootstrapSettings
from multimix.runs.ablation import (
    DEFAULT_CLS_BUDGETS,
    DEFAULT_SEG_BUDGETS,
    QUICK_OVERRIDES,
    grid,
    run_ablation,
)
from multimix.runs.cli import run_main
from multimix.runs.flags import add_debug_flag, add_progress_flag, config_source, flag_overrides


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def build_parser() -> argparse.ArgumentParser:
    """The command's flags (the command reference of the documentation is generated from it)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--models", default=",".join(PRESET_NAMES), help=f"comma-separated subset of {', '.join(PRESET_NAMES)}"
    )
    parser.add_argument("--seg-labels", default=",".join(DEFAULT_SEG_BUDGETS), help="segmentation label budgets")
    parser.add_argument("--cls-labels", default=",".join(DEFAULT_CLS_BUDGETS), help="classification label budgets")
    parser.add_argument("--seeds", type=int, help="number of seeds (default 3; 1 with --quick)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="32 px, 400 steps per run, one seed: the whole grid in about 10 minutes on 2 CPU cores",
    )
    parser.add_argument(
        "--config",
        help="base config of every cell: a YAML file or a packaged config name (default multimix, "
        "also with --data-root: the paper's rows compare on the paper's settings)",
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the base config (before each row's preset) and exit"
    )
    parser.add_argument("--data-root", help="real datasets under DIR instead of synthetic data")
    parser.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="any config value, for every run"
    )
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for per-run CIs")
    parser.add_argument("--out", default="runs/ablation", help="grid folder (default runs/ablation)")
    add_progress_flag(parser)
    add_debug_flag(parser)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seeds = args.seeds if args.seeds is not None else (1 if args.quick else 3)
    return run_main(lambda: _run(args, seeds), debug=args.debug)


def _run(args: argparse.Namespace, seeds: int) -> int:
    base = config_source(args.config, args.data_root, real_default=None)
    overrides = {**(QUICK_OVERRIDES if args.quick else {}), **flag_overrides(args, {})}
    if args.print_config:
        print(config_yaml(load_config(base, overrides)), end="")
        return 0
    cells = grid(_list(args.models), _list(args.seg_labels), _list(args.cls_labels), range(seeds))
    print(f"{len(cells)} runs in {args.out}/runs")
    settings = EvaluationSettings(boot=BootstrapSettings(n_resamples=args.bootstrap), progress=False)
    report = run_ablation(
        cells, args.out, base_config=base, overrides=overrides, settings=settings, progress=not args.no_progress
    )
    print((Path(args.out) / "table.md").read_text())
    print(f"report: {report}")
    return 0
