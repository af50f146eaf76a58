"""The paper's seven models as presets over one config, and their display names.

The seven rows of the MultiMix paper differ only in the architecture variant and in which
semi-supervised terms are on, so each preset is a handful of config overrides. The YAML files
in ``configs/baselines/`` say the same thing for command-line users; a test keeps them in step.
"""

from __future__ import annotations

from torch import nn

from multimix.config import Config
from multimix.models.classifier import SSLClassifier

# preset -> (model.name, method.cls_ssl, method.seg_ssl), in the paper's table order
PRESETS: dict[str, tuple[str, bool, bool]] = {
    "unet": ("unet", False, False),
    "enc": ("enc", False, False),
    "enc_ssl": ("enc", True, False),
    "umtl": ("umtl", False, False),
    "umtls": ("umtls", False, False),
    "umtls_ssl": ("umtls", True, False),
    "multimix": ("multimix", True, True),
}

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
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; available: {', '.join(PRESETS)}")
    model, cls_ssl, seg_ssl = PRESETS[name]
    return {"model.name": model, "method.cls_ssl": cls_ssl, "method.seg_ssl": seg_ssl}


def active_terms(cfg: Config) -> tuple[bool, bool]:
    """(FixMatch on, KL on) as they take effect: a U-Net has no class head for FixMatch and
    the Enc classifier no decoder for the KL term, whatever the flags say."""
    return bool(cfg.method.cls_ssl) and cfg.model.name != "unet", bool(cfg.method.seg_ssl) and cfg.model.name != "enc"


def preset_of(cfg: Config) -> str | None:
    """The preset a config is, or ``None`` when it matches none of the paper's rows."""
    key = (cfg.model.name, *active_terms(cfg))
    return next((name for name, value in PRESETS.items() if value == key), None)


def display_name(cfg: Config) -> str:
    """The paper's name for a config (``"UMTLS-SSL"``), else a name built from its parts (``"umtl+kl"``)."""
    preset = preset_of(cfg)
    if preset is not None:
        return DISPLAY_NAMES[preset]
    terms = [t for t, on in zip(("fixmatch", "kl"), active_terms(cfg), strict=True) if on]
    return cfg.model.name + (f"+{'+'.join(terms)}" if terms else "")


def trained_model_name(model: nn.Module, cfg: Config) -> str:
    """How reports name a trained network: a fine-tuned or distilled classifier by its own
    name, a MultiMix-family model by :func:`display_name` of its config."""
    return model.name if isinstance(model, SSLClassifier) else display_name(cfg)
