"""The paper's seven models as presets, read from the packaged configs, and their display names.

The seven rows of the MultiMix paper differ only in the architecture variant and in which
semi-supervised terms are on. Each row is a packaged config (``baselines/<name>.yaml``, and
``multimix`` for the full method); this module reads them, so the YAML files are the one
source of truth for command-line users and for code.
"""

from __future__ import annotations

import functools

from multimix.config.loading import load_config
from multimix.config.schema import Config

# the paper's table order; each name is a packaged config
PRESET_NAMES = ("unet", "enc", "enc_ssl", "umtl", "umtls", "umtls_ssl", "multimix")


def _preset_config(name: str) -> str:
    return name if name == "multimix" else f"baselines/{name}"


@functools.cache
def preset_table() -> dict[str, tuple[str, bool, bool]]:
    """preset -> (model.name, method.cls_ssl, method.seg_ssl), read from the packaged configs."""
    table = {}
    for name in PRESET_NAMES:
        cfg = load_config(_preset_config(name))
        table[name] = (cfg.model.name, cfg.method.cls_ssl, cfg.method.seg_ssl)
    return table


DISPLAY_NAMES = {
    "unet": "U-Net",
    "enc": "Enc",
    "enc_ssl": "Enc-SSL",
    "umtl": "UMTL",
    "umtls": "UMTLS",
    "umtls_ssl": "UMTLS-SSL",
    "multimix": "MultiMix",
}


def preset_overrides(name: str) -> dict[str, object]:
    """``--set``-style overrides (``section.key -> value``) that turn a config into preset ``name``."""
    if name not in PRESET_NAMES:
        raise ValueError(f"unknown preset {name!r}; available: {', '.join(PRESET_NAMES)}")
    model, cls_ssl, seg_ssl = preset_table()[name]
    return {"model.name": model, "method.cls_ssl": cls_ssl, "method.seg_ssl": seg_ssl}


def active_terms(cfg: Config) -> tuple[bool, bool]:
    """(FixMatch on, KL on) as they take effect: a U-Net has no class head for FixMatch and
    the Enc classifier no decoder for the KL term, whatever the flags say."""
    return bool(cfg.method.cls_ssl) and cfg.model.name != "unet", bool(cfg.method.seg_ssl) and cfg.model.name != "enc"


def preset_of(cfg: Config) -> str | None:
    """The preset a config is, or ``None`` when it matches none of the paper's rows."""
    key = (cfg.model.name, *active_terms(cfg))
    return next((name for name, value in preset_table().items() if value == key), None)


def display_name(cfg: Config) -> str:
    """The paper's name for a config (``"UMTLS-SSL"``), else a name built from its parts (``"umtl+kl"``)."""
    preset = preset_of(cfg)
    if preset is not None:
        return DISPLAY_NAMES[preset]
    terms = [t for t, on in zip(("fixmatch", "kl"), active_terms(cfg), strict=True) if on]
    return cfg.model.name + (f"+{'+'.join(terms)}" if terms else "")
