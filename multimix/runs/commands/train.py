"""Train MultiMix (or one of the paper's baselines) and evaluate it in- and cross-domain.

multimix train --seg-labels 10 --cls-labels 100
multimix train --config baselines/umtl --steps 500 --out runs/umtl
multimix train --out runs/umtl --resume
"""

from __future__ import annotations

import argparse

from multimix.models import available_models
from multimix.runs.cli import run_script
from multimix.runs.flags import add_run_flags
from multimix.runs.train import run_training

# flags only this script has -> config key (the shared ones are in multimix.runs.cli)
FLAG_KEYS = {
    "seg_labels": "data.seg_labels",
    "cls_labels": "data.cls_labels",
    "model": "model.name",
    "split": "data.split_file",
    "cross_seg_sources": "real.cross_seg_sources",
    "cross_cls_sources": "real.cross_cls_sources",
    "unlabeled_sources": "data.unlabeled_sources",
    "init_encoder": "model.init_encoder",
}


def build_parser() -> argparse.ArgumentParser:
    """The command's flags (the command reference of the documentation is generated from it)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seg-labels", help="labeled segmentation images: a count, a percentage like 5%%, or 'all'")
    parser.add_argument("--cls-labels", help="labeled classification images: a count, a percentage, or 'all'")
    parser.add_argument("--model", choices=available_models(), help="architecture variant")
    parser.add_argument("--split", help="use this split.json instead of drawing a new one")
    parser.add_argument("--cross-seg-sources", help="cross-domain segmentation test sources (default montgomery)")
    parser.add_argument("--cross-cls-sources", help="cross-domain classification test sources (default nih)")
    parser.add_argument(
        "--unlabeled-sources",
        help="sources whose images join both unlabeled streams without their labels, "
        "e.g. jsrt (adults for the classifier) or nih (a target hospital: domain adaptation)",
    )
    parser.add_argument(
        "--init-encoder", metavar="PATH", help="start the encoder from a multimix pretrain checkpoint (U-Net backbone)"
    )
    add_run_flags(parser, batch_help="images per stream per step")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_script(args, FLAG_KEYS, lambda cfg: run_training(cfg, resume=args.resume, progress=not args.no_progress))
