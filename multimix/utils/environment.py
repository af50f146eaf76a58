"""What a run records about where it ran: library versions, the code's git commit, the machine,
and the command line that was typed."""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from multimix import __version__

# the x86 / ARM flags that decide how fast training runs here (bf16 is emulated without the last two)
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "bf16")
_command: list[str] | None = None


def record_command(words: Sequence[str]) -> None:
    """Remember the command line as the user typed it (``multimix devloop ...``), for result files."""
    global _command
    _command = list(words)


def command_line() -> str:
    """The recorded command line, else the process's own (a script run as ``python scripts/x.py``)."""
    words = _command if _command is not None else [Path(sys.executable).name, *sys.argv]
    return shlex.join(words)


def git_commit() -> str | None:
    """The commit of the code that runs, when it runs from a git checkout."""
    try:
        found = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return found or None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what the platform reports."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(device: torch.device | None = None) -> dict[str, Any]:
    """What a speed or quality figure depends on: CPU model, cores, the speed-relevant CPU flags,
    whether bfloat16 is native, torch and its threads, and the GPU when ``device`` is one."""
    from multimix.utils.precision import cpu_flags, native_bf16

    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    flags = cpu_flags()
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_flags": [f for f in SPEED_FLAGS if f in flags],
        "torch": str(torch.__version__),
        "torch_threads": torch.get_num_threads(),
        "bf16_native": native_bf16(device),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def environment_info() -> dict[str, Any]:
    """Library versions and the git commit of the code, written next to every run."""
    import albumentations
    import monai
    import torchvision

    return {
        "multimix": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "torchvision": str(torchvision.__version__),
        "monai": str(monai.__version__),
        "albumentations": albumentations.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }
