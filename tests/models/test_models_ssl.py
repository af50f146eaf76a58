import pytest
import torch
from torch import nn

from multimix.models import (
    Backbone,
    BarlowProjector,
    ProjectionHead,
    SSLModel,
    UNetEncoder,
    UNetEncoderBackbone,
    available_backbones,
    build_backbone,
    build_model,
    load_unet_encoder_state,
    resnet_backbone,
)

W = (4, 8, 16)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    "name, kwargs, out_dim",
    [
        ("unet", dict(widths=W), 16),
        ("resnet18", dict(width_multiplier=0.5), 256),
        ("resnet50", dict(width_multiplier=0.25), 512),
    ],
)
def test_backbones_pool_one_channel_images_to_out_dim(name, kwargs, out_dim):
    backbone = build_backbone(name, **kwargs)
    assert isinstance(backbone, Backbone) and backbone.out_dim == out_dim
    features = backbone(torch.rand(2, 1, 32, 32))
    assert features.shape == (2, out_dim)


def test_resnet_stem_takes_in_channels_with_torchvision_geometry():
    stem = resnet_backbone("resnet18", width_multiplier=0.5, in_channels=3).net.conv1
    assert stem.in_channels == 3 and stem.out_channels == 32
    assert (stem.kernel_size, stem.stride, stem.padding) == ((7, 7), (2, 2), (3, 3))
    assert isinstance(resnet_backbone("resnet18", width_multiplier=0.5).net.fc, nn.Identity)


def test_width_multiplier_scales_every_stage_and_params_quadratically():
    base = n_params(resnet_backbone("resnet18"))
    for multiplier in (0.5, 2.0):
        backbone = resnet_backbone("resnet18", width_multiplier=multiplier)
        assert backbone.out_dim == int(512 * multiplier)
        assert backbone.net.layer1[0].conv1.out_channels == int(64 * multiplier)
        assert n_params(backbone) / base == pytest.approx(multiplier**2, rel=0.02)
    assert resnet_backbone("resnet50").out_dim == 2048


def test_unet_backbone_is_the_multimix_embedding_and_has_no_head():
    torch.manual_seed(0)
    backbone = build_backbone("unet", widths=W, dropout=0.0)
    assert backbone.encoder.head is None
    model = build_model("multimix", widths=W, dropout=0.0).eval()
    load_unet_encoder_state(model.encoder, backbone.encoder.state_dict())
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        expected = model.classify(x, return_embedding=True).embedding
        assert torch.allclose(backbone.eval()(x), expected)


def test_unet_encoder_weights_load_into_multimix_encoder(tmp_path):
    torch.manual_seed(0)
    backbone = build_backbone("unet", widths=W)
    torch.save(backbone.encoder.state_dict(), tmp_path / "encoder.pt")
    state = torch.load(tmp_path / "encoder.pt")
    target = build_model("multimix", widths=W).encoder
    head_before = {k: v.clone() for k, v in target.head.state_dict().items()}

    skipped = load_unet_encoder_state(target, state)

    assert skipped == ["head.3.weight", "head.3.bias"]
    loaded = target.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    assert all(torch.equal(target.head.state_dict()[k], v) for k, v in head_before.items())


def test_encoder_with_a_head_loads_strictly_and_foreign_heads_are_ignored():
    with_head = build_backbone("unet", widths=W, num_classes=2)
    target = build_model("multimix", widths=W).encoder
    target.load_state_dict(with_head.encoder.state_dict(), strict=True)
    three_classes = build_model("multimix", widths=W, num_classes=3).encoder
    assert load_unet_encoder_state(three_classes, with_head.encoder.state_dict())


@pytest.mark.parametrize("widths", [(4, 8), (4, 8, 32)])
def test_encoder_weights_of_another_shape_are_refused(widths):
    state = build_backbone("unet", widths=W).encoder.state_dict()
    with pytest.raises(RuntimeError):
        load_unet_encoder_state(UNetEncoder(widths=widths), state)


def test_build_backbone_rejects_unknown_names():
    assert available_backbones() == ["resnet18", "resnet50", "unet"]
    with pytest.raises(ValueError, match="available: resnet18, resnet50, unet"):
        build_backbone("vit")
    with pytest.raises(ValueError, match="width_multiplier"):
        resnet_backbone(width_multiplier=0)
    with pytest.raises(ValueError, match="available: resnet18, resnet50"):
        resnet_backbone("resnet34")


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_projection_head_shapes_and_intermediate_outputs(depth):
    head = ProjectionHead(16, hidden_dim=12, out_dim=8, depth=depth)
    assert len(head.layers) == depth
    x = torch.randn(4, 16)
    assert head(x).shape == (4, 8)
    assert torch.equal(head(x, upto=0), x)
    for k in range(depth + 1):
        assert head(x, upto=k).shape == (4, head.dim_at(k))
    assert head.dim_at(0) == 16 and head.dim_at(depth) == 8
    assert all(head.dim_at(k) == 12 for k in range(1, depth))
    with pytest.raises(ValueError, match=f"0..{depth}"):
        head(x, upto=depth + 1)


def test_projection_head_defaults_and_last_layer_without_bias_or_relu():
    head = ProjectionHead(16)
    assert (head.depth, head.hidden_dim, head.out_dim) == (3, 16, 128)
    first = head.layers[0]
    assert isinstance(first[-1], nn.ReLU) and (head(torch.randn(4, 16), upto=1) >= 0).all()
    linear, norm = head.layers[-1]
    assert linear.bias is None and not norm.affine
    assert not any(isinstance(m, nn.ReLU) for m in head.layers[-1].modules())
    assert (head(torch.randn(4, 16)) < 0).any()
    with pytest.raises(ValueError, match="depth"):
        ProjectionHead(16, depth=0)


def test_batchnorm_heads_need_two_samples_in_train_mode_only():
    head = ProjectionHead(16, depth=2)
    with pytest.raises(ValueError, match="at least 2"):
        head(torch.randn(1, 16))
    assert head(torch.randn(1, 16), upto=0).shape == (1, 16)
    assert head.eval()(torch.randn(1, 16)).shape == (1, 128)
    with pytest.raises(ValueError, match="at least 2"):
        BarlowProjector(16, hidden_dims=(8,), out_dim=4)(torch.randn(1, 16))


def test_barlow_projector_default_is_a_single_512_unit_linear():
    projector = BarlowProjector(32)
    assert len(projector.layers) == 1 and projector.out_dim == 512
    linear = projector.layers[0]
    assert isinstance(linear, nn.Linear) and linear.bias is None
    assert (linear.in_features, linear.out_features) == (32, 512)
    assert projector(torch.randn(1, 32)).shape == (1, 512)  # no BatchNorm, any batch
    same = BarlowProjector(32, hidden_dims=(), out_dim=512)
    assert [type(m) for m in same.layers] == [nn.Linear] and same.out_dim == 512


def test_barlow_projector_imagenet_shape():
    projector = BarlowProjector(16, hidden_dims=(32, 32), out_dim=24)
    kinds = [[type(m) for m in block] for block in projector.layers[:2]]
    assert kinds == [[nn.Linear, nn.BatchNorm1d, nn.ReLU]] * 2
    assert isinstance(projector.layers[2], nn.Linear) and projector.layers[2].bias is None
    assert projector(torch.randn(3, 16)).shape == (3, 24)
    with pytest.raises(ValueError, match="out_dim"):
        BarlowProjector(16, hidden_dims=())


def test_ssl_model_returns_features_and_projections():
    backbone = UNetEncoderBackbone(UNetEncoder(widths=W, num_classes=0))
    model = SSLModel(backbone, ProjectionHead(backbone.out_dim, out_dim=8, depth=2))
    features, projections = model(torch.rand(2, 1, 32, 32))
    assert features.shape == (2, 16) and projections.shape == (2, 8)
    (projections.sum() + features.sum()).backward()
    assert all(p.grad is not None for p in model.parameters())
