"""The ``multimix`` command: its subcommands (:data:`COMMANDS`, in :mod:`multimix.runs.commands`),
the flags the run-launching ones share (train, pretrain, finetune, distill) and config resolution.

A flag overrides its config key only when the user gives it, so a YAML file stays the source
of every value the command line leaves alone.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from multimix import __version__
from multimix.config import Config, config_yaml, load_config, parse_overrides
from multimix.engine.trainer import NonFiniteLossError
from multimix.utils.checkpoints import CheckpointError
from multimix.utils.locks import LockedError
from multimix.utils.logging import setup_console_logging

# what the user or the machine caused (bad flags, data, files, devices, full disks): one line each;
# anything else is a bug in multimix and keeps its traceback
EXPECTED_ERRORS = (ValueError, OSError, MemoryError, torch.OutOfMemoryError, CheckpointError, NonFiniteLossError, LockedError)
_DISK_HINTS = {
    getattr(errno, name): hint for name, hint in (
        ("ENOSPC", "no space left on the device"),
        ("EDQUOT", "disk quota exceeded"),
        ("EROFS", "the file system is read-only"),
        ("EACCES", "permission denied"),
        ("EPERM", "operation not permitted"),
    ) if hasattr(errno, name)
}


def describe_error(err: BaseException) -> str:
    """One line for an expected failure: the message, or for a file-system error what failed where."""
    if isinstance(err, (MemoryError, torch.OutOfMemoryError)):
        return "out of memory; lower --batch-size, --image-size or data.num_workers"
    if isinstance(err, OSError) and err.errno is not None and err.strerror:
        reason = _DISK_HINTS.get(err.errno, err.strerror.lower())
        where = f"{err.filename}: " if err.filename else ""
        return f"{where}{reason}"
    return str(err)


def run_main(body: Callable[[], int], *, debug: bool = False) -> int:
    """Run a script's ``body``; an expected failure prints ``error: <cause>`` and returns 1
    (``debug`` re-raises it with its traceback); Ctrl-C returns 130."""
    setup_console_logging()
    try:
        return body()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except EXPECTED_ERRORS as err:
        if debug:
            raise
        print(f"error: {describe_error(err)}", file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        print("error: this is a bug in multimix, not in your input; please report it with the traceback above",
              file=sys.stderr)
        return 1


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")

# flag -> config key, for flags both scripts accept
RUN_FLAG_KEYS = {
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
    "data_root": "real.root",
    "seg_sources": "real.seg_sources",
    "cls_sources": "real.cls_sources",
    "out": "train.out",
}
DEFAULT_CONFIG = "multimix"  # packaged configs, by name (multimix/config/yaml/)
REAL_DATA_CONFIG = "real"  # the default whenever --data-root is given


def add_run_flags(parser: argparse.ArgumentParser, *, batch_help: str) -> None:
    """The flags of :data:`RUN_FLAG_KEYS` plus ``--config``, ``--resume``, ``--set``, ``--no-progress``."""
    parser.add_argument("--config", help="a YAML file, or a packaged config by name: multimix (default), real (default "
                        "with --data-root), paper, finetune, distill, baselines/unet ... baselines/umtls_ssl")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    parser.add_argument("--epochs", type=int, help="epochs of --steps-per-epoch steps (validation after each)")
    parser.add_argument("--steps", type=int, help="total optimisation steps (overrides --epochs)")
    parser.add_argument("--steps-per-epoch", type=int, help="steps between validations/checkpoints")
    parser.add_argument("--image-size", type=int, help="square training/evaluation size in pixels")
    parser.add_argument("--batch-size", type=int, help=batch_help)
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"],
                        help="auto (default): mixed precision on CUDA; on CPU bf16 where it is native and faster, else fp32; bf16 autocast on CPU or GPU (warns where the CPU emulates it); fp16 CUDA only")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--num-workers", type=int, help="data loader worker processes")
    parser.add_argument("--data-root", help="the real datasets under DIR (chex/, jsrt/, ...) instead of synthetic data")
    parser.add_argument("--seg-sources", help="segmentation training sources, comma-separated (default jsrt)")
    parser.add_argument("--cls-sources", help="classification training sources (default chex)")
    parser.add_argument("--out", help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="any other config value")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_debug_flag(parser)


def usage_error(args: argparse.Namespace) -> str | None:
    """A flag combination that cannot work (the scripts exit with status 2 on it), or ``None``."""
    if args.resume and not args.out:
        return "--resume needs --out pointing at the run to continue"
    return None


def resolve_config(args: argparse.Namespace, flag_keys: dict[str, str], default_config: str = DEFAULT_CONFIG) -> Config:
    """Config file (the run's own ``config.yaml`` when resuming, else ``--config``, else the
    packaged ``real`` config when ``--data-root`` is given and ``default_config`` is the library's
    default, else ``default_config``), then the given flags, then ``--set``.

    Raises:
        ValueError: on a bad value.
    """
    if args.data_root and default_config == DEFAULT_CONFIG:
        default_config = REAL_DATA_CONFIG
    config_path: str | Path = args.config or default_config
    if args.resume and (Path(args.out) / "config.yaml").exists():
        config_path = Path(args.out) / "config.yaml"
    keys = {**RUN_FLAG_KEYS, **flag_keys}
    overrides = {key: getattr(args, flag) for flag, key in keys.items() if getattr(args, flag) is not None}
    if args.data_root:
        overrides["data.source"] = "real"
        # absolute, so the run's config.yaml still finds the data from another working folder
        overrides["real.root"] = str(Path(args.data_root).expanduser().resolve())
    overrides.update(parse_overrides(args.set))
    return load_config(config_path, overrides)


def run_script(args: argparse.Namespace, flag_keys: dict[str, str], run: Callable[[Config], Any],
               *, default_out: Callable[[Config], str] | None = None, default_config: str = DEFAULT_CONFIG) -> int:
    """Resolve the config and ``run`` it; expected failures print one ``error:`` line.

    Returns the exit status: 0 done, 1 failed (bad config, data or a non-finite loss), 2 misuse.
    """
    if message := usage_error(args):
        print(f"error: {message}", file=sys.stderr)
        return 2

    def body() -> int:
        cfg = resolve_config(args, flag_keys, default_config)
        if getattr(args, "print_config", False):
            print(config_yaml(cfg), end="")
            return 0
        if default_out is not None and not cfg.train.out:
            cfg.train.out = default_out(cfg)
        run(cfg)
        return 0

    return run_main(body, debug=getattr(args, "debug", False))


# subcommand -> (module under multimix.runs.commands, what it does); modules are imported only
# when their command runs, so `multimix --help` is quick and `serve` alone needs FastAPI
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("train", "train MultiMix or a paper baseline and evaluate it in- and cross-domain"),
    "evaluate": ("evaluate", "evaluate checkpoints in- and cross-domain: tables with intervals, figures"),
    "predict": ("predict", "class, lung mask and saliency for image files or folders"),
    "serve": ("serve", "the web app around a checkpoint (needs the serve extra)"),
    "adapt": ("adapt", "label-free operating point for a new hospital from its unlabeled images"),
    "calibrate": ("calibrate", "operating point chosen on a few labeled images of a new hospital"),
    "prepare-data": ("prepare_data", "check and cache the real datasets under a data root"),
    "pretrain": ("pretrain", "SimCLRv2 stage 1: contrastive (SimCLR, Barlow Twins) pretraining"),
    "finetune": ("finetune", "SimCLRv2 stage 2: fine-tune a pretrained encoder on the labeled images"),
    "distill": ("distill", "SimCLRv2 stage 3: distil a teacher into a smaller student"),
    "select-labels": ("select_labels", "active learning: choose the next images to label"),
    "ablation": ("ablation", "the paper's seven models over label budgets and seeds, one table"),
    "devloop": ("devloop", "config variants on real data under one budget, one development table"),
    "benchmark": ("benchmark", "training-step speed: the original-style step against ours"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {about}" for name, (_, about) in COMMANDS.items()]
    return ("usage: multimix COMMAND [flags]   (multimix COMMAND --help lists a command's flags)\n\n"
            "Sparingly supervised multitask learning for chest X-rays.\n\ncommands:\n" + "\n".join(lines)
            + f"\n\nmultimix --version prints the version ({__version__}).")


def main(argv: list[str] | None = None) -> int:
    """The ``multimix`` command: ``multimix COMMAND [flags]``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    if args[0] == "--version":
        print(f"multimix {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"multimix.runs.commands.{COMMANDS[name][0]}")
    program, sys.argv[0] = sys.argv[0], f"multimix {name}"  # argparse names the command in usage lines and errors
    try:
        return int(module.main(rest))
    finally:
        sys.argv[0] = program
