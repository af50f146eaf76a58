"""The flags the subcommands share, and the one way a command's flags resolve to a config.

A flag overrides its config key only when the user gives it, so a YAML file stays the source
of every value the command line leaves alone. Every command that builds a config from flags
(train, pretrain, finetune, distill, devloop, ablation, select-labels) goes through
:func:`config_source` and :func:`resolve_config`: ``--config`` (a YAML file or a packaged name,
with ``extends:``), else the packaged ``real`` config when ``--data-root`` is given, else the
command's default; then the flags; then ``--set``.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

from multimix.config import Config, load_config, parse_overrides
from multimix.config.schema import set_value
from multimix.data.pixels import DEFAULT_MAX_MEGAPIXELS, set_max_megapixels

# flag -> config key, for the flags of add_run_flags
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
CONFIG_HELP = (
    "a YAML file, or a packaged config by name: multimix (default), real (default with --data-root), "
    "paper, finetune, distill, baselines/unet ... baselines/umtls_ssl"
)


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    """``--debug``: show the traceback of an expected error too."""
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")


def add_force_flag(parser: argparse.ArgumentParser) -> None:
    """``--force``: let ``--out`` replace an existing checkpoint (never the command's input)."""
    parser.add_argument(
        "--force", action="store_true", help="replace --out even if it is an existing checkpoint (never the input)"
    )


def add_device_flag(parser: argparse.ArgumentParser, *, default: str | None = "auto") -> None:
    """``--device`` (``None`` default: leave the config's ``train.device``)."""
    parser.add_argument(
        "--device", default=default, help="auto, cpu, cuda or cuda:N" + (f" (default {default})" if default else "")
    )


def add_progress_flag(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``: no progress bars (logs and batch jobs)."""
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_max_megapixels_flag(parser: argparse.ArgumentParser, *, refused: str = "skip images") -> None:
    """``--max-megapixels``: the pixel-bomb limit of every image read (see :func:`apply_max_megapixels`);
    ``refused`` says what happens to a larger image."""
    parser.add_argument(
        "--max-megapixels",
        type=float,
        default=DEFAULT_MAX_MEGAPIXELS,
        help=f"{refused} declaring more pixels, checked before decoding (default {DEFAULT_MAX_MEGAPIXELS:g})",
    )


def apply_max_megapixels(args: argparse.Namespace) -> str | None:
    """Set the limit of ``--max-megapixels``; the usage error for a limit that cannot work, else ``None``."""
    if not args.max_megapixels > 0:  # also refuses nan
        return f"--max-megapixels must be above 0, got {args.max_megapixels}"
    set_max_megapixels(args.max_megapixels)
    return None


def add_run_flags(parser: argparse.ArgumentParser, *, batch_help: str) -> None:
    """The flags of :data:`RUN_FLAG_KEYS` plus ``--config``, ``--print-config``, ``--resume``,
    ``--set``, ``--no-progress`` and ``--debug``."""
    parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    parser.add_argument("--epochs", type=int, help="epochs of --steps-per-epoch steps (validation after each)")
    parser.add_argument("--steps", type=int, help="total optimisation steps (overrides --epochs)")
    parser.add_argument("--steps-per-epoch", type=int, help="steps between validations/checkpoints")
    parser.add_argument("--image-size", type=int, help="square training/evaluation size in pixels")
    parser.add_argument("--batch-size", type=int, help=batch_help)
    parser.add_argument("--lr", type=float, help="peak learning rate")
    add_device_flag(parser, default=None)
    parser.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        help="auto (default): mixed precision on CUDA; on CPU bf16 where it is native and faster, else fp32; "
        "bf16 autocast on CPU or GPU (warns where the CPU emulates it); fp16 CUDA only",
    )
    parser.add_argument("--seed", type=int)
    parser.add_argument("--num-workers", type=int, help="data loader worker processes")
    parser.add_argument("--data-root", help="the real datasets under DIR (chex/, jsrt/, ...) instead of synthetic data")
    parser.add_argument("--seg-sources", help="segmentation training sources, comma-separated (default jsrt)")
    parser.add_argument("--cls-sources", help="classification training sources (default chex)")
    parser.add_argument("--out", help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="any other config value"
    )
    add_progress_flag(parser)
    add_debug_flag(parser)


def usage_error(args: argparse.Namespace) -> str | None:
    """A flag combination that cannot work (the scripts exit with status 2 on it), or ``None``."""
    if args.resume and not args.out:
        return "--resume needs --out pointing at the run to continue"
    return None


def config_source(
    config: str | Path | None,
    data_root: str | Path | bool | None,
    default: str = DEFAULT_CONFIG,
    *,
    real_default: str | None = REAL_DATA_CONFIG,
) -> str | Path:
    """The config a command starts from: ``config`` (a YAML file or a packaged name), else
    ``real_default`` when ``data_root`` is given or true (real data asked for; ``None``: the
    command keeps ``default`` on real data too), else ``default``."""
    if config:
        return config
    if data_root and real_default is not None:
        return real_default
    return default


def data_root_overrides(data_root: str | Path | None) -> dict[str, Any]:
    """The config values ``--data-root`` sets: real data under it (absolute, so a run's
    ``config.yaml`` still finds the data from another working folder)."""
    if not data_root:
        return {}
    return {"data.source": "real", "real.root": str(Path(data_root).expanduser().resolve())}


def wants_real_data(args: argparse.Namespace) -> bool:
    """Real data: ``--data-root``, or training sources named on the command line (a user's
    ``csv:``/``folder:`` sources are never silently replaced by the synthetic generator)."""
    return any(getattr(args, flag, None) for flag in ("data_root", "seg_sources", "cls_sources"))


def absolute_source(spec: str) -> str:
    """``folder:PATH`` / ``csv:PATH[#map]`` with an absolute path (a run's ``config.yaml`` then
    finds the data from any working folder); dataset names unchanged."""
    for prefix in ("folder:", "csv:"):
        if spec.startswith(prefix):
            path, hash_, mapping = spec[len(prefix) :].partition("#")
            return f"{prefix}{Path(path).expanduser().resolve()}{hash_}{mapping}"
    return spec


def source_list(value: str) -> list[str]:
    """A comma-separated ``--seg-sources`` / ``--cls-sources`` value as absolute source specs."""
    return [absolute_source(s.strip()) for s in value.split(",") if s.strip()]


def flag_overrides(args: argparse.Namespace, flag_keys: dict[str, str]) -> dict[str, Any]:
    """Config values of the flags in ``flag_keys`` the user gave, then ``--data-root``, then ``--set``."""
    overrides = {key: getattr(args, flag) for flag, key in flag_keys.items() if getattr(args, flag, None) is not None}
    for flag in ("seg_sources", "cls_sources"):
        if flag in flag_keys and getattr(args, flag, None):
            overrides[flag_keys[flag]] = source_list(getattr(args, flag))
    if wants_real_data(args):
        overrides["data.source"] = "real"
    overrides.update(data_root_overrides(getattr(args, "data_root", None)))
    overrides.update(parse_overrides(getattr(args, "set", None) or []))
    return overrides


def resolve_config(args: argparse.Namespace, flag_keys: dict[str, str], default_config: str = DEFAULT_CONFIG) -> Config:
    """The config of a run-launching command: the run's own ``config.yaml`` when resuming, else
    :func:`config_source`; then the flags of :data:`RUN_FLAG_KEYS` and ``flag_keys``, then ``--set``.

    Raises:
        ValueError: on a bad value.
    """
    source = config_source(
        args.config,
        wants_real_data(args),
        default_config,
        real_default=REAL_DATA_CONFIG if default_config == DEFAULT_CONFIG else None,
    )
    if args.resume and (Path(args.out) / "config.yaml").exists():
        source = Path(args.out) / "config.yaml"
    return load_config(source, flag_overrides(args, {**RUN_FLAG_KEYS, **flag_keys}))


def with_data_root(cfg: Config, data_root: str | Path | None) -> Config:
    """A copy of a trained run's ``cfg`` that reads the real data under ``data_root`` (``cfg``
    itself when there is none): how evaluate, select-labels and the operating-point commands
    point a checkpoint at data on another disk."""
    if not data_root:
        return cfg
    cfg = copy.deepcopy(cfg)
    for key, value in data_root_overrides(data_root).items():
        set_value(cfg, key, value, origin="--data-root")
    return cfg
