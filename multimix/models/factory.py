"""Build networks: from a run config, or back from any run checkpoint's plain data.

Every checkpoint a run writes describes its network beside the weights (``run.network``:
the class and its constructor arguments, plain data; :func:`describe_network`), so a user, the
evaluation, the predictor and the web app rebuild it here from that alone, without the run
config or how it was trained. Checkpoints written before that carried only the run config (and
for a fine-tuned or distilled classifier its architecture); they rebuild from those.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from multimix.config.loading import validate_ranges
from multimix.config.presets import display_name
from multimix.config.run_info import RunInfo
from multimix.config.schema import Config
from multimix.models.classifier import SSLClassifier, build_classifier
from multimix.models.multimix import MultiMixNet
from multimix.models.ssl import load_unet_encoder_state
from multimix.utils.checkpoints import load_checkpoint
from multimix.utils.registry import Registry

logger = logging.getLogger(__name__)


TrainedModel = MultiMixNet | SSLClassifier


def as_trained_model(model: object) -> TrainedModel:
    """``model`` if it is a network a run trains (:data:`TrainedModel`); else ``TypeError``."""
    if not isinstance(model, MultiMixNet | SSLClassifier):
        raise TypeError(f"expected a MultiMixNet or SSLClassifier, got {type(model).__name__}")
    return model


def make_model(cfg: Config) -> MultiMixNet:
    m = cfg.model
    pooling = m.cls_pooling
    if pooling == "lung" and m.name in ("unet", "enc"):
        # the lung map learns from masks through the class head's encoder: both heads are needed
        logger.info(f"note: model {m.name!r} has one head only; it pools globally (model.cls_pooling 'lung' ignored)")
        pooling = "global"
    return build_model(
        m.name,
        in_channels=m.in_channels,
        num_classes=m.num_classes,
        seg_channels=m.seg_channels,
        widths=tuple(m.widths),
        dropout=m.dropout,
        norm=m.norm,
        negative_slope=m.negative_slope,
        cls_pooling=pooling,
        domain_head=cfg.method.domain_weight > 0 and m.name != "unet",
        **_lung_crop(cfg),
    )


def _lung_crop(cfg: Config) -> dict[str, Any]:
    """``cls_input`` / ``crop_margin`` for the networks that have both heads (a note for the others)."""
    m = cfg.model
    if m.cls_input == "image":
        return {}
    if m.name in ("unet", "enc"):
        logger.info(
            f"note: model {m.name!r} has one head only; it classifies the whole image (model.cls_input ignored)"
        )
        return {}
    return {"cls_input": m.cls_input, "crop_margin": m.crop_margin}


CLASSIFIER_STAGES = ("finetune", "distill")  # runs whose network is an SSLClassifier
# class name -> how to rebuild it from its plain-data arguments
NETWORKS: Registry[Callable[[dict[str, Any]], TrainedModel]] = Registry("network class")
NETWORKS.register("MultiMixNet", lambda kwargs: MultiMixNet(**kwargs))
NETWORKS.register("SSLClassifier", build_classifier)  # its arguments are the architecture of classifier_architecture


def describe_network(model: nn.Module, architecture: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The plain-data description :func:`build_network` rebuilds ``model`` from: ``{"class",
    "kwargs"}``; an :class:`SSLClassifier` is described by its ``architecture``. ``None`` for a
    network this factory does not rebuild (a pretraining network)."""
    if isinstance(model, MultiMixNet):
        return {"class": "MultiMixNet", "kwargs": model.constructor_kwargs()}
    if isinstance(model, SSLClassifier) and architecture is not None:
        return {"class": "SSLClassifier", "kwargs": dict(architecture)}
    return None


def build_network(description: dict[str, Any], *, origin: str = "network") -> TrainedModel:
    """A network (fresh weights) from :func:`describe_network`'s data; ``ValueError`` naming
    ``origin`` when the description names no known class or arguments that do not fit it."""
    name = description.get("class") if isinstance(description, dict) else None
    if not isinstance(name, str) or name not in NETWORKS:
        raise ValueError(f"{origin}: unknown network class {name!r}; known: {', '.join(sorted(NETWORKS))}")
    try:
        return as_trained_model(NETWORKS.get(name)(description.get("kwargs") or {}))
    except (TypeError, KeyError, ValueError, RuntimeError) as err:
        raise ValueError(f"{origin}: cannot rebuild the {name} it describes: {err}") from err


def load_trained_model(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[TrainedModel, Config]:
    """Rebuild the network of a run checkpoint (``best.pt`` or ``last.pt``) with its weights, in
    eval mode: a MultiMix-family model from ``multimix train``, or the classifier of a
    fine-tuning or distillation run (``multimix finetune``, ``multimix distill``).

    Raises:
        ValueError: for a checkpoint without a run config, or a stage-1 pretraining checkpoint.
    """
    return model_from_checkpoint(load_checkpoint(path, map_location=map_location), origin=str(path))


def model_from_checkpoint(state: dict[str, Any], *, origin: str) -> tuple[TrainedModel, Config]:
    """:func:`load_trained_model` for a checkpoint already loaded (``origin`` names it in errors)."""
    run = RunInfo.from_checkpoint(state, origin=origin)
    if run.stage == "pretrain":
        raise ValueError(
            f"{origin}: a pretraining checkpoint has no trained classifier; fine-tune it with "
            "multimix finetune --pretrained, or start MultiMix from it with --init-encoder"
        )
    cfg = checkpoint_config(run, origin)
    if run.network is not None:
        model = build_network(run.network, origin=origin)
    elif run.stage in CLASSIFIER_STAGES:  # written before checkpoints described their network
        model = build_classifier(run.architecture or {})
    else:
        model = make_model(cfg)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        detail = str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else str(err)
        raise ValueError(f"{origin}: its weights do not fit the network it describes ({detail})") from None
    return model.eval(), cfg


def checkpoint_config(run: RunInfo, origin: str) -> Config:
    """The run config a checkpoint carries, range-checked like the command line's; a config that
    disagrees with the network the checkpoint describes is named in a warning."""
    cfg = Config.from_dict(run.config, origin=origin)
    try:
        validate_ranges(cfg)
    except ValueError as err:
        raise ValueError(f"{origin}: its config cannot work: {err}") from None
    network = run.network or {}
    widths = (network.get("kwargs") or {}).get("widths") if network.get("class") == "MultiMixNet" else None
    if widths is not None and list(widths) != list(cfg.model.widths):  # the description built the weights
        logger.warning(
            f"warning: {origin}: its config says model.widths {list(cfg.model.widths)} but its network has "
            f"{list(widths)} (edited, or put together from two runs); the network is built as it describes"
        )
    return cfg


PRETRAINED_ENCODER_PREFIX = "ssl.backbone.encoder."  # a U-Net backbone's encoder in a pretraining checkpoint
TRAINED_ENCODER_PREFIX = "encoder."  # the encoder of a MultiMix-family run


def load_pretrained_encoder(model: MultiMixNet, path: str | Path) -> None:
    """Start ``model``'s encoder from the U-Net encoder of a checkpoint: a pretraining run
    (``multimix pretrain --backbone unet``) or a MultiMix-family training run; every tensor
    except the class head must match in name and shape."""
    weights = load_checkpoint(path)["model"]
    encoder: dict[str, torch.Tensor] = {}
    for prefix in (PRETRAINED_ENCODER_PREFIX, TRAINED_ENCODER_PREFIX):
        encoder = encoder or {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    if not encoder:
        raise ValueError(
            f"{path}: no U-Net encoder in this checkpoint (pretrain with --backbone unet, or pass a MultiMix run's "
            "checkpoint, to initialise MultiMix)"
        )
    try:
        load_unet_encoder_state(model.encoder, encoder)
    except RuntimeError as err:
        raise ValueError(
            f"{path}: the pretrained encoder does not fit model.widths {list(model.encoder.widths)}: {err}"
        ) from err


def trained_model_name(model: nn.Module, cfg: Config) -> str:
    """How reports name a trained network: a fine-tuned or distilled classifier by its own
    name, a MultiMix-family model by :func:`display_name` of its config."""
    return model.name if isinstance(model, SSLClassifier) else display_name(cfg)


# name -> builder(**MultiMixNet arguments); the paper's baselines differ only in which heads
# exist and whether the bridge is on (the semi-supervised losses that turn UMTLS into MultiMix
# belong to the method, not the model)
ModelBuilder = Callable[..., MultiMixNet]
MODELS: Registry[ModelBuilder] = Registry("model", lower=True)


def register_model(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator: make a builder (keyword arguments of :class:`MultiMixNet` in, network out)
    buildable as ``model.name: <name>`` (``--model``)."""
    return MODELS.register(name)


@register_model("unet")
def _unet(**kwargs: Any) -> MultiMixNet:
    return MultiMixNet(**{**kwargs, "num_classes": 0, "seg_head": True, "bridge": False})


@register_model("enc")
def _enc(**kwargs: Any) -> MultiMixNet:
    return MultiMixNet(**{**kwargs, "seg_head": False, "bridge": False})


@register_model("umtl")
def _umtl(**kwargs: Any) -> MultiMixNet:
    return MultiMixNet(**{"seg_head": True, **kwargs, "bridge": False})


@register_model("umtls")
@register_model("multimix")
def _bridged(**kwargs: Any) -> MultiMixNet:
    return MultiMixNet(**{"seg_head": True, "bridge": True, **kwargs})


def available_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return sorted(MODELS)


def build_model(name: str = "multimix", **kwargs: Any) -> MultiMixNet:
    """Build a registered model; ``kwargs`` are :class:`MultiMixNet` arguments (a variant keeps
    what makes it that variant, e.g. a U-Net never gets a class head).

    >>> build_model("umtl", widths=(8, 16, 32)).has_bridge
    False
    """
    return MODELS.get(name)(**kwargs)


@functools.cache
def model_heads(name: str) -> tuple[bool, bool]:
    """(has a segmentation decoder, has a class head) of model ``name``, read from a tiny instance:
    the ablation grid knows which label budget a model ignores from the model itself."""
    model = build_model(name, widths=(4, 8))
    return model.has_seg_head, model.has_cls_head
