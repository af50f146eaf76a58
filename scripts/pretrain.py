#!/usr/bin/env python
"""Self-supervised pretraining (SimCLRv2 stage 1, or Barlow Twins) on every training image.

    python scripts/pretrain.py --method simclr --steps 2000 --out runs/simclr
    python scripts/pretrain.py --method barlow --backbone resnet18 --data-root /data/cxr
    python scripts/pretrain.py --out runs/simclr --resume
    python scripts/train.py --init-encoder runs/simclr/checkpoints/last.pt      # then start MultiMix from it

Labels are never used by the loss; an online linear probe on detached features reports the
representation's accuracy on the validation images after every epoch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from multimix.config import load_config, parse_overrides
from multimix.engine.trainer import NonFiniteLossError
from multimix.pretraining import run_pretraining

FLAG_KEYS = {
    "method": "ssl.method",
    "backbone": "ssl.backbone",
    "width_multiplier": "ssl.width_multiplier",
    "temperature": "ssl.temperature",
    "epochs": "train.epochs",
    "steps": "train.steps",
    "steps_per_epoch": "train.steps_per_epoch",
    "image_size": "data.image_size",
    "batch_size": "data.batch_size",
    "lr": "train.lr",
    "device": "train.device",
    "precision": "train.precision",
    "seed": "train.seed",
    "num_workers": "data.num_workers",
    "data_root": "data.root",
    "seg_sources": "data.seg_sources",
    "cls_sources": "data.cls_sources",
    "out": "train.out",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML config (default: configs/multimix.yaml; the ssl: section)")
    parser.add_argument("--method", choices=["simclr", "barlow"])
    parser.add_argument("--backbone", choices=["unet", "resnet18", "resnet50"], help="unet = the MultiMix encoder (default)")
    parser.add_argument("--width-multiplier", type=float, help="ResNet width multiplier")
    parser.add_argument("--temperature", type=float, help="NT-Xent temperature (default 0.1)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--steps-per-epoch", type=int)
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--batch-size", type=int, help="images per step (two views each) per process")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--device")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"])
    parser.add_argument("--seed", type=int)
    parser.add_argument("--num-workers", type=int)
    parser.add_argument("--data-root", help="real datasets under DIR instead of synthetic data")
    parser.add_argument("--seg-sources")
    parser.add_argument("--cls-sources")
    parser.add_argument("--out", help="run folder (default runs/pretrain-<method>-<time>)")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.resume and not args.out:
        print("error: --resume needs --out pointing at the run to continue", file=sys.stderr)
        return 2
    default = Path(__file__).resolve().parent.parent / "configs" / "multimix.yaml"
    config_path = args.config or (default if default.exists() else None)
    overrides = {key: getattr(args, flag) for flag, key in FLAG_KEYS.items() if getattr(args, flag) is not None}
    if args.data_root:
        overrides["data.source"] = "real"
    try:
        overrides.update(parse_overrides(args.set))
        if args.resume and (Path(args.out) / "config.yaml").exists():
            config_path = Path(args.out) / "config.yaml"
        cfg = load_config(config_path, overrides)
        if not cfg.train.out:
            cfg.train.out = str(Path("runs") / f"pretrain-{cfg.ssl.method}-{time.strftime('%Y%m%d-%H%M%S')}")
        run_pretraining(cfg, resume=args.resume, progress=not args.no_progress)
    except (ValueError, FileNotFoundError, FileExistsError, NonFiniteLossError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
