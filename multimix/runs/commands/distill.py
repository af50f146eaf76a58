"""Distil a trained classifier into a smaller student on unlabeled images (SimCLRv2 stage 3).

    multimix distill --teacher runs/ft-100/checkpoints/best.pt --out runs/student
    multimix distill --teacher runs/ft-100/checkpoints/best.pt --student resnet18 --temperature 2
    multimix distill --teacher runs/main-job/checkpoints/best.pt --labeled-weight 0.5   # a MultiMix teacher

The student sees every training image with the teacher's softened predictions as its target
(loss T^2 * KL); --labeled-weight adds the cross-entropy on the teacher run's labeled images.
The teacher run's split.json is reused, so both are tested on the same images; summary.json
lists the teacher's numbers and both parameter counts. Defaults come from configs/distill.yaml.
"""

from __future__ import annotations

import argparse

from multimix.runs.cli import run_script
from multimix.runs.distill import run_distillation
from multimix.runs.flags import add_run_flags
from multimix.runs.folder import fresh_run_path

# flags only this script has -> config key (the shared ones are in multimix.runs.cli)
FLAG_KEYS = {
    "teacher": "distill.teacher",
    "student": "distill.backbone",
    "student_widths": "distill.widths",
    "width_multiplier": "distill.width_multiplier",
    "temperature": "distill.temperature",
    "labeled_weight": "distill.labeled_weight",
}


def build_parser() -> argparse.ArgumentParser:
    """The command's flags (the command reference of the documentation is generated from it)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", metavar="PATH", help="a trained checkpoint with a class head (required)")
    parser.add_argument("--student", choices=["unet", "resnet18", "resnet50"], help="student backbone (default unet)")
    parser.add_argument("--student-widths", help="U-Net student widths, e.g. 8,16,32,64 (default: half the model's)")
    parser.add_argument("--width-multiplier", type=float, help="ResNet student width multiplier")
    parser.add_argument("--temperature", type=float, help="softening temperature T (default 1)")
    parser.add_argument(
        "--labeled-weight", type=float, help="weight of the labeled cross-entropy (default 0: unlabeled only)"
    )
    add_run_flags(parser, batch_help="unlabeled images per step per process")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_script(
        args,
        FLAG_KEYS,
        lambda cfg: run_distillation(cfg, resume=args.resume, progress=not args.no_progress),
        default_out=lambda cfg: str(fresh_run_path(f"distill-{cfg.distill.backbone}")),
        default_config="distill",
    )
