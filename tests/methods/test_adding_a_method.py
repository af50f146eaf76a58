"""Adding a self-supervised method is one module and its registration: the one below (a
cosine-distance twin loss on a small projector) pretrains through `multimix pretrain`, and
fine-tuning names what it was pretrained with, without any other file knowing about it."""

from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from multimix.config.schema import Config
from multimix.methods import available_methods, register_method
from multimix.methods import base as methods_base
from multimix.methods.simclr import SimCLRMethod
from multimix.runs.commands import pretrain as pretrain_command
from multimix.runs.finetune import make_finetune_model
from multimix.runs.pretrain import run_pretraining
from multimix.utils.checkpoints import load_checkpoint

from helpers import tiny_config


@dataclass
class CosineTwins(SimCLRMethod):
    """1 - cosine similarity of the two views' projections."""

    display_name = "CosineTwins"

    @classmethod
    def from_config(cls, cfg: Config, **context: Any) -> "CosineTwins":
        return cls(optimizer=cfg.ssl.optimizer)

    @classmethod
    def head_spec(cls, cfg: Config) -> dict[str, Any]:
        return {"kind": "barlow", "hidden_dims": [16]}  # an existing head kind: no model code to write

    def ssl_loss(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return (1 - F.cosine_similarity(z1, z2)).mean()


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    """The registration line, undone after each test so the other tests see the packaged methods."""
    monkeypatch.setattr(methods_base, "METHODS", methods_base.METHODS.copy())
    register_method("cosine-twins")(CosineTwins)


def test_a_registered_method_is_a_pretraining_choice():
    assert "cosine-twins" in available_methods(pretraining=True)
    assert "cosine-twins" not in available_methods(pretraining=False)
    assert {"simclr", "barlow"} <= set(available_methods(pretraining=True))
    assert "multimix" in available_methods(pretraining=False)
    assert pretrain_command.parse_args(["--method", "cosine-twins"]).method == "cosine-twins"


def test_a_registered_method_pretrains_and_fine_tuning_names_it(tmp_path):
    out = tmp_path / "pretrain"
    cfg = tiny_config(ssl__method="cosine-twins", train__steps=2, train__out=str(out), data__batch_size=4)
    assert run_pretraining(cfg, progress=False)["steps"] == 2
    run = load_checkpoint(out / "checkpoints" / "last.pt")["run"]
    assert run["architecture"]["method"] == "cosine-twins" and run["architecture"]["head"]["hidden_dims"] == [16]
    model, architecture = make_finetune_model(tiny_config(ssl__pretrained=str(out / "checkpoints" / "last.pt")))
    assert model.name == "CosineTwins-FT (unet)" and architecture["method"] == "cosine-twins"
