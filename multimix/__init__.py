"""multimix: sparingly supervised multitask learning (classification + segmentation) for chest X-rays."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# `multimix.preprocess` without importing torch on `import multimix` (the command's --help stays quick)
_LAZY = {"preprocess": "multimix.prediction.preprocess"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'multimix' has no attribute {name!r}")
