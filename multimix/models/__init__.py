"""Networks only: the MultiMix model family, the self-supervised networks, and the factory that
builds any of them by name, from a run config or back from a run checkpoint."""

from __future__ import annotations

from multimix.models.blocks import DoubleConv, Down, Up
from multimix.models.factory import available_models, build_model, load_trained_model
from multimix.models.multimix import MultiMixNet
from multimix.models.output import MultiMixOutput, TaskOutput
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

__all__ = [
    "Backbone",
    "BarlowProjector",
    "DoubleConv",
    "Down",
    "MultiMixNet",
    "MultiMixOutput",
    "TaskOutput",
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
    "load_trained_model",
    "load_unet_encoder_state",
    "normalise_per_image",
    "resnet_backbone",
]
