import json
import subprocess
import sys

import pytest
import torch

from multimix.data.sources.synthetic import generate_records
from multimix.data.streams import ContrastiveBatches
from multimix.methods.simclr import probe_terms
from multimix.models.factory import PRETRAINED_ENCODER_PREFIX, load_pretrained_encoder, make_model
from multimix.runs.pretrain import make_pretrain_model, run_pretraining
from multimix.utils.checkpoints import load_checkpoint

from helpers import REPO_ROOT, tiny_cli_args, tiny_config

ROOT = REPO_ROOT


@pytest.fixture(scope="module")
def simclr_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("simclr") / "run"
    proc = subprocess.run([sys.executable, "scripts/pretrain.py", "--method", "simclr", "--steps", "2", "--out", str(out),
                           "--device", "cpu", "--no-progress", "--batch-size", "4", *tiny_cli_args()],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out


def test_pretrain_cli_writes_a_run_folder_with_probe_results(simclr_run):
    for name in ("config.yaml", "environment.json", "metrics.jsonl", "summary.json", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (simclr_run / name).exists(), name
    summary = json.loads((simclr_run / "summary.json").read_text())
    assert summary["steps"] == 2 and 0 <= summary["online_probe_val_accuracy"] <= 1
    assert set(summary["linear_probe"]) >= {"pretrained", "random_init"}
    logged = [json.loads(line) for line in (simclr_run / "metrics.jsonl").read_text().splitlines()]
    assert any("ssl_loss" in r for r in logged) and any("probe_accuracy" in r for r in logged)


def test_barlow_pretraining_runs(tmp_path):
    cfg = tiny_config(ssl__method="barlow", ssl__barlow_dims="[32]", train__steps=2, train__out=str(tmp_path / "b"),
                      data__batch_size=4)
    summary = run_pretraining(cfg, progress=False)
    assert summary["steps"] == 2
    state = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["model"]
    assert state["ssl.head.layers.0.weight"].shape[0] == 32  # the one-layer Barlow projector


def test_init_encoder_copies_the_pretrained_encoder_into_multimix(simclr_run):
    checkpoint = simclr_run / "checkpoints" / "last.pt"
    pretrained = load_checkpoint(checkpoint)["model"]
    model = make_model(tiny_config())
    load_pretrained_encoder(model, checkpoint)
    for key, value in model.encoder.state_dict().items():
        if not key.startswith("head."):
            assert torch.equal(value, pretrained[PRETRAINED_ENCODER_PREFIX + key]), key
    with pytest.raises(ValueError, match="does not fit model.widths"):
        load_pretrained_encoder(make_model(tiny_config(model__widths="[8, 16, 32]")), checkpoint)


def test_train_cli_starts_from_a_pretrained_encoder(tmp_path, simclr_run):
    out = tmp_path / "init"
    proc = subprocess.run([sys.executable, "scripts/train.py", "--init-encoder", str(simclr_run / "checkpoints" / "last.pt"),
                           "--seg-labels", "4", "--cls-labels", "8", "--steps", "2", "--out", str(out), "--no-progress",
                           *tiny_cli_args()], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "encoder initialised from" in proc.stdout and (out / "summary.json").exists()


def test_a_resnet_checkpoint_cannot_initialise_multimix(tmp_path):
    cfg = tiny_config(ssl__backbone="resnet18", ssl__width_multiplier=0.125, train__steps=1,
                      train__out=str(tmp_path / "r"), data__batch_size=4)
    run_pretraining(cfg, progress=False)
    with pytest.raises(ValueError, match="no U-Net encoder"):
        load_pretrained_encoder(make_model(tiny_config()), tmp_path / "r" / "checkpoints" / "last.pt")


def test_contrastive_batches_give_two_different_views_and_labels():
    records = generate_records(6, site="chex", image_size=32, seed=0)
    records[0].label = None
    batches = ContrastiveBatches(records, image_size=32, batch_size=3, seed=0, total_steps=4)
    first = batches[0]
    assert first["view1"].shape == first["view2"].shape == (3, 1, 32, 32)
    assert not torch.equal(first["view1"], first["view2"])
    assert torch.equal(batches[0]["view1"], first["view1"])  # a step is a pure function of (seed, step)
    every_label = torch.cat([batches[i]["label"] for i in range(2)])
    assert (every_label == -1).sum() == 1  # the one unlabeled record, drawn once per pass


def test_probe_term_without_labels_is_zero_but_touches_the_probe():
    model = make_pretrain_model(tiny_config())
    features = torch.randn(3, model.backbone.out_dim, requires_grad=True)
    loss, logs = probe_terms(model, features, torch.tensor([-1, -1, -1]))
    loss.backward()
    assert loss.item() == 0 and logs == {} and model.probe[1].weight.grad is not None and features.grad is None
