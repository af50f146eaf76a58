"""Run a trained checkpoint on X-ray files: class, lung mask, saliency and overlays per image.

    multimix predict scan.png --checkpoint runs/a/checkpoints/best.pt
    multimix predict /data/xrays/ --checkpoint runs/a/checkpoints/best.pt --out predictions/
    multimix predict "/data/jsrt/*.IMG" --checkpoint runs/a/checkpoints/best.pt

Reads PNG/JPEG (8 or 16 bit), raw JSRT .IMG and, with pydicom installed, DICOM. Each image is
preprocessed as the checkpoint's training run did (its stored image size). For every image the
output folder gets NAME_mask.png (lung mask at the original resolution), NAME_saliency.png and
NAME_boundary.png (overlays); predictions.csv gets one row per file, written as each batch
finishes, so an interrupted run still lists every file it did. Unreadable files are reported
by name, marked "error" in the CSV, and skipped.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from multimix.prediction.batch import expand_inputs, predict_files
from multimix.runs.cli import run_main
from multimix.runs.flags import (
    add_debug_flag,
    add_device_flag,
    add_max_megapixels_flag,
    add_progress_flag,
    apply_max_megapixels,
)


def build_parser() -> argparse.ArgumentParser:
    """The command's flags (the command reference of the documentation is generated from it)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="IMAGE|FOLDER|GLOB",
        help="image files, folders (searched recursively) or glob patterns",
    )
    parser.add_argument("--checkpoint", required=True, help="a run's best.pt or last.pt")
    parser.add_argument("--out", default="predictions", help="output folder (default: predictions/)")
    parser.add_argument("--batch-size", type=int, default=16)
    add_device_flag(parser)
    parser.add_argument("--threshold", type=float, default=0.5, help="lung probability threshold of the mask")
    parser.add_argument(
        "--class-threshold",
        type=float,
        help="call pneumonia when p(pneumonia) >= this (default: the checkpoint's operating point, "
        "set by multimix adapt / calibrate; 0.5 when it has none)",
    )
    parser.add_argument(
        "--clean-masks",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the two largest lung regions and fill holes (default: as the checkpoint's config says)",
    )
    add_max_megapixels_flag(parser)
    add_progress_flag(parser)
    add_debug_flag(parser)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def usage_error(args: argparse.Namespace) -> str | None:
    if args.batch_size < 1:
        return f"--batch-size must be at least 1, got {args.batch_size}"
    if not 0 < args.threshold < 1:
        return f"--threshold must be between 0 and 1, got {args.threshold}"
    if args.class_threshold is not None and not 0 < args.class_threshold < 1:
        return f"--class-threshold must be between 0 and 1, got {args.class_threshold}"
    return None


def _partial_results(out: str, started: float) -> str:
    """Where the files finished before a stop are listed, if this run got as far as writing any."""
    csv_path = Path(out) / "predictions.csv"
    if csv_path.is_file() and csv_path.stat().st_mtime >= started:
        return f"; {csv_path} lists every file finished so far"
    return ""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # before any output is opened: a typo never wipes predictions.csv
    if message := usage_error(args) or apply_max_megapixels(args):
        print(f"error: {message}", file=sys.stderr)
        return 2
    for item in args.inputs:
        if not expand_inputs([item], exclude=args.out):
            print(f"warning: {item} names no image file (outside the output folder {args.out})", file=sys.stderr)
    files = expand_inputs(args.inputs, exclude=args.out)
    if not files:
        print(f"error: no image files found in {' '.join(args.inputs)}", file=sys.stderr)
        return 1

    started = time.time()

    def body() -> int:
        try:
            report = predict_files(
                files,
                args.checkpoint,
                args.out,
                batch_size=args.batch_size,
                device=args.device,
                seg_threshold=args.threshold,
                clean_masks=args.clean_masks,
                class_threshold=args.class_threshold,
                progress=not args.no_progress,
            )
        except KeyboardInterrupt:
            print(f"\ninterrupted{_partial_results(args.out, started)}", file=sys.stderr)
            return 130
        except Exception:
            if note := _partial_results(args.out, started):
                print(f"prediction stopped{note}", file=sys.stderr)
            raise
        print(f"{report.done} of {len(files)} images predicted, {report.failed} skipped; results in {report.csv_path}")
        return 0 if report.done else 1

    return run_main(body, debug=args.debug)
