import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from multimix.models.factory import load_trained_model
from multimix.utils.checkpoints import load_checkpoint

from helpers import REPO_ROOT, tiny_cli_args

ROOT = REPO_ROOT
TRAIN = [sys.executable, str(ROOT / "scripts" / "train.py")]


def run(args, **kw):
    return subprocess.run(TRAIN + args, capture_output=True, text=True, cwd=ROOT, timeout=300, **kw)


def test_two_step_smoke_run_writes_the_whole_run_folder(tmp_path):
    out = tmp_path / "run"
    proc = run(
        ["--seg-labels", "4", "--cls-labels", "8", "--steps", "2", "--out", str(out), "--no-progress", *tiny_cli_args()]
    )
    assert proc.returncode == 0, proc.stderr
    for name in (
        "config.yaml",
        "split.json",
        "metrics.jsonl",
        "summary.json",
        "environment.json",
        "checkpoints/best.pt",
        "checkpoints/last.pt",
    ):
        assert (out / name).exists(), name
    assert list((out / "tb").iterdir())
    summary = json.loads((out / "summary.json").read_text())
    for domain in ("in_domain", "cross_domain"):
        assert set(summary[domain]) == {"accuracy", "f1_normal", "f1_pneumonia", "balanced_accuracy", "auroc", "dice"}
    assert summary["wall_seconds"] > 0 and summary["train_images_per_second"] > 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert (
        config["data"]["seg_labels"] == "4"
        and config["train"]["steps"] == 2
        and config["model"]["widths"] == [4, 8, 16]
    )
    split = json.loads((out / "split.json").read_text())
    assert len(split["seg"]["labeled"]) == 4 and len(split["cls"]["labeled"]) == 8
    assert not set(split["cls"]["labeled"]) & set(split["cls"]["unlabeled"])
    assert "in_domain" in proc.stdout and "cross_domain" in proc.stdout
    assert load_checkpoint(out / "checkpoints" / "best.pt")["run"]["config"]["model"]["name"] == "multimix"

    model, cfg = load_trained_model(out / "checkpoints" / "best.pt")
    assert cfg.data.image_size == 32 and not model.training
    proc = subprocess.run(
        [
            sys.executable,
            "examples/use_model.py",
            "--checkpoint",
            str(out / "checkpoints" / "best.pt"),
            "--out",
            str(tmp_path / "saliency.png"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "saliency.png").stat().st_size > 1000


@pytest.mark.parametrize("baseline", ["unet", "enc_ssl"])
def test_baseline_configs_train(tmp_path, baseline):
    proc = run(
        [
            "--config",
            f"configs/baselines/{baseline}.yaml",
            "--steps",
            "2",
            "--seg-labels",
            "4",
            "--cls-labels",
            "8",
            "--out",
            str(tmp_path / baseline),
            "--no-progress",
            *tiny_cli_args(),
        ]
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / baseline / "summary.json").read_text())
    assert ("dice" in summary["in_domain"]) == (baseline == "unet")
    assert ("accuracy" in summary["in_domain"]) == (baseline == "enc_ssl")


def test_bad_arguments_give_clear_errors(tmp_path):
    proc = run(["--cls-labels", "5000", "--steps", "1", "--out", str(tmp_path / "r"), *tiny_cli_args()])
    assert proc.returncode == 1 and "error:" in proc.stderr and "5000" in proc.stderr
    proc = run(["--set", "train.lrr=1", "--out", str(tmp_path / "r2")])
    assert proc.returncode == 1 and "unknown key 'train.lrr'" in proc.stderr
    proc = run(["--resume"])
    assert proc.returncode == 2 and "--resume needs --out" in proc.stderr


def test_sigkill_then_resume_continues_from_the_last_checkpoint(tmp_path):
    out = tmp_path / "run"
    args = [
        "--steps",
        "400",
        "--seg-labels",
        "4",
        "--cls-labels",
        "8",
        "--out",
        str(out),
        "--no-progress",
        *tiny_cli_args(),
    ]
    proc = subprocess.Popen(TRAIN + args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = out / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while time.time() < deadline and not (last.exists() and load_checkpoint(last)["step"] >= 6):
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(last)["step"]  # never a corrupt file, whenever the kill lands
    assert 6 <= killed_at < 400

    proc = run(["--out", str(out), "--resume", "--steps", str(killed_at + 4), "--no-progress"])
    assert proc.returncode == 0, proc.stderr
    assert load_checkpoint(last)["step"] == killed_at + 4
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in records if r["phase"] == "train"]
    assert train_steps == list(range(1, killed_at + 5))
