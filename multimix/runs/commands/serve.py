"""Serve a trained checkpoint in the web app.

multimix serve --checkpoint runs/a/checkpoints/best.pt [--host 127.0.0.1 --port 8080]
"""

from __future__ import annotations

import argparse
import sys

from multimix.data.pools import build_pools
from multimix.runs.flags import add_device_flag, add_max_megapixels_flag, apply_max_megapixels
from multimix.utils.logging import setup_console_logging


def build_parser() -> argparse.ArgumentParser:
    """The command's flags (the command reference of the documentation is generated from it)."""
    parser = argparse.ArgumentParser(
        description=(
            "Serve a trained checkpoint: an upload page and a JSON API (OpenAPI at /docs). "
            "Research use only, not a diagnosis."
        )
    )
    parser.add_argument("--checkpoint", required=True, help="a run's best.pt or last.pt")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--max-upload-mb", type=float, default=20.0, help="largest accepted upload (default 20 MB)")
    parser.add_argument(
        "--reference",
        type=int,
        default=300,
        help="training images on the reference map (0: no map; needs the run's data)",
    )
    add_device_flag(parser)
    parser.add_argument(
        "--class-threshold",
        type=float,
        help="call pneumonia when p(pneumonia) >= this (default: the checkpoint's operating point)",
    )
    add_max_megapixels_flag(parser, refused="refuse (413) images")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_console_logging()
    if args.class_threshold is not None and not 0 < args.class_threshold < 1:
        print("error: --class-threshold must be between 0 and 1", file=sys.stderr)
        return 2
    if message := apply_max_megapixels(args):
        print(f"error: {message}", file=sys.stderr)
        return 2
    try:
        import uvicorn

        from multimix.serve.app import create_app
    except ImportError as err:
        print(f'error: the web app needs the serve extra (pip install -e ".[serve]"): {err}', file=sys.stderr)
        return 1
    from multimix.prediction import Predictor
    from multimix.serve.reference import reference_from_records
    from multimix.utils.checkpoints import CheckpointError

    try:
        predictor = Predictor(args.checkpoint, device=args.device, class_threshold=args.class_threshold)
    except (ValueError, FileNotFoundError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    reference = None
    if args.reference > 0:
        try:
            cfg = predictor.config  # synthetic data is regenerated; real data must be where the run's config says
            reference = reference_from_records(predictor, build_pools(cfg).cls_pool, args.reference)
            print(f"reference map: {len(reference.points)} training images")
        except (ValueError, FileNotFoundError, OSError) as err:
            print(f"warning: no reference map ({err}); predictions still work", file=sys.stderr)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: serving on {args.host}: reachable from other machines; there is no authentication",
            file=sys.stderr,
        )
    uvicorn.run(
        create_app(predictor, reference=reference, max_upload_mb=args.max_upload_mb), host=args.host, port=args.port
    )
    return 0
