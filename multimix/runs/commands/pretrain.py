"""Self-supervised pretraining (SimCLRv2 stage 1, or Barlow Twins) on every training image.

    multimix pretrain --method simclr --steps 2000 --out runs/simclr
    multimix pretrain --method barlow --backbone resnet18 --data-root /data/cxr
    multimix pretrain --out runs/simclr --resume
    multimix train --init-encoder runs/simclr/checkpoints/last.pt      # then start MultiMix from it

Labels are never used by the loss; an online linear probe on detached features reports the
representation's accuracy on the validation images after every epoch.
"""

from __future__ import annotations

import argparse

from multimix.methods import available_methods
from multimix.runs.cli import run_script
from multimix.runs.flags import add_run_flags
from multimix.runs.folder import fresh_run_path
from multimix.runs.pretrain import run_pretraining

# flags only this script has -> config key (the shared ones are in multimix.runs.cli)
FLAG_KEYS = {
    "method": "ssl.method",
    "backbone": "ssl.backbone",
    "width_multiplier": "ssl.width_multiplier",
    "temperature": "ssl.temperature",
    "unlabeled_sources": "data.unlabeled_sources",
}


def build_parser() -> argparse.ArgumentParser:
    """The command's flags (the command reference of the documentation is generated from it)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", choices=available_methods(pretraining=True), help="stage-1 method (default simclr)")
    parser.add_argument(
        "--backbone", choices=["unet", "resnet18", "resnet50"], help="unet = the MultiMix encoder (default)"
    )
    parser.add_argument("--width-multiplier", type=float, help="ResNet width multiplier")
    parser.add_argument("--temperature", type=float, help="NT-Xent temperature (default 0.1)")
    parser.add_argument(
        "--unlabeled-sources",
        help="more sources whose pixels join pretraining (labels never read), e.g. nih: a target hospital",
    )
    add_run_flags(parser, batch_help="images per step (two views each) per process")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_script(
        args,
        FLAG_KEYS,
        lambda cfg: run_pretraining(cfg, resume=args.resume, progress=not args.no_progress),
        default_out=lambda cfg: str(fresh_run_path(f"pretrain-{cfg.ssl.method}")),
    )
