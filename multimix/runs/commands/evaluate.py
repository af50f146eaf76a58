"""Evaluate trained runs in- and cross-domain: every metric with 95% CIs, a report and figures.

    multimix evaluate --checkpoint runs/multimix/checkpoints/best.pt
    multimix evaluate --checkpoint runs/a/checkpoints/best.pt runs/b/checkpoints/best.pt --out eval/ab
    multimix evaluate --checkpoint runs/a/checkpoints/best.pt --data-root /data/cxr --sources shenzhen

Writes metrics.json, per_image.csv, table.csv, report.md and figures/ as the folder --out: built
aside and moved into place when complete, replacing an earlier report there whole.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from multimix.evaluation.report import check_report_folder, console_table, write_report
from multimix.evaluation.results import EvaluationSettings
from multimix.evaluation.summary import BootstrapSettings
from multimix.runs.cli import run_main
from multimix.runs.evaluate import evaluate_checkpoints
from multimix.runs.flags import add_debug_flag, add_device_flag, add_progress_flag
from multimix.runs.folder import run_folder
from multimix.utils.locks import exclusive_lock


def build_parser() -> argparse.ArgumentParser:
    """The command's flags (the command reference of the documentation is generated from it)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--checkpoint", nargs="+", required=True, metavar="PATH", help="one or more run checkpoints (best.pt)"
    )
    parser.add_argument(
        "--domain",
        choices=["in", "cross", "all"],
        default="all",
        help="in: the run's own test split; cross: sources it never trained on; all: both",
    )
    parser.add_argument(
        "--sources", help="evaluate on these sources instead (comma-separated), minus the run's training images"
    )
    parser.add_argument("--data-root", help="real datasets under DIR (default: the data the run was trained on)")
    parser.add_argument("--image-size", type=int, help="evaluation size (default: the run's training size)")
    parser.add_argument("--batch-size", type=int, default=32)
    add_device_flag(parser)
    parser.add_argument(
        "--threshold",
        type=float,
        help="decision threshold on p(pneumonia) (default: each checkpoint's operating point, set by "
        "multimix adapt / calibrate; 0.5 when it has none)",
    )
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the confidence intervals")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--samples", type=int, default=4, help="images per domain in the boundary and saliency figures")
    parser.add_argument("--out", help="output folder (default: <first run>/evaluation)")
    parser.add_argument(
        "--clean-masks",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="score lung masks after keeping the two largest regions and filling holes "
        "(default: as the run's config says)",
    )
    add_progress_flag(parser)
    add_debug_flag(parser)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threshold is not None and not 0 < args.threshold < 1:
        print("error: --threshold must be in (0, 1)", file=sys.stderr)
        return 2
    settings = EvaluationSettings(
        domain=args.domain,
        sources=tuple(s.strip() for s in args.sources.split(",") if s.strip()) if args.sources else (),
        data_root=args.data_root,
        image_size=args.image_size,
        batch_size=args.batch_size,
        device=args.device,
        threshold=args.threshold,
        boot=BootstrapSettings(n_resamples=args.bootstrap, seed=args.seed),
        num_samples=args.samples,
        clean_masks=args.clean_masks,
        progress=not args.no_progress,
    )
    out = Path(args.out) if args.out else run_folder(args.checkpoint[0]) / "evaluation"

    def body() -> int:
        check_report_folder(out)  # before minutes of evaluation, not after
        # a second evaluation into the same --out refuses at once instead of racing this one
        with exclusive_lock(out.parent / f".{out.name}.lock", what=f"evaluation folder {out}"):
            results = evaluate_checkpoints(args.checkpoint, settings)
            report = write_report(results, out, settings)
        print(console_table(results))
        print(f"report: {report}")
        return 0

    return run_main(body, debug=args.debug)
