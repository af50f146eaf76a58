"""Stratified, patient-grouped K-fold cross-validation of a training configuration.

    multimix cv --folds 5 --seg-labels 10 --cls-labels 100 --out runs/cv5
    multimix cv --folds 3 --data-root /data --cls-sources csv:/data/site/labels.csv --out runs/cv-site
    multimix cv --folds 5 --out runs/cv5          # run again: finished folds are skipped

The labeled classification images are cut into K folds (stratified by class, a patient's images
in one fold); each fold is once the in-domain test set of a run trained on the others, with the
label budget drawn there. Writes <out>/fold<k>/ (ordinary runs), <out>/splits/, and the table of
mean ± sd over folds plus one row per fold to <out>/cv_table.md (and cv.json).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from multimix.config import config_yaml
from multimix.runs.cli import run_main
from multimix.runs.cv import run_cv
from multimix.runs.flags import add_run_flags, resolve_config
from multimix.runs.folder import fresh_run_path

FLAG_KEYS = {"seg_labels": "data.seg_labels", "cls_labels": "data.cls_labels"}


def build_parser() -> argparse.ArgumentParser:
    """The command's flags (the command reference of the documentation is generated from it)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    parser.add_argument("--seg-labels", help="labeled lung masks per fold: N, P%% or all")
    parser.add_argument("--cls-labels", help="labeled class images per fold, drawn from its training folds")
    add_run_flags(parser, batch_help="images per stream per step")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.folds < 2:
        print(f"error: --folds must be at least 2, got {args.folds}", file=sys.stderr)
        return 2

    def body() -> int:
        cfg = resolve_config(args, FLAG_KEYS)
        if args.print_config:
            print(config_yaml(cfg), end="")
            return 0
        out = Path(args.out) if args.out else fresh_run_path(f"cv{args.folds}")
        run_cv(cfg, args.folds, out, progress=not args.no_progress)
        print((out / "cv_table.md").read_text())
        return 0

    return run_main(body, debug=args.debug)
