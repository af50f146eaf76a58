"""Networks only: the MultiMix model family and a registry of the paper's variants."""

from __future__ import annotations

from typing import Any

from multimix.models.blocks import DoubleConv, Down, Up
from multimix.models.multimix import MultiMixNet, MultiMixOutput
from multimix.models.saliency import SaliencyBridge, class_saliency, normalise_per_image
from multimix.models.ssl import (
    Backbone,
    BarlowProjector,
    ProjectionHead,
    ResNetBackbone,
    SSLModel,
    UNetEncoderBackbone,
    available_backbones,
    build_backbone,
    load_unet_encoder_state,
    resnet_backbone,
)
from multimix.models.unet import UNetDecoder, UNetEncoder

# The paper's baselines differ only in which heads exist and whether the bridge is on;
# the semi-supervised losses that turn UMTLS into MultiMix belong to the method, not the model.
_VARIANTS: dict[str, dict[str, Any]] = {
    "unet": dict(num_classes=0, seg_head=True, bridge=False),
    "enc": dict(seg_head=False, bridge=False),
    "umtl": dict(seg_head=True, bridge=False),
    "umtls": dict(seg_head=True, bridge=True),
    "multimix": dict(seg_head=True, bridge=True),
}


def available_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return sorted(_VARIANTS)


def build_model(name: str = "multimix", **kwargs: Any) -> MultiMixNet:
    """Build a registered variant; ``kwargs`` override any :class:`MultiMixNet` argument.

    >>> build_model("umtl", widths=(8, 16, 32)).has_bridge
    False
    """
    key = name.lower()
    if key not in _VARIANTS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    args = {**_VARIANTS[key], **kwargs}
    if key == "unet":
        args["num_classes"] = 0
    return MultiMixNet(**args)


__all__ = [
    "Backbone",
    "BarlowProjector",
    "DoubleConv",
    "Down",
    "MultiMixNet",
    "MultiMixOutput",
    "ProjectionHead",
    "ResNetBackbone",
    "SSLModel",
    "SaliencyBridge",
    "UNetDecoder",
    "UNetEncoder",
    "UNetEncoderBackbone",
    "Up",
    "available_backbones",
    "available_models",
    "build_backbone",
    "build_model",
    "class_saliency",
    "load_unet_encoder_state",
    "normalise_per_image",
    "resnet_backbone",
]
