"""Backbones and projection heads for self-supervised pretraining (SimCLRv2, Barlow Twins).

A :class:`Backbone` maps images to pooled ``(B, out_dim)`` features; a head maps those to the
space the self-supervised loss works in; :class:`SSLModel` joins the two. The U-Net backbone
wraps the MultiMix encoder so that pretrained weights can be loaded back into
``MultiMixNet.encoder`` with :func:`load_unet_encoder_state`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from multimix.models.unet import UNetEncoder
from multimix.utils.registry import Registry

# prefix of the UNetEncoder's classification head in its state dict
_HEAD_PREFIX = "head."
# channels of torchvision's ResNet stem before any width multiplier
_STEM_WIDTH = 64
_RESNET_SPECS: dict[str, tuple[type[BasicBlock | Bottleneck], list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
}


class Backbone(nn.Module):
    """Base of every SSL backbone: images in, pooled features out.

    Attributes:
        out_dim: size ``D`` of the feature vector returned by :meth:`forward`.
    """

    out_dim: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features.

        Args:
            x: ``(B, C, H, W)`` images.

        Returns:
            ``(B, out_dim)`` features.

        Raises:
            NotImplementedError: always; subclasses implement it.
        """
        raise NotImplementedError


class UNetEncoderBackbone(Backbone):
    """Globally average-pooled bottleneck of a MultiMix U-Net encoder.

    The pooling is the one ``MultiMixNet.classify`` applies to build its embedding, so the
    features equal ``MultiMixNet.classify(x, return_embedding=True).embedding`` for the same
    encoder weights. The encoder's classification head, if it has one, is never used.

    Args:
        encoder: the encoder to wrap, stored as ``.encoder``; build it with ``num_classes=0``
            so that no unused head parameters exist (they would trip DDP's unused-parameter
            check) and move its weights with :func:`load_unet_encoder_state`.
    """

    def __init__(self, encoder: UNetEncoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.out_dim = encoder.widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of the bottleneck over its spatial positions.

        Args:
            x: ``(B, C, H, W)`` images, ``H`` and ``W`` divisible by the encoder's size divisor.

        Returns:
            ``(B, widths[-1])`` features.

        Raises:
            ValueError: if the input cannot pass through every encoder level.
        """
        return self.encoder(x)[-1].mean(dim=(2, 3))


def load_unet_encoder_state(target: UNetEncoder, state: Mapping[str, torch.Tensor]) -> list[str]:
    """Load pretrained encoder weights into ``target``, e.g. ``MultiMixNet.encoder``.

    Every convolution and normalisation tensor must match exactly (as with ``strict=True``);
    only the classification head is exempt: head entries of ``state`` are dropped and the
    target keeps its own head, since pretraining sees no labels. This lets a head-less
    backbone encoder load into a MultiMix model with any number of classes.

    Args:
        target: the encoder to receive the weights.
        state: an encoder state dict, e.g. ``UNetEncoderBackbone.encoder.state_dict()``.

    Returns:
        The keys of ``target`` that were left untouched (its head's parameters).

    Raises:
        RuntimeError: if a non-head key is missing or unexpected, or a shape differs.
    """
    body = {k: v for k, v in state.items() if not k.startswith(_HEAD_PREFIX)}
    result = target.load_state_dict(body, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(_HEAD_PREFIX)]
    if missing or result.unexpected_keys:
        raise RuntimeError(f"encoder weights do not fit: missing {missing}, unexpected {result.unexpected_keys}")
    return list(result.missing_keys)


def _scale(channels: int, multiplier: float) -> int:
    return max(1, round(channels * multiplier))


class _ScaledResNet(ResNet):
    """torchvision ResNet with every stage (stem included) ``width_multiplier`` times as wide."""

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: list[int],
        *,
        width_multiplier: float,
        in_channels: int,
    ) -> None:
        # read by _make_layer while ResNet.__init__ builds the stages
        self.width_multiplier = width_multiplier
        super().__init__(block, layers)
        stem_width = _scale(_STEM_WIDTH, width_multiplier)
        old = self.conv1  # type: ignore[has-type]  # set by torchvision's ResNet.__init__
        self.conv1 = nn.Conv2d(in_channels, stem_width, old.kernel_size, old.stride, old.padding, bias=False)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.bn1 = self._norm_layer(stem_width)
        self.fc = nn.Identity()
        self.out_dim = _scale(512, width_multiplier) * block.expansion

    def _make_layer(
        self,
        block: type[BasicBlock | Bottleneck],
        planes: int,
        blocks: int,
        stride: int = 1,
        dilate: bool = False,
    ) -> nn.Sequential:
        if not hasattr(self, "layer1"):  # the first stage follows the (scaled) stem
            self.inplanes = _scale(self.inplanes, self.width_multiplier)  # type: ignore[has-type]
        planes = _scale(planes, self.width_multiplier)
        return super()._make_layer(block, planes, blocks, stride, dilate)


class ResNetBackbone(Backbone):
    """A torchvision ResNet without its classifier, as built by :func:`resnet_backbone`.

    Args:
        net: a ResNet whose ``fc`` is ``nn.Identity``.
        out_dim: size of its pooled features.
    """

    def __init__(self, net: ResNet, out_dim: int) -> None:
        super().__init__()
        self.net = net
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled last stage.

        Args:
            x: ``(B, in_channels, H, W)`` images.

        Returns:
            ``(B, out_dim)`` features.
        """
        return self.net(x)


def resnet_backbone(name: str = "resnet18", *, width_multiplier: float = 1.0, in_channels: int = 1) -> ResNetBackbone:
    """Randomly initialised torchvision ResNet for self-supervised pretraining.

    The stem convolution takes ``in_channels`` channels (same kernel, stride and padding as
    torchvision's) and ``fc`` is an identity. ``width_multiplier`` scales the channels of the
    stem and of every stage (SimCLRv2's wide ResNets), so parameters grow about quadratically:
    2x width gives about 4x parameters.

    Args:
        name: ``"resnet18"`` or ``"resnet50"``.
        width_multiplier: channel scale factor, > 0.
        in_channels: image channels (1 for chest X-rays).

    Returns:
        The backbone; ``out_dim`` is ``512 * width_multiplier`` for resnet18 and four times
        that for resnet50.

    Raises:
        ValueError: for an unknown name, a non-positive multiplier or ``in_channels < 1``.
    """
    key = name.lower()
    if key not in _RESNET_SPECS:
        raise ValueError(f"unknown ResNet {name!r}; available: {', '.join(sorted(_RESNET_SPECS))}")
    if width_multiplier <= 0:
        raise ValueError(f"width_multiplier must be > 0, got {width_multiplier}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    block, layers = _RESNET_SPECS[key]
    net = _ScaledResNet(block, layers, width_multiplier=width_multiplier, in_channels=in_channels)
    return ResNetBackbone(net, net.out_dim)


def _unet_backbone(**kwargs: Any) -> UNetEncoderBackbone:
    kwargs.setdefault("num_classes", 0)
    return UNetEncoderBackbone(UNetEncoder(**kwargs))


BACKBONES: Registry[Callable[..., Backbone]] = Registry("backbone", lower=True)
BACKBONES.register("unet", _unet_backbone)
for _resnet in _RESNET_SPECS:
    BACKBONES.register(_resnet, functools.partial(resnet_backbone, _resnet))


def available_backbones() -> list[str]:
    """Names accepted by :func:`build_backbone`."""
    return sorted(BACKBONES)


def build_backbone(name: str, **kwargs: Any) -> Backbone:
    """Build a backbone by name.

    Args:
        name: ``"unet"`` (kwargs go to :class:`UNetEncoder`: ``widths``, ``in_channels``,
            ``dropout``, ``norm``, ``negative_slope``; ``num_classes`` defaults to 0, i.e. no
            head), ``"resnet18"`` or ``"resnet50"`` (kwargs go to :func:`resnet_backbone`).
        **kwargs: backbone arguments.

    Returns:
        The backbone.

    Raises:
        ValueError: for an unknown name.
    """
    return BACKBONES.get(name)(**kwargs)


def _check_batch(x: torch.Tensor, module: nn.Module) -> None:
    if module.training and x.shape[0] < 2:
        raise ValueError(
            f"BatchNorm in train mode needs a batch of at least 2, got {x.shape[0]}; use a larger batch or call .eval()"
        )


class ProjectionHead(nn.Module):
    """SimCLRv2 projection head: ``depth`` layers, the last without bias or ReLU.

    Layers ``1 .. depth-1`` are Linear-BatchNorm-ReLU; the last is Linear-BatchNorm. No
    Linear has a bias: the BatchNorm after it removes any offset. Hidden BatchNorms are
    affine (learned scale and shift); the final one is ``affine=False``, so the output is
    purely standardised (zero mean, unit variance per unit over the batch) with no bias
    term at all. SimCLRv2 fine-tunes from an intermediate layer, hence ``forward(upto=k)``.

    BatchNorm in train mode needs a batch of at least 2; a smaller batch raises a
    ``ValueError`` (eval mode accepts any batch).

    Args:
        in_dim: size of the backbone features.
        hidden_dim: width of the hidden layers; defaults to ``in_dim``.
        out_dim: size of the projection.
        depth: number of layers, >= 1.

    Raises:
        ValueError: if ``depth < 1`` or a size is not positive.
    """

    def __init__(self, in_dim: int, hidden_dim: int | None = None, out_dim: int = 128, depth: int = 3) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        hidden_dim = in_dim if hidden_dim is None else hidden_dim
        if min(in_dim, hidden_dim, out_dim) < 1:
            raise ValueError(f"sizes must be positive, got {in_dim}, {hidden_dim}, {out_dim}")
        self.in_dim, self.hidden_dim, self.out_dim, self.depth = in_dim, hidden_dim, out_dim, depth
        dims = [in_dim] + [hidden_dim] * (depth - 1) + [out_dim]
        blocks = [_linear_bn_relu(a, b) for a, b in zip(dims[:-2], dims[1:-1])]
        last = nn.Sequential(nn.Linear(dims[-2], out_dim, bias=False), nn.BatchNorm1d(out_dim, affine=False))
        self.layers = nn.ModuleList([*blocks, last])

    def dim_at(self, k: int) -> int:
        """Feature size after ``k`` layers.

        Args:
            k: number of layers applied, ``0 .. depth``.

        Returns:
            ``in_dim`` for 0, ``out_dim`` for ``depth``, ``hidden_dim`` in between.

        Raises:
            ValueError: if ``k`` is out of range.
        """
        self._check_upto(k)
        if k == 0:
            return self.in_dim
        return self.out_dim if k == self.depth else self.hidden_dim

    def forward(self, x: torch.Tensor, *, upto: int | None = None) -> torch.Tensor:
        """Project ``x`` through the first ``upto`` layers.

        Args:
            x: ``(B, in_dim)`` features.
            upto: layers to apply; ``None`` means all, 0 returns ``x`` unchanged.

        Returns:
            ``(B, dim_at(upto))`` tensor.

        Raises:
            ValueError: if ``upto`` is out of range, or in train mode with a batch of 1.
        """
        upto = self.depth if upto is None else upto
        self._check_upto(upto)
        if upto:
            _check_batch(x, self)
        for layer in self.layers[:upto]:
            x = layer(x)
        return x

    def _check_upto(self, k: int) -> None:
        if not 0 <= k <= self.depth:
            raise ValueError(f"layer index must be in 0..{self.depth}, got {k}")


def _linear_bn_relu(in_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, out_dim, bias=False), nn.BatchNorm1d(out_dim), nn.ReLU(inplace=True))


class BarlowProjector(nn.Module):
    """Barlow Twins projector: Linear-BatchNorm-ReLU blocks, then a plain final Linear.

    The layer widths are ``(*hidden_dims, out_dim)``, or just ``hidden_dims`` when
    ``out_dim`` is ``None`` (its last entry is then the output size). The default,
    ``BarlowProjector(in_dim)``, is a single bias-free Linear to 512 units: a single
    512-unit projector worked best for chest X-rays. ``hidden_dims=(2048, 2048),
    out_dim=2048`` gives the original ImageNet shape (two 2048-unit blocks, then a
    2048-unit Linear). No Linear has a bias; the final layer has no BatchNorm (the loss
    standardises the embeddings itself). Hidden BatchNorms need a batch of at least 2 in
    train mode.

    Args:
        in_dim: size of the backbone features.
        hidden_dims: widths of the Linear-BN-ReLU blocks (see above for ``out_dim=None``).
        out_dim: size of the projection, or ``None``.

    Raises:
        ValueError: if no layer would be built or a size is not positive.
    """

    def __init__(self, in_dim: int, hidden_dims: Sequence[int] = (512,), out_dim: int | None = None) -> None:
        super().__init__()
        dims = [int(d) for d in hidden_dims] + ([] if out_dim is None else [int(out_dim)])
        if not dims:
            raise ValueError("BarlowProjector needs an out_dim or at least one entry in hidden_dims")
        if min(in_dim, *dims) < 1:
            raise ValueError(f"sizes must be positive, got in_dim={in_dim}, layers={dims}")
        self.in_dim, self.out_dim = in_dim, dims[-1]
        widths = [in_dim, *dims]
        blocks = [_linear_bn_relu(a, b) for a, b in zip(widths[:-2], widths[1:-1])]
        self.layers = nn.Sequential(*blocks, nn.Linear(widths[-2], widths[-1], bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project features.

        Args:
            x: ``(B, in_dim)`` features.

        Returns:
            ``(B, out_dim)`` projections.

        Raises:
            ValueError: in train mode with hidden blocks and a batch of 1.
        """
        if len(self.layers) > 1:
            _check_batch(x, self)
        return self.layers(x)


class SSLModel(nn.Module):
    """A backbone followed by a projection head.

    Args:
        backbone: maps images to ``(B, backbone.out_dim)`` features.
        head: maps those features to the projections the SSL loss uses.
    """

    def __init__(self, backbone: Backbone, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and projections of a batch.

        Args:
            x: ``(B, C, H, W)`` images.

        Returns:
            ``(features, projections)``: the backbone output and the head applied to it.
        """
        features = self.backbone(x)
        return features, self.head(features)
