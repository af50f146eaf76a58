"""Adapt a trained model's decision threshold to a new hospital from its unlabeled images.

    multimix adapt --checkpoint runs/<run>/checkpoints/best.pt --images /data/hospital-b --out adapted.pt
    multimix adapt --checkpoint best.pt --images /data/hospital-b --method score-mixture --out adapted.pt

The model scores every image; --method prior-em (default) estimates the hospital's class prior
from those scores (EM of Saerens et al. 2002: only the class mix changed), score-mixture fits two
humps to the score distribution (the scores may have moved as a whole). The threshold, with how
and on what it was chosen, is stored in a new checkpoint (the input is never changed) that
evaluate, predict and serve then decide with (their --threshold / --class-threshold overrides it).
"""

from __future__ import annotations

import argparse

from multimix.metrics.operating_point import ADAPT_METHODS
from multimix.runs.cli import run_main
from multimix.runs.flags import add_debug_flag, add_device_flag, add_force_flag, add_progress_flag


def build_parser() -> argparse.ArgumentParser:
    """The command's flags (the command reference of the documentation is generated from it)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a trained run's best.pt")
    parser.add_argument(
        "--images",
        nargs="+",
        required=True,
        metavar="IMAGE|FOLDER|GLOB",
        help="the new hospital's images (labels, if any, are not read)",
    )
    parser.add_argument("--out", required=True, help="the adapted checkpoint to write (.pt)")
    parser.add_argument("--method", choices=ADAPT_METHODS, default="prior-em")
    parser.add_argument("--batch-size", type=int, default=16)
    add_device_flag(parser)
    add_force_flag(parser)
    add_progress_flag(parser)
    add_debug_flag(parser)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        from multimix.runs.operating_point import adapt_checkpoint

        if args.batch_size < 1:
            raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
        point = adapt_checkpoint(
            args.checkpoint,
            args.images,
            args.out,
            method=args.method,
            device=args.device,
            batch_size=args.batch_size,
            progress=not args.no_progress,
            force=args.force,
        )
        priors = point.details.get("target_prior")
        estimate = f"; estimated share of pneumonia {priors[1]:.3f}" if priors else ""
        print(f"{point.describe()}{estimate}\nwritten: {args.out}")
        return 0

    return run_main(body, debug=args.debug)
