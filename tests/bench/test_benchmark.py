import json
import subprocess
import sys

import pytest
import torch

from multimix.bench.training_step import (
    PeakRSS,
    SpeedOptions,
    benchmark_model,
    check_agreement,
    make_batch,
    naive_predict,
    predict_call,
    train_step_call,
)
from multimix.methods import MultiMixMethod

from helpers import REPO_ROOT

ROOT = REPO_ROOT


def test_naive_and_our_step_compute_the_same_loss_and_segmentation():
    agreement = check_agreement(image_size=32, batch_size=2)
    assert agreement.ok, agreement
    assert agreement.loss_naive > 0


def test_both_steps_update_the_weights():
    batch = make_batch(32, 2)
    for kind in ("naive", "ours"):
        model = benchmark_model(dropout=0.0)
        before = [p.detach().clone() for p in model.parameters()]
        train_step_call(kind, model, MultiMixMethod(), batch, torch.device("cpu"))()
        changed = sum(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters(), strict=True))
        assert changed == len(before), kind  # every parameter received a gradient


def test_naive_prediction_matches_ours_and_leaves_no_gradients():
    model = benchmark_model(dropout=0.0).eval()
    images = make_batch(32, 2)["seg_x"]
    seg, cls, saliency = naive_predict(model, images)
    with torch.no_grad():
        ours = model(images)
    assert torch.allclose(seg, ours.seg_logits, atol=1e-5) and torch.allclose(cls, ours.cls_logits, atol=1e-5)
    assert torch.allclose(saliency, ours.saliency, atol=1e-6)
    assert all(p.grad is None for p in model.parameters())


def test_fast_options_run_in_bf16_and_channels_last():
    model = benchmark_model()
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    seen = []
    first_conv.register_forward_hook(lambda module, inputs, output: seen.append(output))
    call = predict_call(
        "ours",
        model,
        make_batch(32, 1)["seg_x"],
        torch.device("cpu"),
        SpeedOptions(autocast=torch.bfloat16, channels_last=True),
    )
    call()
    assert seen and all(out.dtype == torch.bfloat16 for out in seen)
    assert all(out.is_contiguous(memory_format=torch.channels_last) for out in seen)


def test_peak_rss_sees_an_allocation():
    with PeakRSS() as rss:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB
        block += 1
    assert rss.mib > 64


def test_benchmark_script_prints_ratios_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/benchmark.py",
            "--sizes",
            "32",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--no-memory",
            "--loader-workers",
            "0",
            "--json",
            str(out),
            "--out",
            str(tmp_path / "results"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "x naive" in proc.stdout and "OK" in proc.stdout
    data = json.loads(out.read_text())
    assert set(data["train"]["32"]) >= {"naive", "default", "fast"}
    assert set(data["inference"]["32"]) >= {"naive_ms", "ours_ms", "ours_batch16_img_s"}
    assert data["loader"]["images_per_second"] > 0 and data["machine"]["cpu_count"] >= 1
    # the naive step does more arithmetic than ours (a second encoder pass, decoder on every image)
    work = data["train"]["32"]["gflop_per_step"]
    assert work["naive"] > work["default"] > 0 and 0 < data["train"]["32"]["share_of_fp32_peak"]["default"]
    # the result files: the same figures as a table, headed by what made them
    table = (tmp_path / "results" / "benchmark.md").read_text()
    assert table.startswith("Written by `") and "scripts/benchmark.py --sizes 32" in table
    assert f"{data['machine']['cpu_count']} cores" in table
    made = json.loads((tmp_path / "results" / "benchmark.json").read_text())
    naive_row = next(r for r in made["records"] if r["part"] == "training step" and r["variant"] == "naive")
    assert naive_row["img_s"] == pytest.approx(data["train"]["32"]["naive"]) and naive_row["x_naive"] == 1.0


def test_counted_work_and_share_of_peak_by_hand():
    from multimix.bench.training_step import Timing, counted_gflop

    conv = torch.nn.Conv2d(1, 4, 3, padding=1, bias=False)
    x = torch.randn(1, 1, 8, 8)
    # 2 FLOPs (multiply, add) x 4 outputs channels x 9 taps x 64 pixels
    assert counted_gflop(lambda: conv(x)) * 1e9 == pytest.approx(2 * 4 * 9 * 64)
    timing = Timing(ms_per_call=100.0, images_per_second=10.0, peak_rss_mib=1.0, gflop_per_call=5.0)
    assert timing.share_of_peak(100.0) == pytest.approx(0.5)  # 50 GFLOP/s of 100
    assert Timing(1.0, 1.0, 1.0).share_of_peak(100.0) is None
