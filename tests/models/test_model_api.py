"""The Python API (docs/python-api.md) on a default run: build_model loads a default run's weights, and
load_trained_model returns (network, config)."""

import torch

from multimix.models import build_model, load_trained_model
from multimix.runs.train import run_training

from helpers import tiny_config


def test_the_readme_model_api_works_on_a_default_run(tmp_path):
    out = tmp_path / "run"
    # the default network (widths from the default config) on a tiny, short run
    cfg = tiny_config(train__steps=2, train__out=str(out), model__widths="[16, 32, 64, 128]")
    run_training(cfg, progress=False)
    best = out / "checkpoints" / "best.pt"
    model, loaded_cfg = load_trained_model(best)
    assert not model.training and loaded_cfg.model.widths == [16, 32, 64, 128]
    by_hand = build_model("multimix")
    by_hand.load_state_dict(torch.load(best, weights_only=True, map_location="cpu")["model"])
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(by_hand.eval()(x).cls_logits, model(x).cls_logits)
