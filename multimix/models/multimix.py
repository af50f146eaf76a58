"""MultiMixNet: a U-Net whose encoder also classifies, joined to the decoder by a saliency bridge."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.profiler import record_function

from multimix.config.schema import ModelConfig
from multimix.models.domain import DomainHead
from multimix.models.lung_crop import CLS_INPUTS, crop_to_boxes, lung_boxes
from multimix.models.output import TaskOutput
from multimix.models.saliency import SaliencyBridge, class_saliency
from multimix.models.unet import UNetDecoder, UNetEncoder

# the training default (config: model.widths), so build_model("multimix") loads a default run's
# weights; the paper's network is 5 levels at 256 px
DEFAULT_WIDTHS: tuple[int, ...] = tuple(ModelConfig().widths)
PAPER_WIDTHS: tuple[int, ...] = (16, 32, 64, 128, 256)

# profiler scopes of a forward pass (multimix benchmark --profile reads them)
SCOPE_SALIENCY = "saliency"
SCOPE_DECODER = "bridge + decoder"


class MultiMixNet(nn.Module):
    """U-Net encoder + classification head + saliency bridge + U-Net decoder.

    The same class expresses every baseline of the paper: ``seg_head=False`` is a classifier
    (Enc), ``num_classes=0`` a plain U-Net, ``bridge=False`` a multitask net without saliency
    (UMTL). Defaults are the paper's: 1 channel, widths 16-32-64-128-256, InstanceNorm,
    LeakyReLU(0.2), dropout 0.25, 2 classes, 1 sigmoid segmentation channel.

    The bridge computes the saliency inside ``forward`` with gradients enabled for the input only,
    so it works in ``eval()`` under ``torch.no_grad()`` and never writes parameter gradients.
    ``cls_pooling="lung"`` pools the class features over a coarse lung map (see
    :class:`~multimix.models.unet.UNetEncoder`); ``domain_head=True`` adds the adversary of
    domain-adversarial training, which reads the same pooled features (``embedding``);
    ``cls_input="lung_crop"`` classifies the box of the network's own lungs, widened by
    ``crop_margin`` (:mod:`multimix.models.lung_crop`).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        seg_channels: int = 1,
        widths: Sequence[int] = DEFAULT_WIDTHS,
        *,
        dropout: float = 0.25,
        norm: str = "instance",
        negative_slope: float = 0.2,
        seg_head: bool = True,
        bridge: bool = True,
        cls_pooling: str = "global",
        domain_head: bool = False,
        cls_input: str = "image",
        crop_margin: float = 0.1,
    ) -> None:
        super().__init__()
        # plain data that rebuilds this network (stored in checkpoints: multimix.models.factory)
        self._constructor_kwargs: dict[str, Any] = dict(
            in_channels=in_channels,
            num_classes=num_classes,
            seg_channels=seg_channels,
            widths=[int(w) for w in widths],
            dropout=dropout,
            norm=norm,
            negative_slope=negative_slope,
            seg_head=seg_head,
            bridge=bridge,
            cls_pooling=cls_pooling,
            domain_head=domain_head,
            cls_input=cls_input,
            crop_margin=crop_margin,
        )
        if bridge and not (seg_head and num_classes > 0):
            raise ValueError("the saliency bridge needs both a classification head and a segmentation decoder")
        if not seg_head and num_classes <= 0:
            raise ValueError("a model needs a segmentation decoder, a classification head, or both")
        if cls_pooling == "lung" and not (seg_head and num_classes > 0):
            raise ValueError("cls_pooling 'lung' needs both heads: its lung map learns from the segmentation labels")
        if cls_input not in CLS_INPUTS:
            raise ValueError(f"cls_input must be one of {', '.join(CLS_INPUTS)}, got {cls_input!r}")
        if cls_input == "lung_crop" and not (seg_head and num_classes > 0):
            raise ValueError("cls_input 'lung_crop' needs both heads: the box comes from the network's own lung mask")
        self.cls_input = cls_input
        self.crop_margin = crop_margin
        block_kw: dict[str, Any] = dict(dropout=dropout, norm=norm, negative_slope=negative_slope)
        self.encoder = UNetEncoder(in_channels, widths, num_classes, pooling=cls_pooling, **block_kw)
        self.bridge = SaliencyBridge(in_channels) if bridge else None
        # training only: the adversary of domain-adversarial training (multimix.models.domain)
        self.domain_head = DomainHead(self.encoder.widths[-1]) if domain_head else None
        self.decoder: UNetDecoder | None = None
        if seg_head:
            extra = self.bridge.out_channels if self.bridge is not None else 0
            self.decoder = UNetDecoder(widths, seg_channels, extra_channels=extra, **block_kw)

    @property
    def has_cls_head(self) -> bool:
        return self.encoder.head is not None

    @property
    def has_seg_head(self) -> bool:
        return self.decoder is not None

    @property
    def has_bridge(self) -> bool:
        return self.bridge is not None

    def classify(self, x: torch.Tensor, *, return_embedding: bool = False) -> TaskOutput:
        """Encoder and class head only: classification images never pay for decoder or saliency
        (except with ``cls_input="lung_crop"``, whose box needs the lung mask of a full pass)."""
        if self.cls_input == "lung_crop":
            with torch.no_grad():
                seg_logits = self._full_pass(x).required("seg_logits")
            x = crop_to_boxes(x, lung_boxes(seg_logits, margin=self.crop_margin))
        bottleneck = self.encoder(x)[-1]
        out = TaskOutput(cls_logits=self.encoder.classify(bottleneck))
        if return_embedding:
            out.embedding = self.encoder.pool(bottleneck)
        return out

    @torch.no_grad()
    def saliency(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` saliency of the predicted class in ``[0, 1]`` (any variant with a class head)."""
        if not self.has_cls_head:
            raise ValueError("saliency needs a classification head; this variant has none")
        return self._encode_with_saliency(x)[1]

    def constructor_kwargs(self) -> dict[str, Any]:
        """The arguments this network was built with, as plain data: ``MultiMixNet(**kwargs)``
        rebuilds it (with fresh weights)."""
        return copy.deepcopy(self._constructor_kwargs)

    def forward(self, x: torch.Tensor, *, return_features: bool = False) -> TaskOutput:
        """Full pass; one encoder pass serves the class head, the saliency and the decoder skips.
        With ``cls_input="lung_crop"`` the class logits (and the embedding) come from a second
        encoder pass over the box of this pass's own lung mask (:mod:`multimix.models.lung_crop`)."""
        out = self._full_pass(x, return_features=return_features)
        if self.cls_input == "lung_crop":
            crops = crop_to_boxes(x, lung_boxes(out.required("seg_logits"), margin=self.crop_margin))
            bottleneck = self.encoder(crops)[-1]
            out.cls_logits = self.encoder.classify(bottleneck)
            if return_features:
                out.embedding = self.encoder.pool(bottleneck)
        return out

    def _full_pass(self, x: torch.Tensor, *, return_features: bool = False) -> TaskOutput:
        if self.bridge is None:
            features = self.encoder(x)
            saliency = None
        else:
            features, saliency, x = self._encode_with_saliency(x)
        out = TaskOutput(saliency=saliency, lung_logits=self.encoder.lung_logits(features[-1]))
        if self.has_cls_head:
            out.cls_logits = self.encoder.classify(features[-1])
        if self.decoder is not None:
            with record_function(SCOPE_DECODER):
                extra = None
                if self.bridge is not None:
                    extra = self.bridge(x, saliency, size=tuple(features[-1].shape[-2:]))
                out.seg_logits = self.decoder(features, extra)
        if return_features:
            out.features = features
            out.embedding = self.encoder.pool(features[-1]) if self.has_cls_head else features[-1].mean(dim=(2, 3))
        return out

    def _encode_with_saliency(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        training_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            leaf = x.detach().requires_grad_(True)
            features = self.encoder(leaf)
            cls_logits = self.encoder.classify(features[-1])
            with record_function(SCOPE_SALIENCY):  # the input-gradient pass (its forward is the encoder's)
                saliency = class_saliency(leaf, cls_logits, retain_graph=training_graph)
        if not training_graph:
            # inference: drop the graph built for the saliency so the decoder runs graph-free
            features = [f.detach() for f in features]
        return features, saliency, leaf
