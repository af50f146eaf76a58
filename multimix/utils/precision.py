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


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


# a run's arithmetic by name (as checkpoints and summaries record it) -> its autocast dtype
PRECISION_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device`` (``None`` = plain float32).

    ``auto`` is mixed precision on CUDA (bfloat16 where the GPU supports it, else float16 with
    a gradient scaler); on a CPU it is bfloat16 only where bf16 is native and measured faster
    than float32 (AVX-512 BF16 / AMX), else float32. ``bf16`` is bfloat16 autocast on either
    (see :func:`precision_warning` for CPUs that emulate it); ``fp16`` needs CUDA.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        if device.type != "cuda":
            return torch.bfloat16 if bf16_is_fast(device) else None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision fp16 needs a CUDA device (it trains with a gradient scaler); use bf16 on CPU")
    return PRECISION_DTYPES[precision]


def precision_warning(precision: str, device: torch.device) -> str | None:
    """Why an explicit ``bf16`` will be slow here (a CPU without native bfloat16), with the
    measured matmul speeds; ``None`` when there is nothing to say."""
    if precision != "bf16" or device.type != "cpu" or native_bf16(device):
        return None
    speed = cpu_matmul_speed()
    return (
        f"this CPU has no native bfloat16 (no {' / '.join(NATIVE_BF16_FLAGS)}): a bf16 matmul runs at "
        f"{speed.bf16_gflops:.2f} GFLOP/s against {speed.fp32_gflops:.0f} in float32 "
        f"({speed.bf16_slowdown:.0f}x slower), "
        "so training will be many times slower; use --precision fp32 or auto"
    )
