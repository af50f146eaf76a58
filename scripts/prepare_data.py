#!/usr/bin/env python
"""Find, validate and cache the chest X-ray datasets under a data root.

    python scripts/prepare_data.py --data-root DIR [--image-size 256] [--cache-dir PATH]

DIR holds one folder per dataset in its publisher's layout: chex/, jsrt/, montgomery/,
shenzhen/, nih/. Prints what was found, used and skipped (with reasons), and builds the
resized caches training reads instead of the original files.
"""

from __future__ import annotations

import argparse
import sys

from multimix.data.io import ImageReadError
from multimix.data.prepare import default_cache_dir, format_report, prepare_all, prepare_source
from multimix.data.sources import DatasetItemError, DatasetLayoutError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True, help="folder holding chex/, jsrt/, ... ")
    parser.add_argument("--sources", help="comma-separated subset (names or folder:PATH); default: all present")
    parser.add_argument("--image-size", type=int, default=256, help="cache resolution in pixels")
    parser.add_argument("--cache-dir", default=None, help=f"where caches go (default {default_cache_dir()})")
    parser.add_argument("--strict", action="store_true", help="fail on the first bad item instead of skipping it")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    kw = dict(on_error="raise" if args.strict else "skip", progress=not args.no_progress)
    cache_dir = args.cache_dir or default_cache_dir()
    try:
        if args.sources:
            prepared = [prepare_source(s.strip(), args.data_root, args.image_size, cache_dir, **kw) for s in args.sources.split(",")]
        else:
            prepared = prepare_all(args.data_root, args.image_size, cache_dir, **kw)
    except (DatasetLayoutError, DatasetItemError, ImageReadError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(format_report(prepared))
    print(f"caches in {cache_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
