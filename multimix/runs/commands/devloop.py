"""Train config variants on real data under one fixed budget and print the development table.

    multimix devloop --data-root DEV --variants-file configs/dev/recipe.yaml --variants recipe --out runs/recipe
    multimix devloop --data-root DEV --variants-file configs/dev/stability.yaml --seeds 0,1,2 \
        --baseline recipe --out runs/stability     # run again: finished runs are skipped

DEV holds chex/ (classification; its official test/ folder is the in-domain test), jsrt/ (lung
masks) and nih/ (cross-domain labels, never trained on). Each variant runs once per seed, a normal
training run in <out>/<variant>/seed<k>/; the table (mean ± sd over seeds, paired differences to
the baseline variant, every run) goes to <out>/table.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from multimix.config import config_yaml, load_config
from multimix.config.loading import MAX_SEED
from multimix.runs.cli import run_main
from multimix.runs.devloop import load_variants, run_devloop, variant_config
from multimix.runs.flags import RUN_FLAG_KEYS, add_run_flags, config_source, flag_overrides

FLAG_KEYS = {
    **RUN_FLAG_KEYS,
    "seg_labels": "data.seg_labels",
    "cls_labels": "data.cls_labels",
    "cross_seg_sources": "real.cross_seg_sources",
    "cross_cls_sources": "real.cross_cls_sources",
    "unlabeled_sources": "data.unlabeled_sources",
}


def build_parser() -> argparse.ArgumentParser:
    """The command's flags (the command reference of the documentation is generated from it)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--variants-file",
        required=True,
        help="YAML with variants: {name: {section.key: value}} (the checkout's configs/dev/ablation.yaml, recipe.yaml)",
    )
    parser.add_argument("--variants", help="comma-separated variant names (default: every variant of the file)")
    parser.add_argument("--seg-labels", default="10", help="labeled lung masks (default 10)")
    parser.add_argument("--cls-labels", default="100", help="labeled classification images (default 100)")
    parser.add_argument("--cross-seg-sources", default="", help="cross-domain mask sources (default none)")
    parser.add_argument("--cross-cls-sources", default="nih", help="cross-domain label sources (default nih)")
    parser.add_argument("--unlabeled-sources", help="extra unlabeled sources for every variant")
    parser.add_argument(
        "--seeds",
        default="0,1,2",
        help="comma-separated seeds, the same for every variant (label draw, initialisation; default 0,1,2)",
    )
    parser.add_argument("--baseline", help="variant the paired differences are taken against (default: the first)")
    parser.add_argument(
        "--table-only", action="store_true", help="train nothing: the table of the runs finished so far"
    )
    parser.add_argument(
        "--recorded",
        help="an earlier grid's table.json: its runs of --baseline for these seeds join the tables, untrained",
    )
    add_run_flags(parser, batch_help="images per stream per step")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.out is None:
        args.out = "runs/dev"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.data_root:
        print("error: --data-root is required (a folder with chex/, jsrt/ and nih/)", file=sys.stderr)
        return 2
    return run_main(lambda: _run(args), debug=args.debug)


def _run(args: argparse.Namespace) -> int:
    seeds = parse_seeds(args.seeds)  # before anything is scanned or created
    base = config_source(args.config, args.data_root)
    overrides = flag_overrides(args, FLAG_KEYS)
    overrides.pop("train.out", None)  # each run's folder is <out>/<variant>/seed<k>
    if args.print_config:  # the base every variant's overrides apply to
        print(config_yaml(load_config(base, overrides)), end="")
        return 0
    names = [n.strip() for n in args.variants.split(",") if n.strip()] if args.variants else None
    variants = load_variants(args.variants_file, names)
    for variant in variants:  # a typo in the file fails now, not after hours of training
        variant_config(variant, base, overrides)
    run_devloop(
        variants,
        Path(args.out),
        base_config=base,
        overrides=overrides,
        seeds=seeds,
        baseline=args.baseline or variants[0].name,
        device=args.device or "auto",
        progress=not args.no_progress,
        train=not args.table_only,
        recorded=args.recorded,
    )
    print((Path(args.out) / "table.md").read_text())
    return 0


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; a clear error for anything else."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--seeds: expected comma-separated whole numbers like 0,1,2, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds: expected distinct seeds like 0,1,2, got {text!r}")
    outside = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if outside:
        raise ValueError(f"--seeds: every seed must lie between 0 and {MAX_SEED}, got {outside}")
    return seeds
