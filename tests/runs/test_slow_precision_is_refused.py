"""A precision that would be hundreds of times slower here is refused or explained.

Tiny runs; each case failed before its fix (docs/troubleshooting.md)."""

from __future__ import annotations

import pytest
import torch

from multimix.engine import trainer as trainer_module
from multimix.utils import precision
from multimix.utils.locks import exclusive_lock

# --- 8. precision that would be hundreds of times slow -------------------------------------------


def test_bf16_on_a_cpu_that_emulates_it_warns_with_the_measured_speeds(monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda device: False)
    monkeypatch.setattr(precision, "cpu_matmul_speed", lambda: precision.MatmulSpeed(100.0, 0.3))
    message = trainer_module.precision_warning("bf16", torch.device("cpu"))
    assert "no native bfloat16" in message and "0.30 GFLOP/s" in message and "333x slower" in message
    assert trainer_module.precision_warning("fp32", torch.device("cpu")) is None


@pytest.mark.parametrize(
    "native, slowdown, expected", [(False, 300.0, None), (True, 2.0, None), (True, 0.5, torch.bfloat16)]
)
def test_auto_picks_bf16_on_cpu_only_where_native_and_faster(monkeypatch, native, slowdown, expected):
    monkeypatch.setattr(precision, "native_bf16", lambda device: native)
    monkeypatch.setattr(precision, "cpu_matmul_speed", lambda: precision.MatmulSpeed(100.0, 100.0 / slowdown))
    assert trainer_module.resolve_precision("auto", torch.device("cpu")) is expected


def test_native_bf16_follows_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "fma"})
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert not precision.native_bf16(torch.device("cpu"))
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert precision.native_bf16(torch.device("cpu"))


def test_run_lock_is_held_only_while_training(finished_run):
    with exclusive_lock(finished_run / ".lock", what="run"):  # the finished run released it
        pass
