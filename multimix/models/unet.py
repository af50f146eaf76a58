"""U-Net encoder with an optional classification branch, and a decoder with an optional bridge input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from multimix.models.blocks import DoubleConv, Down, Up

POOLINGS = ("global", "lung")


class UNetEncoder(nn.Module):
    """Contracting path of the U-Net; optionally classifies from the deepest features.

    Args:
        in_channels: image channels (1 for chest X-rays).
        widths: channels per level, shallow to deep; ``len(widths)`` levels, so inputs must be
            divisible by ``2 ** (len(widths) - 1)``.
        num_classes: size of the classification head; ``0`` builds no head.
        dropout: channel dropout after every block and before the linear head.
        norm: normalisation of the conv blocks (``"instance"``, ``"batch"`` or ``None``).
        negative_slope: LeakyReLU slope.
        pooling: how the head summarises the bottleneck: ``"global"`` averages it over the whole
            image; ``"lung"`` averages it weighted by a coarse lung map that a 1x1 convolution
            predicts from the same features (:meth:`lung_logits`, trained against the labeled
            lung masks), so borders, markers and the body outside the chest cannot decide the class.
    """

    def __init__(
        self,
        in_channels: int = 1,
        widths: Sequence[int] = (16, 32, 64, 128, 256),
        num_classes: int = 2,
        *,
        dropout: float = 0.25,
        norm: str = "instance",
        negative_slope: float = 0.2,
        pooling: str = "global",
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if len(widths) < 2:
            raise ValueError(f"a U-Net needs at least 2 levels, got widths={tuple(widths)}")
        self.widths = tuple(int(w) for w in widths)
        block_kw: dict[str, Any] = dict(norm=norm, negative_slope=negative_slope, dropout=dropout)
        self.stem = DoubleConv(in_channels, self.widths[0], **block_kw)
        self.downs = nn.ModuleList(
            Down(c_in, c_out, **block_kw) for c_in, c_out in zip(self.widths[:-1], self.widths[1:])
        )
        self.num_classes = num_classes
        self.pooling = pooling
        self.head: nn.Module | None = None
        self.lung_gate: nn.Conv2d | None = None
        if num_classes > 0:
            # the pooling layer stays in the head (a no-op on pooled input) so checkpoints keep their keys
            self.head = nn.Sequential(
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(self.widths[-1], num_classes)
            )
            if pooling == "lung":
                self.lung_gate = nn.Conv2d(self.widths[-1], 1, kernel_size=1)

    @property
    def size_divisor(self) -> int:
        return 2 ** (len(self.widths) - 1)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ``ValueError`` naming the sizes when ``x`` cannot pass through every level."""
        if x.ndim != 4:
            raise ValueError(f"expected a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
        height, width = x.shape[-2:]
        k = self.size_divisor
        if height % k or width % k:
            raise ValueError(
                f"input height/width {height}x{width} must be divisible by {k} "
                f"(2^(levels-1) for {len(self.widths)} levels); resize to e.g. "
                f"{max(k, round(height / k) * k)}x{max(k, round(width / k) * k)}"
            )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features of every level, shallow to deep (the last is the bottleneck)."""
        self.check_input(x)
        features = [self.stem(x)]
        for down in self.downs:
            features.append(down(features[-1]))
        return features

    def lung_logits(self, bottleneck: torch.Tensor) -> torch.Tensor | None:
        """``(B, 1, h, w)`` logits of the coarse lung map on the bottleneck grid (``pooling="lung"``), else ``None``."""
        return None if self.lung_gate is None else self.lung_gate(bottleneck)

    def pool(self, bottleneck: torch.Tensor) -> torch.Tensor:
        """``(B, C)``: the bottleneck summarised as the class head reads it (see ``pooling``)."""
        gate = self.lung_logits(bottleneck)
        if gate is None:
            return bottleneck.mean(dim=(2, 3))
        weights = torch.sigmoid(gate)
        return (bottleneck * weights).sum(dim=(2, 3)) / weights.sum(dim=(2, 3)).clamp_min(1e-6)

    def classify(self, bottleneck: torch.Tensor) -> torch.Tensor:
        if self.head is None:
            raise RuntimeError("this encoder was built without a classification head (num_classes=0)")
        return self.head(self.pool(bottleneck)[..., None, None])


class UNetDecoder(nn.Module):
    """Expanding path; ``extra_channels`` more channels are concatenated to the bottleneck input.

    The extra input is how the saliency bridge enters the first decoder stage.
    """

    def __init__(
        self,
        widths: Sequence[int] = (16, 32, 64, 128, 256),
        out_channels: int = 1,
        *,
        extra_channels: int = 0,
        dropout: float = 0.25,
        norm: str = "instance",
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        block_kw = dict(norm=norm, negative_slope=negative_slope, dropout=dropout)
        self.extra_channels = extra_channels
        deep_to_shallow = widths[::-1]
        in_channels = [deep_to_shallow[0] + extra_channels, *deep_to_shallow[1:-1]]
        self.ups = nn.ModuleList(
            Up(c_in, c_skip, c_skip, **block_kw) for c_in, c_skip in zip(in_channels, deep_to_shallow[1:])
        )
        self.out = nn.Conv2d(widths[0], out_channels, kernel_size=1)

    def forward(self, features: Sequence[torch.Tensor], extra: torch.Tensor | None = None) -> torch.Tensor:
        *skips, x = features
        if self.extra_channels:
            if extra is None or extra.shape[1] != self.extra_channels:
                got = None if extra is None else extra.shape[1]
                raise ValueError(f"decoder expects {self.extra_channels} extra bottleneck channels, got {got}")
            x = torch.cat([x, extra], dim=1)
        for up, skip in zip(self.ups, reversed(skips)):
            x = up(x, skip)
        return self.out(x)
