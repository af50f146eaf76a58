"""Two CPU processes under torchrun: gradients in sync, disjoint shards, one writer."""

import json
import subprocess
import sys

import pytest
import torch

from multimix.data.streams import StepBatches
from multimix.engine.distributed import (
    DistributedContext,
    all_gather,
    any_rank,
    init_distributed,
    parameter_digest,
)
from multimix.models import build_model

from helpers import REPO_ROOT, tiny_cli_args

ROOT = REPO_ROOT


def torchrun(
    out, *extra, script: str = "train.py", budgets: tuple[str, ...] = ("--seg-labels", "4", "--cls-labels", "8")
):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        f"scripts/{script}",
        *budgets,
        "--device",
        "cpu",
        "--out",
        str(out),
        "--no-progress",
        *tiny_cli_args(),
        *extra,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="this torch build has no torch.distributed")
def test_two_processes_train_in_sync_with_one_writer_and_resume(tmp_path):
    out = tmp_path / "ddp"
    proc = torchrun(out, "--steps", "4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["distributed"] == {
        "world_size": 2,
        "backend": "gloo",
        "parameters_identical": True,
        "ranks_drew_disjoint_images": True,
    }
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    train_steps = [
        json.loads(line)["step"]
        for line in (out / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["phase"] == "train"
    ]
    assert train_steps == [1, 2, 3, 4]  # logged once, by rank 0
    assert proc.stdout.count("run folder:") == 1

    proc = torchrun(out, "--steps", "6", "--resume")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 6 and summary["distributed"]["parameters_identical"]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="this torch build has no torch.distributed")
def test_fine_tuning_and_distillation_run_on_two_processes(tmp_path):
    in_sync = {"world_size": 2, "backend": "gloo", "parameters_identical": True, "ranks_drew_disjoint_images": True}
    proc = torchrun(tmp_path / "ft", "--steps", "2", script="finetune.py", budgets=("--labels", "8"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "ft" / "summary.json").read_text())["distributed"] == in_sync
    teacher = tmp_path / "ft" / "checkpoints" / "best.pt"
    proc = torchrun(tmp_path / "ds", "--steps", "2", "--teacher", str(teacher), script="distill.py", budgets=())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "ds" / "summary.json").read_text())["distributed"] == in_sync


def test_ranks_take_disjoint_positions_of_every_stream():
    from multimix.data.synthetic import generate_records

    pool = generate_records(12, site="chex", image_size=16, seed=0)
    shards = [
        StepBatches({"cls_x": pool}, image_size=16, batch_size=2, seed=0, total_steps=3, rank=r, world_size=3)
        for r in range(3)
    ]
    for step in range(2):
        drawn = [set(s.indices("cls_x", step)) for s in shards]
        assert sum(len(d) for d in drawn) == len(set().union(*drawn)) == 6


def test_single_process_context_is_a_no_op():
    context = init_distributed("cpu")
    assert context == DistributedContext() and not context.enabled and context.is_main
    assert all_gather(context, {"a": 1}) == [{"a": 1}]
    assert any_rank(context, True, torch.device("cpu")) is True


def test_parameter_digest_sees_any_change():
    model = build_model("umtls", widths=(4, 8))
    before = parameter_digest(model)
    assert parameter_digest(model) == before
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] += 1e-7
    assert parameter_digest(model) != before
