#!/usr/bin/env python
"""Run a trained checkpoint on X-ray files: class, lung mask, saliency and overlays per image.

    python scripts/predict.py scan.png --checkpoint runs/a/checkpoints/best.pt
    python scripts/predict.py /data/xrays/ --checkpoint runs/a/checkpoints/best.pt --out predictions/
    python scripts/predict.py "/data/jsrt/*.IMG" --checkpoint runs/a/checkpoints/best.pt

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
import traceback

from multimix.engine.checkpoint import CheckpointError
from multimix.prediction.batch import expand_inputs, predict_files


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="IMAGE|FOLDER|GLOB", help="image files, folders (searched recursively) or glob patterns")
    parser.add_argument("--checkpoint", required=True, help="a run's best.pt or last.pt")
    parser.add_argument("--out", default="predictions", help="output folder (default: predictions/)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threshold", type=float, default=0.5, help="lung probability threshold of the mask")
    parser.add_argument("--clean-masks", action=argparse.BooleanOptionalAction, default=None,
                        help="keep the two largest lung regions and fill holes (default: as the checkpoint's config says)")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for item in args.inputs:
        if not expand_inputs([item]):
            print(f"warning: {item} names no image file", file=sys.stderr)
    files = expand_inputs(args.inputs)
    if not files:
        print(f"error: no image files found in {' '.join(args.inputs)}", file=sys.stderr)
        return 1
    try:
        report = predict_files(files, args.checkpoint, args.out, batch_size=args.batch_size, device=args.device,
                               seg_threshold=args.threshold, clean_masks=args.clean_masks, progress=not args.no_progress)
    except (ValueError, FileNotFoundError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted; {args.out}/predictions.csv lists every file finished so far", file=sys.stderr)
        return 130
    except Exception:  # an unexpected failure still tells the user what was finished
        traceback.print_exc()
        print(f"error: prediction stopped; {args.out}/predictions.csv lists every file finished so far", file=sys.stderr)
        return 1
    print(f"{report.done} of {len(files)} images predicted, {report.failed} skipped; results in {report.csv_path}")
    return 0 if report.done else 1


if __name__ == "__main__":
    sys.exit(main())
