"""Networks by name: adding one is a decorated builder; what it has is read from the model."""

import pytest
import torch

from multimix.models import MultiMixNet, factory
from multimix.models.factory import available_models, build_model, make_model, model_heads, register_model
from multimix.runs.commands import train as train_command

from helpers import tiny_config


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setattr(factory, "MODELS", factory.MODELS.copy())

    @register_model("enc3")
    def three_class_encoder(**kwargs):
        return MultiMixNet(**{**kwargs, "num_classes": 3, "seg_head": False, "bridge": False})

    return three_class_encoder


def test_a_registered_model_is_built_by_name_everywhere(registered):
    assert "enc3" in available_models()
    assert train_command.parse_args(["--model", "enc3"]).model == "enc3"
    model = make_model(tiny_config(model__name="enc3", method__domain_weight=0.0))
    assert not model.has_seg_head and model.has_cls_head
    assert model.classify(torch.rand(2, 1, 32, 32)).cls_logits.shape == (2, 3)  # the registered 3-class head
    assert model_heads("enc3") == (False, True)


def test_the_packaged_models_and_their_heads():
    assert available_models() == ["enc", "multimix", "umtl", "umtls", "unet"]
    assert {name: model_heads(name) for name in available_models()} == {
        "enc": (False, True),
        "multimix": (True, True),
        "umtl": (True, True),
        "umtls": (True, True),
        "unet": (True, False),
    }
    assert build_model("umtls", widths=(4, 8)).has_bridge and not build_model("umtl", widths=(4, 8)).has_bridge
    # a variant keeps what makes it that variant
    assert not build_model("unet", widths=(4, 8), num_classes=2).has_cls_head


def test_names_are_registered_once_and_unknown_ones_are_listed(registered):
    with pytest.raises(ValueError, match="already registered"):
        register_model("multimix")(lambda **kwargs: MultiMixNet(**kwargs))
    with pytest.raises(ValueError, match=r"unknown model 'resunet'; available: enc, enc3"):
        build_model("resunet")
