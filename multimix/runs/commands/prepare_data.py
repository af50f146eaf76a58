"""Find, validate and cache the chest X-ray datasets under a data root.

    multimix prepare-data --data-root DIR [--image-size 256] [--cache-dir PATH]

DIR holds one folder per dataset in its publisher's layout: chex/, jsrt/, montgomery/,
shenzhen/, nih/. Prints what was found, used and skipped (with reasons), and builds the
resized caches training reads instead of the original files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from multimix.data.prepare import (
    default_cache_dir,
    format_report,
    prepare_all,
    prepare_source,
    write_skip_report,
)
from multimix.runs.cli import run_main
from multimix.runs.flags import (
    add_debug_flag,
    add_max_megapixels_flag,
    add_progress_flag,
    apply_max_megapixels,
)


def build_parser() -> argparse.ArgumentParser:
    """The command's flags (the command reference of the documentation is generated from it)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True, help="folder holding chex/, jsrt/, ... ")
    parser.add_argument("--sources", help="comma-separated subset (names or folder:PATH); default: all present")
    parser.add_argument("--image-size", type=int, default=256, help="cache resolution in pixels")
    parser.add_argument("--cache-dir", default=None, help=f"where caches go (default {default_cache_dir()})")
    parser.add_argument("--strict", action="store_true", help="fail on the first bad item instead of skipping it")
    add_max_megapixels_flag(parser)
    add_progress_flag(parser)
    add_debug_flag(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.image_size < 16:
        print(f"error: --image-size must be at least 16, got {args.image_size}", file=sys.stderr)
        return 2
    if message := apply_max_megapixels(args):
        print(f"error: {message}", file=sys.stderr)
        return 2
    return run_main(lambda: _prepare(args), debug=args.debug)


def _prepare(args: argparse.Namespace) -> int:
    on_error, progress = "raise" if args.strict else "skip", not args.no_progress
    cache_dir = Path(args.cache_dir or default_cache_dir())
    if args.sources:
        prepared = [
            prepare_source(s.strip(), args.data_root, args.image_size, cache_dir, on_error=on_error, progress=progress)
            for s in args.sources.split(",")
        ]
    else:
        prepared = prepare_all(args.data_root, args.image_size, cache_dir, on_error=on_error, progress=progress)
    print(format_report(prepared))
    skipped = [{"source": p.name, **item} for p in prepared for item in p.summary["skipped_items"]]
    report_path = cache_dir / f"skipped-{args.image_size}px.csv"
    if skipped:
        report = write_skip_report(skipped, report_path)
        print(f"all {len(skipped)} skipped files, with their reasons: {report}")
    else:  # an earlier preparation's list (other data, other files) would describe this one wrongly
        report_path.unlink(missing_ok=True)
    print(f"caches in {cache_dir}")
    return 0
