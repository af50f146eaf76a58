"""Building a config: YAML files (``extends`` layers them), packaged configs by name, and
command-line overrides, each value coerced to its field's type and range-checked.

A config is built in three layers, later ones winning: the defaults of
:mod:`multimix.config.schema`, a YAML file (``--config``: a path, or the name of a packaged
config such as ``real`` or ``baselines/umtl``), then command-line overrides (dedicated flags and
``--set section.key=value``). The fully resolved result is written next to every run as
``config.yaml``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import yaml

from multimix.config.schema import CLS_INPUTS, SELECT_BY, Config, apply_mapping, set_value
from multimix.utils.atomic import atomic_write_text


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``["train.lr=1e-3", ...]`` -> ``{"train.lr": "1e-3"}``; malformed items raise ``ValueError``."""
    parsed: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects section.key=value, got {item!r}")
        parsed[key.strip()] = value.strip()
    return parsed


PACKAGED_CONFIGS = Path(__file__).resolve().parent / "yaml"  # installed with the package


def packaged_config_names() -> list[str]:
    """Names ``--config`` accepts for the configs shipped with the package (``real``, ``baselines/umtl``...)."""
    return sorted(p.relative_to(PACKAGED_CONFIGS).with_suffix("").as_posix() for p in PACKAGED_CONFIGS.rglob("*.yaml"))


def find_config(spec: str | os.PathLike) -> Path:
    """The YAML file ``spec`` names: an existing file as it is; else a packaged config by name
    (``real``, ``umtl``, ``baselines/umtl``), also as the checkout path of older commands
    (``configs/baselines/umtl.yaml``).

    Raises:
        FileNotFoundError: neither a file nor a packaged config; the message lists the names.
    """
    path = Path(spec)
    if path.is_file():
        return path
    if (packaged := packaged_config(spec)) is not None:
        return packaged
    raise FileNotFoundError(
        f"config file not found: {spec} (and no packaged config of that name; "
        f"packaged: {', '.join(packaged_config_names())})"
    )


def packaged_config(spec: str | os.PathLike) -> Path | None:
    """The packaged config ``spec`` names (``real``, ``umtl``, ``baselines/umtl``,
    ``configs/baselines/umtl.yaml``), or ``None``."""
    name = Path(spec).as_posix().removesuffix(".yaml").removeprefix("./").removeprefix("configs/")
    candidates = [PACKAGED_CONFIGS / f"{name}.yaml", *sorted(PACKAGED_CONFIGS.glob(f"*/{name}.yaml"))]
    return next((c for c in candidates if c.is_file()), None)


def load_config(path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the YAML file ``path`` (a file or a packaged config's name, see
    :func:`find_config`; ``extends: other.yaml`` layers files), then ``overrides``."""
    config = Config()
    if path is not None:
        for layer_path, data in _yaml_layers(find_config(path)):
            apply_mapping(config, data, origin=str(layer_path))
    for key, value in (overrides or {}).items():
        set_value(config, key, value)
    validate_ranges(config)
    return config


MAX_IMAGE_SIZE = 2048  # the largest radiographs (JSRT) at full resolution; far above any trained size
LOSS_WEIGHTS = (
    "dice_weight",
    "ce_weight",
    "fixmatch_weight",
    "kl_weight",
    "lung_weight",
    "domain_weight",
    "mask_pseudo_weight",
)
MAX_SEED = 2**32 - 1  # numpy's generators take seeds in [0, 2**32)
# key -> (lowest, highest) allowed value, bounds included; None = unbounded
RANGES: dict[str, tuple[float | None, float | None]] = {
    "data.batch_size": (1, None),
    "data.image_size": (16, MAX_IMAGE_SIZE),
    "data.num_workers": (0, None),
    "data.strong_ops": (0, None),
    "data.seg_zoom_out": (0, 0.9),
    "model.crop_margin": (0, 0.9),
    "train.steps": (1, None),
    "train.seed": (0, MAX_SEED),
    "train.epochs": (1, None),
    "train.steps_per_epoch": (1, None),
    "train.eval_batch_size": (1, None),
    "train.log_every": (1, None),
    "train.warmup_steps": (0, None),
    "train.lr": (1e-12, None),
    "real.max_megapixels": (1e-3, None),
    "train.grad_clip": (0, None),
    "method.threshold": (0, 1),
    "method.supervised_warmup_steps": (0, None),
    "method.ssl_rampup_steps": (0, None),
    "inference.seg_threshold": (0, 1),
    "train.weight_decay": (0, None),
    "train.ema_decay": (0, 1),
    "model.dropout": (0, 0.99),
    "model.in_channels": (1, None),
    "model.num_classes": (2, None),
    "model.seg_channels": (1, None),
    **{f"method.{name}": (0, None) for name in LOSS_WEIGHTS},
    "distill.labeled_weight": (0, None),
    "distill.temperature": (1e-6, None),
    "ssl.temperature": (1e-6, None),
    "ssl.width_multiplier": (1e-3, None),
    "ssl.crop_scale_min": (1e-3, 1),
    "ssl.proj_depth": (1, None),
    "ssl.proj_dim": (1, None),
    "synthetic.pneumonia_fraction": (0, 1),
    "real.val_fraction": (0, 1),
    "real.test_fraction": (0, 1),
}
# lists of channel or unit counts: every entry a whole number of at least 1
POSITIVE_LISTS = ("model.widths", "distill.widths", "ssl.barlow_dims")


# key -> allowed values, for settings read only deep inside a run (a typo fails before it starts)
CHOICES: dict[str, tuple[str, ...]] = {
    "train.select_by": SELECT_BY,
    "model.cls_input": CLS_INPUTS,
}


def validate_ranges(config: Config) -> None:
    """Reject values no run can use (``--batch-size 0``, ``--steps 0``, a learning rate of 0, a
    NaN or infinite number anywhere, a negative loss weight, a channel count of 0) before
    anything is built; the ``ValueError`` names the key and the allowed range."""
    _check_finite(config)
    _check_positive_lists(config)
    for key, (low, high) in RANGES.items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if value is None or ((low is None or value >= low) and (high is None or value <= high)):
            continue
        allowed = f"at least {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{key} must be {'above 0' if key == 'train.lr' else allowed}, got {value}")
    for key, choices in CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if value not in choices:
            raise ValueError(f"{key} must be one of {', '.join(choices)}, got {value!r}")


def _check_finite(config: Config) -> None:
    for section in dataclasses.fields(config):
        for item in dataclasses.fields(getattr(config, section.name)):
            value = getattr(getattr(config, section.name), item.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{section.name}.{item.name} must be a finite number, got {value}")


def _check_positive_lists(config: Config) -> None:
    for key in POSITIVE_LISTS:
        section, name = key.split(".")
        values = getattr(getattr(config, section), name)
        if values is not None and (not values or any(v < 1 for v in values)):
            raise ValueError(f"{key} must list whole numbers of at least 1, got {values}")


def _yaml_layers(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[Path, dict[str, Any]]]:
    """The YAML file at ``path`` preceded by the files it ``extends`` (paths relative to it, or
    a packaged config's name)."""
    if path.resolve() in seen:
        raise ValueError(f"{path}: 'extends' forms a cycle")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of sections")
    parent = data.pop("extends", None)
    if parent:
        # beside the file, else packaged; never the working folder, which says nothing of this file
        beside = path.parent / parent
        target = beside if beside.is_file() else packaged_config(parent)
        if target is None:
            raise FileNotFoundError(f"{path}: extends {parent!r}, which is neither beside it nor a packaged config")
        layers = _yaml_layers(target, (*seen, path.resolve()))
    else:
        layers = []
    return [*layers, (path, data)]


def config_yaml(config: Config) -> str:
    """The config as the YAML text a run folder's ``config.yaml`` holds."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


def save_config(config: Config, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML, atomically."""
    atomic_write_text(Path(path), config_yaml(config))
