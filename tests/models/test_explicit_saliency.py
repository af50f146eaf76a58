"""The saliency's input gradient written as layers equals autograd's, for every layer kind it covers."""

import pytest
import torch

from multimix.models import build_model
from multimix.models.explicit_saliency import ExplicitSaliencyNet


def perturbed(model):
    """Weights moved off their initial values, so every norm's affine parameters matter."""
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.mark.parametrize("norm", ["instance", "batch", None])
def test_outputs_and_saliency_equal_the_autograd_network(norm):
    model = perturbed(build_model("multimix", widths=(4, 8, 16), norm=norm))
    images = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    images[:, :, :8] = 0.0  # a flat band: equal values in max-pool windows (ties)
    explicit = ExplicitSaliencyNet(model)
    with torch.no_grad():
        reference = model(images)
        class_probs, lung_probs = explicit(images)
        features, inputs = explicit._encode(images)
        saliency = explicit._saliency(explicit.linear(features[-1].mean(dim=(2, 3))), features[-1], inputs)
    torch.testing.assert_close(saliency, reference.saliency, atol=1e-5, rtol=0)
    torch.testing.assert_close(class_probs, reference.cls_logits.softmax(dim=1), atol=1e-6, rtol=0)
    torch.testing.assert_close(lung_probs, reference.seg_logits.sigmoid(), atol=1e-5, rtol=0)


def test_max_pool_gradient_goes_to_the_first_maximum_like_pytorch():
    from multimix.models.explicit_saliency import _max_pool_input_grad

    x = torch.tensor([[[[1.0, 3.0, 2.0, 2.0], [3.0, 0.0, 2.0, 2.0]]]])  # ties in both windows
    x.requires_grad_(True)
    torch.nn.functional.max_pool2d(x, 2).backward(torch.tensor([[[[5.0, 7.0]]]]))
    expected = torch.tensor([[[[0.0, 5.0, 7.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]])
    torch.testing.assert_close(x.grad, expected)
    torch.testing.assert_close(_max_pool_input_grad(x.detach(), torch.tensor([[[[5.0, 7.0]]]])), expected)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"bridge": False}, "saliency bridge"),
        ({"cls_pooling": "lung"}, "cls_pooling 'lung'"),
    ],
)
def test_networks_it_cannot_express_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ExplicitSaliencyNet(build_model("multimix", widths=(4, 8), **kwargs))
