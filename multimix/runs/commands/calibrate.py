"""Choose a trained model's decision threshold on a few labeled images of a new hospital.

    multimix calibrate --checkpoint runs/<run>/checkpoints/best.pt --data-root DIR --sources nih --out calibrated.pt
    multimix calibrate --checkpoint best.pt --sources folder:/data/site-b --method sensitivity \
        --sensitivity 0.95 --out c.pt

--method youden (default) maximises sensitivity + specificity - 1; sensitivity takes the highest
threshold that reaches --sensitivity. Images the run trained or validated on are left out. The
threshold, with how and on what it was chosen, is stored in a new checkpoint (the input is never
changed) that evaluate, predict and serve then decide with.
"""

from __future__ import annotations

import argparse
import sys

from multimix.metrics.operating_point import CALIBRATE_METHODS
from multimix.runs.cli import run_main
from multimix.runs.flags import add_debug_flag, add_device_flag, add_force_flag, add_progress_flag


def build_parser() -> argparse.ArgumentParser:
    """The command's flags (the command reference of the documentation is generated from it)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a trained run's best.pt")
    parser.add_argument(
        "--sources", required=True, help="comma-separated labeled sources of the new hospital (nih, folder:PATH, ...)"
    )
    parser.add_argument("--data-root", help="real datasets under DIR (default: where the run's data was)")
    parser.add_argument("--out", required=True, help="the calibrated checkpoint to write (.pt)")
    parser.add_argument("--method", choices=CALIBRATE_METHODS, default="youden")
    parser.add_argument("--sensitivity", type=float, default=0.9, help="target sensitivity of --method sensitivity")
    parser.add_argument("--batch-size", type=int, default=32)
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
        from multimix.evaluation.summary import NO_RANKING
        from multimix.runs.operating_point import calibrate_checkpoint

        sources = [s.strip() for s in args.sources.split(",") if s.strip()]
        if not sources:
            raise ValueError("--sources names no source")
        point = calibrate_checkpoint(
            args.checkpoint,
            sources,
            args.out,
            data_root=args.data_root,
            method=args.method,
            sensitivity=args.sensitivity,
            device=args.device,
            batch_size=args.batch_size,
            progress=not args.no_progress,
            force=args.force,
        )
        d = point.details
        low, high = d["auroc_ci"]
        print(
            f"{point.describe()}: sensitivity {d['sensitivity']:.3f}, specificity {d['specificity']:.3f} "
            f"on {d['normals']} normal + {d['pneumonias']} pneumonia images; "
            f"AUROC {d['auroc']:.3f} [95% CI {low:.3f}, {high:.3f}]\nwritten: {args.out}"
        )
        if not d["ranks"]:
            print(f"warning: {NO_RANKING}", file=sys.stderr)
        return 0

    return run_main(body, debug=args.debug)
