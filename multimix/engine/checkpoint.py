"""Atomic checkpoint writes, safe loads (``weights_only=True``) and RNG state capture."""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated or not a multimix checkpoint."""


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` (tensors and plain data only) so that ``path`` is never half-written.

    The bytes go to a temporary file in the same folder, are flushed to disk, and replace
    ``path`` in one ``os.replace``: a crash at any moment leaves the previous file intact.
    """
    return atomic_write(path, lambda handle: torch.save(state, handle))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint without executing code (``weights_only=True``); clear errors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as err:
        cause = str(err).split(". ")[0].strip()
        raise CheckpointError(f"{path}: cannot read checkpoint, the file is truncated or corrupt ({cause})") from err
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: not a multimix checkpoint (no 'model' entry)")
    return state


def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy and torch generator states as tensors/plain data (loadable with weights_only)."""
    version, internal, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [np_name, torch.from_numpy(np_keys.astype(np.int64)), np_pos, np_has_gauss, np_gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state((np_name, np_keys.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
