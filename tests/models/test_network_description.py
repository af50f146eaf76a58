"""Checkpoints describe their network (class + constructor arguments, plain data): the factory
rebuilds it from that alone, and checkpoints written before still load."""

import copy
import json

import pytest
import torch

from multimix.models import MultiMixNet, build_model
from multimix.models.factory import build_network, describe_network, model_from_checkpoint
from multimix.utils.checkpoints import load_checkpoint


def _outputs(model, images):
    with torch.no_grad():
        out = model(images)
    return out.cls_logits, out.seg_logits


def test_description_rebuilds_the_same_network():
    model = build_model("umtl", widths=(4, 8, 16), dropout=0.0, cls_pooling="global", domain_head=True)
    description = describe_network(model)
    assert description["class"] == "MultiMixNet" and description["kwargs"]["bridge"] is False
    json.dumps(description)  # plain data: it goes into checkpoints and JSON as it is
    rebuilt = build_network(json.loads(json.dumps(description)))
    rebuilt.load_state_dict(model.state_dict())  # same parameters, same shapes
    images = torch.rand(2, 1, 32, 32)
    for a, b in zip(_outputs(model.eval(), images), _outputs(rebuilt.eval(), images)):
        assert torch.equal(a, b)


def test_a_trained_checkpoint_rebuilds_from_its_description_alone(trained_checkpoint):
    state = load_checkpoint(trained_checkpoint)
    original, _ = model_from_checkpoint(state, origin="best.pt")
    assert state["run"]["network"] == describe_network(original)
    edited = copy.deepcopy(state)
    edited["run"]["config"]["model"]["widths"] = [64, 128]  # a config that no longer describes the weights
    rebuilt, _ = model_from_checkpoint(edited, origin="best.pt")
    images = torch.rand(1, 1, 32, 32)
    for a, b in zip(_outputs(original, images), _outputs(rebuilt, images)):
        assert torch.equal(a, b)


def test_a_checkpoint_written_before_descriptions_still_loads(trained_checkpoint):
    state = load_checkpoint(trained_checkpoint)
    older = copy.deepcopy(state)
    del older["run"]["network"]
    model, cfg = model_from_checkpoint(older, origin="old.pt")
    assert isinstance(model, MultiMixNet) and list(model.encoder.widths) == list(cfg.model.widths)
    images = torch.rand(1, 1, 32, 32)
    for a, b in zip(_outputs(model, images), _outputs(model_from_checkpoint(state, origin="new.pt")[0], images)):
        assert torch.equal(a, b)


def test_weights_that_do_not_fit_the_description_are_one_clear_error(trained_checkpoint):
    state = load_checkpoint(trained_checkpoint)
    state["run"]["network"]["kwargs"]["widths"] = [8, 16, 32]
    with pytest.raises(ValueError, match=r"edited\.pt: its weights do not fit the network it describes"):
        model_from_checkpoint(state, origin="edited.pt")
    older = load_checkpoint(trained_checkpoint)  # an older checkpoint with a hand-edited config
    del older["run"]["network"]
    older["run"]["config"]["model"]["widths"] = [8, 16, 32]
    with pytest.raises(ValueError, match="do not fit"):
        model_from_checkpoint(older, origin="old.pt")


@pytest.mark.parametrize(
    "description, message",
    [
        ({"class": "ResNet9000", "kwargs": {}}, "unknown network class 'ResNet9000'"),
        ({"class": "MultiMixNet", "kwargs": {"wings": 2}}, "cannot rebuild the MultiMixNet"),
        ("MultiMixNet", "unknown network class None"),
    ],
)
def test_a_description_that_cannot_work_is_named(description, message):
    with pytest.raises(ValueError, match=message):
        build_network(description, origin="x.pt")
