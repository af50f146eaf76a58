"""Fine-tune a pretrained network on a label budget (SimCLRv2 stage 2) and evaluate it.

    multimix finetune --pretrained runs/simclr/checkpoints/last.pt --labels 100 --out runs/ft-100
    multimix finetune --pretrained runs/simclr/checkpoints/last.pt --labels 2% --class-weighted
    multimix finetune --labels 100 --out runs/ft-scratch            # same network, random weights
    multimix finetune --pretrained ... --split round1.json          # labels picked by multimix select-labels

The classifier keeps the backbone and the first --from-proj-layer layers of the pretraining
projection head (default 1, SimCLRv2's choice) under a new linear layer; every layer is trained.
Defaults come from configs/finetune.yaml.
"""

from __future__ import annotations

import argparse

from multimix.runs.cli import run_script
from multimix.runs.finetune import run_finetuning
from multimix.runs.flags import add_run_flags
from multimix.runs.folder import fresh_run_path

# flags only this script has -> config key (the shared ones are in multimix.runs.cli)
FLAG_KEYS = {
    "pretrained": "ssl.pretrained",
    "labels": "data.cls_labels",
    "from_proj_layer": "ssl.from_proj_layer",
    "class_weighted": "method.class_weights",
    "split": "data.split_file",
    "backbone": "ssl.backbone",
}


def build_parser() -> argparse.ArgumentParser:
    """The command's flags (the command reference of the documentation is generated from it)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--pretrained", metavar="PATH", help="a multimix pretrain checkpoint (omit to start from random weights)"
    )
    parser.add_argument("--labels", help="labeled classification images: a count (52), a percentage (2%%) or 'all'")
    parser.add_argument(
        "--from-proj-layer", type=int, help="projection-head layers kept under the classifier (0 = backbone features)"
    )
    parser.add_argument(
        "--class-weighted",
        action="store_const",
        const="balanced",
        help="weight the cross-entropy by inverse class frequency of the labeled images",
    )
    parser.add_argument("--split", help="use this split.json (e.g. from multimix select-labels) instead of drawing one")
    parser.add_argument("--backbone", choices=["unet", "resnet18", "resnet50"], help="network without --pretrained")
    add_run_flags(parser, batch_help="labeled images per step per process")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_script(
        args,
        FLAG_KEYS,
        lambda cfg: run_finetuning(cfg, resume=args.resume, progress=not args.no_progress),
        default_out=lambda cfg: str(fresh_run_path(f"finetune-{cfg.data.cls_labels.replace('%', 'pct')}")),
        default_config="finetune",
    )
