"""MultiMix inference with the saliency's input gradient written out as ordinary layers.

``MultiMixNet`` computes the bridge's saliency with ``torch.autograd.grad``, which an exported
graph (ONNX, TorchScript) cannot hold: the runtimes have no autograd. In eval mode the encoder
is a chain of a few layer kinds, so the gradient of the predicted class score with respect to
the image can be computed by hand, layer by layer, from the forward activations:

- linear head on the global average: the class row of the weight, spread evenly over the grid;
- LeakyReLU: the gradient times 1 where its input was positive, else times the slope;
- instance norm (affine): ``(g' - mean(g') - x^ mean(g' x^)) / sigma`` with ``g' = gamma g``;
- batch norm (eval): the gradient times ``gamma / sqrt(running_var + eps)``;
- 3x3 convolution: the transposed convolution with the same weight;
- 2x2 max pooling: the gradient routed to the first maximum of each window (as PyTorch does);
- dropout: nothing (identity in eval).

:class:`ExplicitSaliencyNet` runs that chain beside the usual forward and returns the class
probabilities and lung probabilities; its saliency equals autograd's to float rounding (tested),
so an exported model decides and segments as the PyTorch one does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from multimix.models.multimix import MultiMixNet
from multimix.models.saliency import normalise_per_image

_PASSTHROUGH = (nn.Dropout, nn.Dropout2d, nn.Identity)
_SUPPORTED = (nn.Conv2d, nn.InstanceNorm2d, nn.BatchNorm2d, nn.LeakyReLU, nn.MaxPool2d, *_PASSTHROUGH)


def _leaf_layers(module: nn.Module) -> list[nn.Module]:
    """The leaf layers of a sequential block, in the order they run."""
    return [m for m in module.modules() if not list(m.children())]


class ExplicitSaliencyNet(nn.Module):
    """A trained :class:`MultiMixNet` (bridge, both heads, global pooling) for export.

    ``forward(image)`` takes ``(N, C, H, W)`` images as the predictor feeds them (intensity
    already applied, ``H``, ``W`` divisible by the network's size divisor) and returns
    ``(class_probs (N, classes), lung_probs (N, seg_channels, H, W))``. The wrapped network's
    weights are shared, not copied; it must be in eval mode.

    Raises:
        ValueError: for a network this cannot express (no bridge, lung pooling, a layer kind
            outside the list of the module docstring), naming what is missing.
    """

    def __init__(self, network: MultiMixNet) -> None:
        super().__init__()
        if not (network.has_bridge and network.decoder is not None and network.encoder.head is not None):
            raise ValueError("export needs a network with the saliency bridge and both heads (MultiMix, UMTLS)")
        if network.encoder.lung_gate is not None:
            raise ValueError("export does not cover model.cls_pooling 'lung' (its pooling weights feed the gradient)")
        self.network = network.eval()
        self.stages = [_leaf_layers(network.encoder.stem)] + [_leaf_layers(down) for down in network.encoder.downs]
        for layer in (layer for stage in self.stages for layer in stage):
            if not isinstance(layer, _SUPPORTED):
                raise ValueError(f"export cannot write the input gradient of a {type(layer).__name__} layer")
        linears = [m for m in network.encoder.head.modules() if isinstance(m, nn.Linear)]
        if len(linears) != 1:
            raise ValueError("export expects one linear layer in the class head")
        self.linear = linears[0]
        self.eval()  # dropout off: the gradient rules above are those of eval mode

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features, inputs = self._encode(image)
        logits = self.linear(features[-1].mean(dim=(2, 3)))
        saliency = self._saliency(logits, features[-1], inputs)
        bridge = self.network.bridge
        assert bridge is not None and self.network.decoder is not None  # checked in __init__
        pair = torch.cat([image, saliency], dim=1)
        factor = image.shape[-1] // features[-1].shape[-1]
        # area resizing by a whole factor is average pooling (the bridge's F.interpolate "area")
        extra = F.avg_pool2d(pair, kernel_size=factor) if factor > 1 else pair
        seg_logits = self.network.decoder(features, extra)
        return torch.softmax(logits, dim=1), torch.sigmoid(seg_logits)

    def _encode(self, image: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        """Every stage's output (the decoder's skips) and every layer's input (for the gradient)."""
        features, inputs, x = [], [], image
        for stage in self.stages:
            stage_inputs = []
            for layer in stage:
                stage_inputs.append(x)
                x = layer(x)
            inputs.append(stage_inputs)
            features.append(x)
        return features, inputs

    def _saliency(
        self, logits: torch.Tensor, bottleneck: torch.Tensor, inputs: list[list[torch.Tensor]]
    ) -> torch.Tensor:
        classes = torch.arange(logits.shape[1], device=logits.device)
        chosen = (classes[None, :] == logits.argmax(dim=1, keepdim=True)).to(logits.dtype)
        pooled_grad = chosen @ self.linear.weight  # d max_c logit_c / d pooled features
        height, width = bottleneck.shape[-2:]
        grad = (pooled_grad[:, :, None, None] / (height * width)).expand_as(bottleneck)
        for stage, stage_inputs in zip(reversed(self.stages), reversed(inputs), strict=True):
            for layer, x in zip(reversed(stage), reversed(stage_inputs), strict=True):
                grad = _input_grad(layer, x, grad)
        return normalise_per_image(grad.abs().amax(dim=1, keepdim=True))


def _input_grad(layer: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """The gradient at ``layer``'s input ``x`` given the gradient at its output."""
    if isinstance(layer, nn.Conv2d):
        return _conv_input_grad(layer, grad)
    if isinstance(layer, nn.LeakyReLU):
        return grad * torch.where(x > 0, torch.ones_like(x), torch.full_like(x, layer.negative_slope))
    if isinstance(layer, nn.InstanceNorm2d):
        return _instance_norm_input_grad(layer, x, grad)
    if isinstance(layer, nn.BatchNorm2d):
        assert layer.running_var is not None  # eval-mode batch norm uses its running statistics
        scale = torch.rsqrt(layer.running_var + layer.eps)
        if layer.weight is not None:
            scale = scale * layer.weight
        return grad * scale[None, :, None, None]
    if isinstance(layer, nn.MaxPool2d):
        return _max_pool_input_grad(x, grad)
    return grad  # dropout and identity in eval


def _conv_input_grad(conv: nn.Conv2d, grad: torch.Tensor) -> torch.Tensor:
    if conv.groups != 1 or conv.dilation != (1, 1) or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise ValueError("export covers plain convolutions (no groups, dilation, string or non-zero padding)")
    return F.conv_transpose2d(grad, conv.weight, stride=conv.stride, padding=conv.padding)


def _instance_norm_input_grad(norm: nn.InstanceNorm2d, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=(2, 3), keepdim=True)
    inv_std = torch.rsqrt(x.var(dim=(2, 3), unbiased=False, keepdim=True) + norm.eps)
    normed = (x - mean) * inv_std
    if norm.weight is not None:
        grad = grad * norm.weight[None, :, None, None]
    centred = grad - grad.mean(dim=(2, 3), keepdim=True)
    return inv_std * (centred - normed * (grad * normed).mean(dim=(2, 3), keepdim=True))


def _max_pool_input_grad(x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """2x2, stride 2: each window's gradient goes to its first maximum (row-major), like PyTorch."""
    batch, channels, height, width = x.shape
    windows = x.reshape(batch, channels, height // 2, 2, width // 2, 2).permute(0, 1, 2, 4, 3, 5)
    windows = windows.reshape(batch, channels, height // 2, width // 2, 4)
    is_max = (windows == windows.amax(dim=-1, keepdim=True)).to(grad.dtype)
    first = is_max * (torch.cumsum(is_max, dim=-1) == 1).to(grad.dtype)
    routed = first * grad[..., None]
    routed = routed.reshape(batch, channels, height // 2, width // 2, 2, 2).permute(0, 1, 2, 4, 3, 5)
    return routed.reshape(batch, channels, height, width)
