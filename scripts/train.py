#!/usr/bin/env python
"""Train MultiMix (or one of the paper's baselines) and evaluate it in- and cross-domain.

    python scripts/train.py --seg-labels 10 --cls-labels 100
    python scripts/train.py --config configs/baselines/umtl.yaml --steps 500 --out runs/umtl
    python scripts/train.py --out runs/umtl --resume
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from multimix.config import load_config, parse_overrides
from multimix.engine.trainer import NonFiniteLossError
from multimix.models import available_models
from multimix.training import run_training

# flag -> config key; only flags the user gives override the config file
FLAG_KEYS = {
    "seg_labels": "data.seg_labels",
    "cls_labels": "data.cls_labels",
    "model": "model.name",
    "epochs": "train.epochs",
    "steps": "train.steps",
    "steps_per_epoch": "train.steps_per_epoch",
    "image_size": "data.image_size",
    "batch_size": "data.batch_size",
    "device": "train.device",
    "seed": "train.seed",
    "out": "train.out",
    "lr": "train.lr",
    "precision": "train.precision",
    "init_encoder": "model.init_encoder",
    "num_workers": "data.num_workers",
    "split": "data.split_file",
    "data_root": "data.root",
    "seg_sources": "data.seg_sources",
    "cls_sources": "data.cls_sources",
    "cross_seg_sources": "data.cross_seg_sources",
    "cross_cls_sources": "data.cross_cls_sources",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML config (default: configs/multimix.yaml if present)")
    parser.add_argument("--seg-labels", help="labeled segmentation images: a count, a percentage like 5%%, or 'all'")
    parser.add_argument("--cls-labels", help="labeled classification images: a count, a percentage, or 'all'")
    parser.add_argument("--model", choices=available_models(), help="architecture variant")
    parser.add_argument("--epochs", type=int, help="epochs of --steps-per-epoch steps (validation after each)")
    parser.add_argument("--steps", type=int, help="total optimisation steps (overrides --epochs)")
    parser.add_argument("--steps-per-epoch", type=int, help="steps between validations/checkpoints")
    parser.add_argument("--image-size", type=int, help="square training/evaluation size in pixels")
    parser.add_argument("--batch-size", type=int, help="images per stream per step")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"],
                        help="auto (default): mixed precision on CUDA, fp32 on CPU; bf16 autocast on CPU or GPU; fp16 CUDA only")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--num-workers", type=int, help="data loader worker processes")
    parser.add_argument("--split", help="use this split.json instead of drawing a new one")
    parser.add_argument("--data-root", help="train on the real datasets under DIR (chex/, jsrt/, ...) instead of synthetic data")
    parser.add_argument("--seg-sources", help="segmentation training sources, comma-separated (default jsrt)")
    parser.add_argument("--cls-sources", help="classification training sources (default chex)")
    parser.add_argument("--cross-seg-sources", help="cross-domain segmentation test sources (default montgomery)")
    parser.add_argument("--cross-cls-sources", help="cross-domain classification test sources (default nih)")
    parser.add_argument("--init-encoder", metavar="PATH", help="start the encoder from a scripts/pretrain.py checkpoint (U-Net backbone)")
    parser.add_argument("--out", help="run folder (default runs/<model>-seg<N>-cls<M>-<time>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="any other config value")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.resume and not args.out:
        print("error: --resume needs --out pointing at the run to continue", file=sys.stderr)
        return 2
    config_path = args.config
    if config_path is None:
        default = Path(__file__).resolve().parent.parent / "configs" / "multimix.yaml"
        config_path = default if default.exists() else None
    overrides = {key: getattr(args, flag) for flag, key in FLAG_KEYS.items() if getattr(args, flag) is not None}
    if args.data_root:
        overrides["data.source"] = "real"
    try:
        overrides.update(parse_overrides(args.set))
        if args.resume:
            saved = Path(args.out) / "config.yaml"
            config_path = saved if saved.exists() else config_path
        cfg = load_config(config_path, overrides)
        run_training(cfg, resume=args.resume, progress=not args.no_progress)
    except (ValueError, FileNotFoundError, FileExistsError, NonFiniteLossError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
