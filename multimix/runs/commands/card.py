"""Write a model card (MODEL_CARD.md) for a trained checkpoint.

    multimix card --checkpoint runs/a/checkpoints/best.pt            # runs/a/MODEL_CARD.md
    multimix card --checkpoint adapted.pt --out cards/site-b.md

What the network is, its classes and decision threshold (and how that threshold was chosen),
preprocessing, training data with counts and label budgets, validation and held-out metrics
(with 95% intervals once `multimix evaluate` has written <run>/evaluation), library version and
commit, intended use and limits. Every training run writes one when it ends.
"""

from __future__ import annotations

import argparse

from multimix.runs.cli import run_main
from multimix.runs.flags import add_debug_flag, add_force_flag
from multimix.runs.model_card import write_card


def build_parser() -> argparse.ArgumentParser:
    """The command's flags (the command reference of the documentation is generated from it)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a run's best.pt or last.pt (or an adapted copy)")
    parser.add_argument("--out", help="where to write the card (default: MODEL_CARD.md in the run folder)")
    add_force_flag(parser)
    add_debug_flag(parser)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        print(f"model card: {write_card(args.checkpoint, args.out, force=args.force)}")
        return 0

    return run_main(body, debug=args.debug)
