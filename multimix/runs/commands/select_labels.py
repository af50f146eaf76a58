"""Pick the next images to label with a trained model (active learning) and write a new split.

    multimix select-labels --checkpoint runs/a/checkpoints/best.pt --k 50 --out splits/round1.json
    multimix select-labels --checkpoint runs/a/checkpoints/best.pt --k 50 --strategy disagreement --views 8
    multimix train --split splits/round1.json --out runs/round1      # train on the grown label set

The pool is the run's unlabeled classification images (its split.json); the new split is the
run's split with the picks moved to the labeled set.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from multimix.data.pools import build_pools
from multimix.models.factory import load_trained_model
from multimix.runs.cli import run_main
from multimix.runs.flags import add_debug_flag, add_device_flag, with_data_root
from multimix.runs.held_out import load_split
from multimix.selection.active import STRATEGIES, select_for_labeling, with_new_labels
from multimix.utils.device import resolve_device


def build_parser() -> argparse.ArgumentParser:
    """The command's flags (the command reference of the documentation is generated from it)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a trained run's checkpoint (a model with a class head)")
    parser.add_argument("--k", type=int, required=True, help="how many images to pick")
    parser.add_argument("--strategy", choices=STRATEGIES, default="entropy")
    parser.add_argument("--views", type=int, default=8, help="augmented views for --strategy disagreement")
    parser.add_argument("--class-balanced", action="store_true", help="an equal share per predicted class")
    parser.add_argument("--data-root", help="real datasets under DIR (default: the data the run used)")
    add_device_flag(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="where to write the new split.json")
    add_debug_flag(parser)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_main(lambda: _select(args), debug=args.debug)


def _select(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    model, cfg = load_trained_model(args.checkpoint, map_location=device)
    if not model.has_cls_head:
        raise ValueError(f"{args.checkpoint}: this model has no class head to rank images with")
    cfg = with_data_root(cfg, args.data_root)
    split = load_split(args.checkpoint, cfg)
    records = build_pools(cfg).by_uid()
    pool = [records[u] for u in split.cls.unlabeled if u in records and u not in set(split.cls.labeled)]
    picks = select_for_labeling(
        lambda x: model.to(device).classify(x).required("cls_logits"),
        pool,
        args.k,
        strategy=args.strategy,
        image_size=cfg.data.image_size,
        intensity=cfg.data.intensity,
        views=args.views,
        class_balanced=args.class_balanced,
        device=device,
        seed=args.seed,
        progress=True,
    )
    new = with_new_labels(split, picks, strategy=args.strategy)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    new.save(args.out)
    print(
        f"picked {len(picks)} of {len(pool)} unlabeled images by {args.strategy}; "
        f"labeled set now {len(new.cls.labeled)}"
    )
    print(f"split written to {args.out}")
    return 0
