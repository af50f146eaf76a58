"""Classifiers on a self-supervised backbone: stages 2 (fine-tuning) and 3 (distillation) of SimCLRv2.

An :class:`SSLClassifier` is a backbone, the first ``k`` layers of its pretraining projection
head (SimCLRv2 fine-tunes from the first one) and a linear classifier. It speaks the
classification half of :class:`~multimix.models.MultiMixNet`'s interface (``classify``,
``saliency``, ``forward(return_features=True)``, ``has_cls_head``...), so evaluation, reports
and active learning treat it like the Enc baseline.

Architectures are plain data (:func:`ssl_architecture`, :func:`classifier_architecture`), stored
in every checkpoint, so :func:`build_classifier` rebuilds a network without its config file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch import nn

from multimix.models.output import TaskOutput
from multimix.models.saliency import class_saliency
from multimix.models.ssl import Backbone, BarlowProjector, ProjectionHead, SSLModel, build_backbone
from multimix.utils.registry import Registry

Architecture = dict[str, Any]


def ssl_architecture(backbone: str, backbone_kwargs: dict[str, Any], head: dict[str, Any] | None) -> Architecture:
    """The plain-data description of a pretraining network.

    Args:
        backbone: a name accepted by :func:`~multimix.models.build_backbone`.
        backbone_kwargs: its arguments (JSON-able values only).
        head: ``{"kind": "simclr", "out_dim", "depth"}``, ``{"kind": "barlow", "hidden_dims"}``,
            or ``None`` for a backbone without a head.
    """
    return {
        "backbone": backbone,
        "backbone_kwargs": dict(backbone_kwargs),
        "head": None if head is None else dict(head),
    }


HeadBuilder = Callable[[dict[str, Any], int], nn.Module]
HEADS: Registry[HeadBuilder] = Registry("projection head kind")  # kind -> builder(description, backbone output size)


def register_head(kind: str) -> Callable[[HeadBuilder], HeadBuilder]:
    """Decorator: make ``build_head`` build heads described as ``{"kind": kind, ...}``. A head
    must keep its layers in ``.layers`` (an ``nn.Sequential``), so fine-tuning can keep some."""
    return HEADS.register(kind)


@register_head("simclr")
def _projection_head(head: dict[str, Any], in_dim: int) -> nn.Module:
    return ProjectionHead(in_dim, out_dim=int(head["out_dim"]), depth=int(head["depth"]))


@register_head("barlow")
def _barlow_projector(head: dict[str, Any], in_dim: int) -> nn.Module:
    return BarlowProjector(in_dim, hidden_dims=tuple(int(d) for d in head["hidden_dims"]))


def build_head(head: dict[str, Any], in_dim: int) -> nn.Module:
    """The projection head described by ``head`` (see :func:`ssl_architecture`).

    Raises:
        ValueError: for an unknown kind.
    """
    return HEADS.get(head.get("kind"))(head, in_dim)


def build_ssl_model(architecture: Architecture) -> SSLModel:
    """Backbone + projection head of a pretraining network, randomly initialised."""
    backbone = build_backbone(architecture["backbone"], **architecture["backbone_kwargs"])
    return SSLModel(backbone, build_head(architecture["head"], backbone.out_dim))


def head_depth(head: nn.Module) -> int:
    """How many layers ``forward`` of an SSL head applies (the valid range of ``from_layer``)."""
    layers = head.layers
    if not isinstance(layers, nn.Sequential | nn.ModuleList):
        raise TypeError(f"{type(head).__name__} has no sequence of layers")
    return len(layers)


def projection_layers(head: nn.Module, from_layer: int) -> tuple[list[nn.Module], int | None]:
    """The first ``from_layer`` layers of a projection head and the size of their output.

    Returns:
        ``(layers, dim)``; ``dim`` is ``None`` for ``from_layer == 0`` (the backbone's size).

    Raises:
        ValueError: if ``from_layer`` is outside ``0 .. depth``.
    """
    depth = head_depth(head)
    if not 0 <= from_layer <= depth:
        raise ValueError(f"from_layer must be in 0..{depth} for this {depth}-layer projection head, got {from_layer}")
    layers = list(cast(nn.Module, head.layers).children())[:from_layer]
    linears = [m for layer in layers for m in layer.modules() if isinstance(m, nn.Linear)]
    return layers, (linears[-1].out_features if linears else None)


class SSLClassifier(nn.Module):
    """Backbone -> projection layers (possibly none) -> linear classifier.

    Args:
        backbone: pooled-feature extractor.
        projection: layers applied to the features before the classifier (SimCLRv2 keeps the
            first layer of the pretraining head); empty for a plain linear classifier.
        num_classes: classifier outputs.
        projection_dim: output size of ``projection`` (``backbone.out_dim`` when empty).
        name: how reports and tables name this model.
    """

    has_seg_head = False
    has_bridge = False

    def __init__(
        self,
        backbone: Backbone,
        projection: Sequence[nn.Module] = (),
        num_classes: int = 2,
        projection_dim: int | None = None,
        name: str = "SSL classifier",
    ) -> None:
        super().__init__()
        self.name = name
        if num_classes < 2:
            raise ValueError(f"a classifier needs num_classes >= 2, got {num_classes}")
        self.backbone = backbone
        self.projection = nn.Sequential(*projection)
        self.classifier = nn.Linear(projection_dim or backbone.out_dim, num_classes)

    @property
    def has_cls_head(self) -> bool:
        return True

    def classify(self, x: torch.Tensor, *, return_embedding: bool = False) -> TaskOutput:
        """Class logits; ``embedding`` is the pooled backbone feature (as for MultiMix)."""
        features = self.backbone(x)
        out = TaskOutput(cls_logits=self.classifier(self.projection(features)))
        if return_embedding:
            out.embedding = features
        return out

    @torch.no_grad()
    def saliency(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` saliency of the predicted class in ``[0, 1]``."""
        with torch.enable_grad():
            leaf = x.detach().requires_grad_(True)
            return class_saliency(leaf, self.classify(leaf).required("cls_logits"), retain_graph=False)

    def forward(self, x: torch.Tensor, *, return_features: bool = False) -> TaskOutput:
        """Same as :meth:`classify` (there is no decoder); ``return_features`` adds the embedding."""
        return self.classify(x, return_embedding=return_features)


def classifier_architecture(
    ssl: Architecture, from_layer: int, num_classes: int, name: str = "SSL classifier"
) -> Architecture:
    """A classifier named ``name`` on the network ``ssl`` describes, keeping ``from_layer`` projection layers."""
    return {**ssl, "from_layer": int(from_layer), "num_classes": int(num_classes), "name": name}


def classifier_on(
    ssl_model: SSLModel, from_layer: int, num_classes: int, name: str = "SSL classifier"
) -> SSLClassifier:
    """Stage 2's network: ``ssl_model``'s backbone and first ``from_layer`` head layers (their
    weights shared, not copied) under a fresh linear classifier."""
    layers, dim = projection_layers(ssl_model.head, from_layer)
    return SSLClassifier(ssl_model.backbone, layers, num_classes, projection_dim=dim, name=name)


def build_classifier(architecture: Architecture) -> SSLClassifier:
    """Rebuild a classifier (random weights) from :func:`classifier_architecture` data; a
    ``head`` of ``None`` means a plain backbone + linear classifier (a distillation student)."""
    name = architecture.get("name", "SSL classifier")
    if architecture.get("head") is None:
        if architecture["from_layer"]:
            raise ValueError("from_layer > 0 needs a projection head in the architecture")
        backbone = build_backbone(architecture["backbone"], **architecture["backbone_kwargs"])
        return SSLClassifier(backbone, num_classes=architecture["num_classes"], name=name)
    return classifier_on(build_ssl_model(architecture), architecture["from_layer"], architecture["num_classes"], name)
