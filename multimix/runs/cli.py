"""The ``multimix`` command: its subcommands (:data:`COMMANDS`, in :mod:`multimix.runs.commands`)
and the error policy every subcommand shares (:func:`run_main`). The flags they share and how
flags resolve to a config are in :mod:`multimix.runs.flags`.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
import traceback
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from multimix import __version__
from multimix.config import Config, config_yaml
from multimix.engine.trainer import NonFiniteLossError
from multimix.runs.flags import DEFAULT_CONFIG, resolve_config, usage_error
from multimix.utils.checkpoints import CheckpointError
from multimix.utils.environment import record_command
from multimix.utils.interrupts import interrupted, remembered_interrupts
from multimix.utils.locks import LockedError
from multimix.utils.logging import setup_console_logging
from multimix.utils.registry import Registry

# what the user or the machine caused (bad flags, data, files, devices, full disks): one line each;
# anything else is a bug in multimix and keeps its traceback
EXPECTED_ERRORS = (
    ValueError,
    OSError,
    MemoryError,
    torch.OutOfMemoryError,
    CheckpointError,
    NonFiniteLossError,
    LockedError,
)
_DISK_HINTS = {
    getattr(errno, name): hint
    for name, hint in (
        ("ENOSPC", "no space left on the device"),
        ("EDQUOT", "disk quota exceeded"),
        ("EROFS", "the file system is read-only"),
        ("EACCES", "permission denied"),
        ("EPERM", "operation not permitted"),
    )
    if hasattr(errno, name)
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
        with remembered_interrupts():
            status = body()
            if interrupted():  # swallowed on the way (a finaliser); the command still did not finish
                raise KeyboardInterrupt
        return status
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
        print(
            "error: this is a bug in multimix, not in your input; please report it with the traceback above",
            file=sys.stderr,
        )
        return 1


def run_script(
    args: argparse.Namespace,
    flag_keys: dict[str, str],
    run: Callable[[Config], Any],
    *,
    default_out: Callable[[Config], str] | None = None,
    default_config: str = DEFAULT_CONFIG,
) -> int:
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


class Command(NamedTuple):
    """A subcommand: its module under :mod:`multimix.runs.commands` (imported only when the
    command runs, so ``multimix --help`` is quick and ``serve`` alone needs FastAPI) and what it does."""

    module: str
    about: str


COMMANDS: Registry[Command] = Registry("command")
for _name, _module, _about in (
    ("train", "train", "train MultiMix or a paper baseline and evaluate it in- and cross-domain"),
    ("evaluate", "evaluate", "evaluate checkpoints in- and cross-domain: tables with intervals, figures"),
    ("predict", "predict", "class, lung mask and saliency for image files or folders"),
    ("serve", "serve", "the web app around a checkpoint (needs the serve extra)"),
    ("adapt", "adapt", "label-free operating point for a new hospital from its unlabeled images"),
    ("calibrate", "calibrate", "operating point chosen on a few labeled images of a new hospital"),
    ("card", "card", "a model card (MODEL_CARD.md): what a checkpoint is, how it decides, how well it did"),
    ("export", "export", "an ONNX or TorchScript graph of a trained model, saliency bridge inside"),
    ("prepare-data", "prepare_data", "check and cache the real datasets under a data root"),
    ("pretrain", "pretrain", "SimCLRv2 stage 1: contrastive (SimCLR, Barlow Twins) pretraining"),
    ("finetune", "finetune", "SimCLRv2 stage 2: fine-tune a pretrained encoder on the labeled images"),
    ("distill", "distill", "SimCLRv2 stage 3: distil a teacher into a smaller student"),
    ("select-labels", "select_labels", "active learning: choose the next images to label"),
    ("cv", "cv", "stratified, patient-grouped K-fold cross-validation: one run per fold, one table"),
    ("ablation", "ablation", "the paper's seven models over label budgets and seeds, one table"),
    ("devloop", "devloop", "config variants on real data under one budget, one development table"),
    ("benchmark", "benchmark", "training-step speed: the original-style step against ours"),
):
    COMMANDS.register(_name, Command(_module, _about))


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {command.about}" for name, command in COMMANDS.items()]
    return (
        "usage: multimix COMMAND [flags]   (multimix COMMAND --help lists a command's flags)\n\n"
        "Sparingly supervised multitask learning for chest X-rays.\n\ncommands:\n"
        + "\n".join(lines)
        + f"\n\nmultimix --version prints the version ({__version__})."
    )


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
    module = importlib.import_module(f"multimix.runs.commands.{COMMANDS.get(name).module}")
    record_command(["multimix", *args])  # result files name the command that made them
    program, sys.argv[0] = sys.argv[0], f"multimix {name}"  # argparse names the command in usage lines and errors
    try:
        return int(module.main(rest))
    finally:
        sys.argv[0] = program
