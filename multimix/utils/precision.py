"""Whether bfloat16 is native on this machine, measured rather than assumed.

CPUs without AVX-512 BF16 or AMX emulate bfloat16 matrix products in software: on an AVX2-only
CPU a bf16 matmul measured 0.29 GFLOP/s against 106 GFLOP/s in float32, so bf16 autocast there
makes training tens of times slower. The checks here let the trainer refuse to pick it silently.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import torch

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 /proc/cpuinfo flags
ARM_BF16_FLAG = "bf16"  # aarch64 /proc/cpuinfo feature


def cpu_flags() -> set[str]:
    """The CPU feature flags Linux reports (``flags`` on x86, ``Features`` on ARM); empty elsewhere."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bf16(device: torch.device) -> bool:
    """Whether bfloat16 runs in hardware here: a CUDA GPU that supports it, or a CPU with
    AVX-512 BF16 / AMX (x86) or the BF16 extension (ARM)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    flags = cpu_flags()
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")()
    return any(f in flags for f in NATIVE_BF16_FLAGS) or ARM_BF16_FLAG in flags or capability == "AVX512_BF16"


@dataclass(frozen=True)
class MatmulSpeed:
    """Square-matmul throughput on the CPU in GFLOP/s, float32 against bfloat16 autocast."""

    fp32_gflops: float
    bf16_gflops: float

    @property
    def bf16_slowdown(self) -> float:
        """How many times slower bf16 is than fp32 (below 1: bf16 is faster)."""
        return self.fp32_gflops / max(self.bf16_gflops, 1e-9)


@functools.lru_cache(maxsize=1)
def cpu_matmul_speed(size: int = 256, repeats: int = 3) -> MatmulSpeed:
    """Time ``size x size`` matrix products on the CPU (once per process, well under a second
    even where bf16 is emulated)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    flops = 2 * size**3

    def best(dtype: torch.dtype | None) -> float:
        times = []
        for _ in range(repeats + 1):  # the first call warms the kernels up
            started = time.perf_counter()
            if dtype is None:
                a @ b
            else:
                with torch.autocast("cpu", dtype=dtype):
                    a @ b
            times.append(time.perf_counter() - started)
        return flops / min(times[1:]) / 1e9

    return MatmulSpeed(best(None), best(torch.bfloat16))


def bf16_is_fast(device: torch.device) -> bool:
    """bf16 is native here and, on a CPU, measured faster than float32."""
    if not native_bf16(device):
        return False
    return device.type == "cuda" or cpu_matmul_speed().bf16_slowdown < 1.0
