"""Small builders shared by the tests."""

from __future__ import annotations

from pathlib import Path

from multimix.config import Config, load_config

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"  # small real samples beside the checkout

TINY = {
    "model.widths": "[4, 8, 16]",
    "data.image_size": 32,
    "data.seg_pool": 12,
    "data.cls_pool": 24,
    "data.val_per_site": 4,
    "data.test_per_site": 4,
    "data.seg_labels": "4",
    "data.cls_labels": "8",
    "data.batch_size": 2,
    "train.steps_per_epoch": 2,
    "train.warmup_steps": 0,
    "train.log_every": 1,
    "train.device": "cpu",
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
