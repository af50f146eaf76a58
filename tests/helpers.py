"""Small builders shared by the tests."""

from __future__ import annotations

from pathlib import Path

import torch

from multimix.config import Config, TrainConfig, load_config
from multimix.engine.trainer import Trainer
from multimix.methods import MultiMixMethod
from multimix.models import build_model

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"  # small real samples beside the checkout

TINY = {
    "model.widths": "[4, 8, 16]",
    "data.image_size": 32,
    "synthetic.seg_pool": 12,
    "synthetic.cls_pool": 24,
    "synthetic.val_per_site": 4,
    "synthetic.test_per_site": 4,
    "data.seg_labels": "4",
    "data.cls_labels": "8",
    "data.batch_size": 2,
    "train.steps_per_epoch": 2,
    "train.warmup_steps": 0,
    "train.log_every": 1,
    "train.device": "cpu",
    "train.precision": "fp32",  # `auto` measures the CPU; a busy machine may choose otherwise between two runs
}


def tiny_config(**overrides) -> Config:
    values = dict(TINY)
    values.update({k.replace("__", "."): v for k, v in overrides.items()})
    return load_config(None, values)


def tiny_cli_args() -> list[str]:
    args = []
    for key, value in TINY.items():
        if key in ("data.seg_labels", "data.cls_labels"):  # tests give these as flags
            continue
        args += ["--set", f"{key}={value}"]
    return args


def fixed_batches(start_step):
    for step in range(start_step, 1000):
        g = torch.Generator().manual_seed(step)
        masks = (torch.rand(2, 1, 16, 16, generator=g) > 0.5).float()
        yield {
            "seg_x": masks,
            "seg_y": masks,
            "cls_x": torch.rand(2, 1, 16, 16, generator=g),
            "cls_y": torch.tensor([0, 1]),
        }


def make_trainer(out, steps=6, method=None, **cfg):
    torch.manual_seed(0)
    model = build_model("umtls", widths=(4, 8), dropout=0.25)
    cfg.setdefault("precision", "fp32")  # `auto` measures the CPU, which a busy machine may measure otherwise
    config = TrainConfig(steps=steps, steps_per_epoch=2, lr=1e-2, warmup_steps=0, device="cpu", log_every=1, **cfg)
    method = method or MultiMixMethod(cls_ssl=False, seg_ssl=False)
    evaluate = lambda m: {"score": -sum(float(p.detach().abs().sum()) for p in m.parameters())}  # noqa: E731
    optimizer, scheduler = method.configure_optimizer(model, config)
    return Trainer(
        model,
        method,
        fixed_batches,
        config,
        out,
        optimizer=optimizer,
        scheduler=scheduler,
        evaluate=evaluate,
        run_info={"note": "test"},
    )


def params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])
