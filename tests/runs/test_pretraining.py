import json
import subprocess
import sys

import pytest

from multimix.runs.pretrain import run_pretraining
from multimix.utils.checkpoints import load_checkpoint

from helpers import REPO_ROOT, tiny_cli_args, tiny_config

ROOT = REPO_ROOT


@pytest.fixture(scope="module")
def simclr_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("simclr") / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/pretrain.py",
            "--method",
            "simclr",
            "--steps",
            "2",
            "--out",
            str(out),
            "--device",
            "cpu",
            "--no-progress",
            "--batch-size",
            "4",
            *tiny_cli_args(),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return out


def test_pretrain_cli_writes_a_run_folder_with_probe_results(simclr_run):
    for name in (
        "config.yaml",
        "environment.json",
        "metrics.jsonl",
        "summary.json",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
    ):
        assert (simclr_run / name).exists(), name
    summary = json.loads((simclr_run / "summary.json").read_text())
    assert summary["steps"] == 2 and 0 <= summary["online_probe_val_accuracy"] <= 1
    assert set(summary["linear_probe"]) >= {"pretrained", "random_init"}
    logged = [json.loads(line) for line in (simclr_run / "metrics.jsonl").read_text().splitlines()]
    assert any("ssl_loss" in r for r in logged) and any("probe_accuracy" in r for r in logged)


def test_barlow_pretraining_runs(tmp_path):
    cfg = tiny_config(
        ssl__method="barlow",
        ssl__barlow_dims="[32]",
        train__steps=2,
        train__out=str(tmp_path / "b"),
        data__batch_size=4,
    )
    summary = run_pretraining(cfg, progress=False)
    assert summary["steps"] == 2
    state = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["model"]
    assert state["ssl.head.layers.0.weight"].shape[0] == 32  # the one-layer Barlow projector


def test_pretraining_also_takes_the_pixels_of_unlabeled_sources(tmp_path):
    base = dict(ssl__method="barlow", ssl__barlow_dims="[32]", train__steps=1, data__batch_size=4)
    plain = run_pretraining(tiny_config(**base, train__out=str(tmp_path / "a")), progress=False)
    more = run_pretraining(
        tiny_config(**base, train__out=str(tmp_path / "b"), data__unlabeled_sources="[nih]"), progress=False
    )
    assert more["pretraining_images"] > plain["pretraining_images"]
