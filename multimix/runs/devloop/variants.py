"""The variants file of the development loop: named config overrides, their run folders and configs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from multimix.config import Config, load_config

SCORES_OF = "scores_of"  # variants-file key: score another variant's runs with other inference settings


@dataclass(frozen=True)
class Variant:
    """One row of the development table: a name and the config overrides that make it.

    A variant with ``scores_of`` trains nothing of its own: it scores the runs of that variant
    (whose ``overrides`` are then ``trains_with``) with its own ``inference.*`` overrides, so
    evaluation-time choices (test-time flips, mask clean-up) are paired on the very same weights."""

    name: str
    overrides: dict[str, Any]
    scores_of: str | None = None
    trains_with: dict[str, Any] | None = None

    @property
    def trained_as(self) -> str:
        """The variant whose run folders this row reads."""
        return self.scores_of or self.name


def load_variants(path: str | Path, names: Sequence[str] | None = None) -> list[Variant]:
    """The variants of a YAML file ``{variants: {name: {section.key: value}}}``, in file order,
    or those of ``names`` in the order given.

    Raises:
        ValueError: the file has no ``variants`` mapping, or a name is not in it.
    """
    data = yaml.safe_load(Path(path).read_text()) or {}
    table = data.get("variants")
    if not isinstance(table, dict) or not table:
        raise ValueError(f"{path}: expected a 'variants:' mapping of name -> {{section.key: value}}")
    chosen = list(table) if not names else list(names)
    unknown = [n for n in chosen if n not in table]
    if unknown:
        raise ValueError(f"{path}: no variant {unknown}; available: {', '.join(table)}")
    return [_variant(path, name, table) for name in chosen]


def _variant(path: str | Path, name: str, table: dict[str, Any]) -> Variant:
    overrides = dict(table[name] or {})
    base = overrides.pop(SCORES_OF, None)
    if base is None:
        return Variant(name, overrides)
    if base not in table or (table[base] or {}).get(SCORES_OF):
        raise ValueError(f"{path}: variant {name!r}: scores_of {base!r} must name a variant that trains")
    not_inference = [k for k in overrides if not str(k).startswith("inference.")]
    if not_inference:
        raise ValueError(
            f"{path}: variant {name!r} scores the runs of {base!r}, so it may set inference.* keys only, "
            f"not {not_inference}"
        )
    return Variant(name, overrides, scores_of=base, trains_with=dict(table[base] or {}))


def seed_folder(out: Path, variant: str, seed: int) -> Path:
    """The run folder of one variant and seed."""
    return out / variant / f"seed{seed}"


def variant_config(variant: Variant, base_config: str | Path, overrides: dict[str, Any]) -> Config:
    """The config a variant trains with (for checking a variants file before a long run)."""
    return load_config(base_config, {**overrides, **(variant.trains_with or {}), **variant.overrides})
