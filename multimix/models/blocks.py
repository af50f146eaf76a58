"""Convolution blocks of the U-Net: conv-norm-act twice, and the down/up steps between levels."""

from __future__ import annotations

import torch
from torch import nn


def conv_norm_act(in_channels: int, out_channels: int, *, norm: str, negative_slope: float) -> nn.Module:
    """3x3 convolution, normalisation, LeakyReLU (MONAI's ``Convolution`` block)."""
    from monai.networks.blocks import (
        Convolution,  # MONAI loads all of itself on first import (seconds): imported where used
    )

    norm_arg = (norm, {"affine": True}) if norm in ("instance", "batch") else norm
    return Convolution(
        spatial_dims=2,
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=3,
        adn_ordering="NA",
        act=("leakyrelu", {"negative_slope": negative_slope}),
        norm=norm_arg,
        # the norm removes any per-channel offset, so a conv bias would be wasted
        bias=norm is None,
    )


class DoubleConv(nn.Sequential):
    """Two conv-norm-act layers followed by channel dropout (the paper's U-Net block)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        norm: str = "instance",
        negative_slope: float = 0.2,
        dropout: float = 0.0,
    ) -> None:
        layers: list[nn.Module] = [
            conv_norm_act(in_channels, out_channels, norm=norm, negative_slope=negative_slope),
            conv_norm_act(out_channels, out_channels, norm=norm, negative_slope=negative_slope),
        ]
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


class Down(nn.Sequential):
    """Halve the resolution (max-pool), then a :class:`DoubleConv`."""

    def __init__(self, in_channels: int, out_channels: int, **block_kw) -> None:
        super().__init__(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels, **block_kw))


class Up(nn.Module):
    """Double the resolution (transposed conv), concatenate the skip, then a :class:`DoubleConv`."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, **block_kw) -> None:
        super().__init__()
        self.upsample = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.block = DoubleConv(out_channels + skip_channels, out_channels, **block_kw)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.block(torch.cat([self.upsample(x), skip], dim=1))
