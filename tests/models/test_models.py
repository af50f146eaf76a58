import pytest
import torch

from multimix.models import MultiMixNet, available_models, build_model, normalise_per_image
from multimix.models.multimix import PAPER_WIDTHS

W = (4, 8, 16)


def test_registry_lists_the_paper_variants():
    assert available_models() == ["enc", "multimix", "umtl", "umtls", "unet"]
    with pytest.raises(ValueError, match="available: enc, multimix"):
        build_model("resnet")


@pytest.mark.parametrize(
    "name, seg, cls, sal",
    [
        ("unet", True, False, False),
        ("enc", False, True, False),
        ("umtl", True, True, False),
        ("umtls", True, True, True),
        ("multimix", True, True, True),
    ],
)
def test_variant_outputs(name, seg, cls, sal):
    model = build_model(name, widths=W)
    out = model(torch.rand(3, 1, 32, 48))
    assert (out.seg_logits is not None) == seg
    assert (out.cls_logits is not None) == cls
    assert (out.saliency is not None) == sal
    if seg:
        assert out.seg_logits.shape == (3, 1, 32, 48)
    if cls:
        assert out.cls_logits.shape == (3, 2)
    if sal:
        assert out.saliency.shape == (3, 1, 32, 48)
        assert not out.saliency.requires_grad


def test_paper_defaults():
    assert build_model("multimix").encoder.widths == (16, 32, 64, 128)  # the training default (model.widths)
    model = build_model("multimix", widths=PAPER_WIDTHS)
    assert model.encoder.widths == (16, 32, 64, 128, 256)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    acts = [m for m in model.modules() if isinstance(m, torch.nn.LeakyReLU)]
    drops = [m for m in model.modules() if isinstance(m, torch.nn.Dropout2d)]
    assert norms and acts and drops
    assert all(a.negative_slope == 0.2 for a in acts)
    assert all(d.p == 0.25 for d in drops)
    # the bridge adds image + saliency (2 channels) to the 256-channel bottleneck
    assert model.decoder.ups[0].upsample.in_channels == 258


def test_configurable_channels_classes_and_depth():
    model = build_model("umtls", in_channels=3, num_classes=4, seg_channels=2, widths=(4, 8))
    out = model(torch.rand(2, 3, 16, 16))
    assert out.cls_logits.shape == (2, 4) and out.seg_logits.shape == (2, 2, 16, 16)
    assert out.saliency.shape == (2, 1, 16, 16)


def test_indivisible_size_names_the_sizes():
    model = build_model("multimix", widths=W)  # 3 levels -> divisible by 4
    with pytest.raises(ValueError, match="30x32 must be divisible by 4"):
        model(torch.rand(1, 1, 30, 32))


def test_saliency_in_eval_under_no_grad_leaves_no_parameter_grads():
    torch.manual_seed(0)
    model = build_model("multimix", widths=W).eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        out = model(x)
    assert all(p.grad is None for p in model.parameters())
    assert not out.seg_logits.requires_grad
    sal = out.saliency
    assert torch.allclose(sal.flatten(1).amax(1), torch.ones(2))
    assert torch.allclose(sal.flatten(1).amin(1), torch.zeros(2))

    # the same map computed by hand: |d max logit / d x|, min-max normalised per image
    leaf = x.clone().requires_grad_(True)
    logits = model.classify(leaf).cls_logits
    (grad,) = torch.autograd.grad(logits.max(dim=1).values.sum(), leaf)
    assert torch.allclose(sal, normalise_per_image(grad.abs()), atol=1e-5)


def test_training_forward_keeps_graph_for_the_loss_and_grads_reach_all_parts():
    model = build_model("multimix", widths=W).train()
    out = model(torch.rand(2, 1, 32, 32))
    (out.seg_logits.mean() + out.cls_logits.sum()).backward()
    assert model.encoder.stem[0].conv.weight.grad is not None
    assert model.decoder.out.weight.grad is not None


def test_saliency_is_per_image():
    model = build_model("multimix", widths=W).eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        both = model(x).saliency
        first = model(x[:1]).saliency
    assert torch.allclose(both[:1], first, atol=1e-5)


def test_classify_never_runs_the_decoder():
    model = build_model("multimix", widths=W)
    calls = []
    model.decoder.register_forward_hook(lambda *a: calls.append(1))
    out = model.classify(torch.rand(2, 1, 32, 32), return_embedding=True)
    assert out.cls_logits.shape == (2, 2) and out.seg_logits is None and out.saliency is None
    assert out.embedding.shape == (2, 16)
    assert calls == []


def test_features_on_request():
    model = build_model("umtl", widths=W)
    out = model(torch.rand(1, 1, 32, 32), return_features=True)
    assert [f.shape[1] for f in out.features] == list(W)
    assert [f.shape[-1] for f in out.features] == [32, 16, 8]
    assert out.embedding.shape == (1, 16)


def test_invalid_combinations():
    with pytest.raises(ValueError, match="bridge needs"):
        MultiMixNet(num_classes=0, bridge=True)
    with pytest.raises(ValueError, match="needs a segmentation decoder"):
        MultiMixNet(num_classes=0, seg_head=False, bridge=False)


def test_lung_pooling_reads_the_bottleneck_where_the_lung_map_says():
    torch.manual_seed(0)
    model = build_model("multimix", widths=W, cls_pooling="lung", dropout=0.0).eval()
    bottleneck = torch.rand(2, W[-1], 8, 8) + 0.1
    gate = model.encoder.lung_gate
    with torch.no_grad():
        gate.weight.zero_()
        gate.bias.fill_(20.0)  # a map of ones: lung pooling is the global average
        assert torch.allclose(model.encoder.pool(bottleneck), bottleneck.mean(dim=(2, 3)), atol=1e-5)
        bottleneck[:, :, :, 4:] = 0.0  # features live on the left half only
        gate.weight.zero_()
        gate.weight[0, 0] = 1000.0  # the map opens where channel 0 is positive: the left half
        gate.bias.fill_(-50.0)
        pooled = model.encoder.pool(bottleneck)
    assert torch.allclose(pooled, bottleneck[:, :, :, :4].mean(dim=(2, 3)), atol=1e-4)


def test_lung_pooling_outputs_and_saliency_still_work():
    model = build_model("multimix", widths=W, cls_pooling="lung").eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, 32, 32), return_features=True)
    assert out.lung_logits.shape == (2, 1, 8, 8) and out.cls_logits.shape == (2, 2)
    assert out.saliency.shape == (2, 1, 32, 32) and out.saliency.max() > 0
    assert torch.allclose(out.embedding, model.encoder.pool(out.features[-1]))
    assert build_model("multimix", widths=W).forward(torch.rand(1, 1, 32, 32)).lung_logits is None
    with pytest.raises(ValueError, match="both heads"):
        build_model("enc", widths=W, cls_pooling="lung")
    with pytest.raises(ValueError, match="pooling"):
        build_model("multimix", widths=W, cls_pooling="max")


def test_global_pooling_keeps_the_checkpoint_keys():
    keys = set(build_model("multimix", widths=W).state_dict())
    assert {"encoder.head.3.weight", "encoder.head.3.bias"} <= keys and not any("lung_gate" in k for k in keys)
    assert "encoder.lung_gate.weight" in build_model("multimix", widths=W, cls_pooling="lung").state_dict()
