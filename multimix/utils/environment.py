"""What a run records about where it ran: library versions, the code's git commit, the platform."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

from multimix import __version__


def environment_info() -> dict[str, Any]:
    """Library versions and the git commit of the code, written next to every run."""
    import albumentations
    import monai
    import torchvision

    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "multimix": __version__,
        "git_commit": commit,
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "torchvision": str(torchvision.__version__),
        "monai": str(monai.__version__),
        "albumentations": albumentations.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }
