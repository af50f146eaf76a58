"""Checkpoint files: atomic writes and safe loads (``weights_only=True``) with clear errors."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from multimix.utils.atomic import atomic_write, write_all


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated or not a multimix checkpoint."""


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` (tensors and plain data only) so that ``path`` is never half-written.

    The bytes go to a temporary file in the same folder, are flushed to disk, and replace
    ``path`` in one ``os.replace``: a crash at any moment leaves the previous file intact. The
    state is serialised in memory first, so a full disk is an ``OSError`` naming ``path``
    (torch's own writer reports it as an internal ``RuntimeError``).
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return atomic_write(path, lambda handle: write_all(handle, buffer.getbuffer()))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint without executing code (``weights_only=True``); clear errors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    _check_archive(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, KeyError, IndexError) as err:
        cause = str(err).split(". ")[0].strip()
        raise CheckpointError(f"{path}: cannot read checkpoint, the file is truncated or corrupt ({cause})") from err
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: not a multimix checkpoint (no 'model' entry)")
    return state


_ZIP_MAGIC = b"PK\x03\x04"  # every file torch.save writes is a zip archive


def _check_archive(path: Path) -> None:
    """Refuse a file that is no checkpoint at all (a text file, an image) before unpickling it."""
    with open(path, "rb") as handle:
        head = handle.read(len(_ZIP_MAGIC))
    if not head:
        raise CheckpointError(f"{path}: not a checkpoint: empty file (0 bytes)")
    if head != _ZIP_MAGIC:
        raise CheckpointError(
            f"{path}: not a checkpoint: a PyTorch checkpoint is a zip archive, this file starts {head!r}"
        )


def looks_like_checkpoint(path: Path) -> bool:
    """Whether ``path`` is an existing file saved by ``torch.save`` (a zip archive with a
    ``data.pkl`` and no TorchScript ``code/``: an exported graph is not a checkpoint)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    return any(n.endswith("/data.pkl") for n in names) and not any("/code/" in n for n in names)


def check_output_path(
    out: str | os.PathLike, *, inputs: tuple[str | os.PathLike, ...] = (), force: bool = False
) -> Path:
    """``out`` as a path a command may write: never one of its ``inputs``, never a folder, and never
    an existing checkpoint (a run's ``best.pt``/``last.pt``, an adapted copy) unless ``force``.
    Raises ``ValueError`` in one line naming the file."""
    target = Path(out)
    if target.is_dir():
        raise ValueError(f"{target}: is a folder; --out names the file to write")
    if not target.exists():
        return target
    if any(Path(i).exists() and target.resolve() == Path(i).resolve() for i in inputs):
        raise ValueError(f"{target} is this command's input; write the result to a new file (--out)")
    if looks_like_checkpoint(target) and not force:
        raise ValueError(
            f"{target} is an existing checkpoint; writing there would replace its weights "
            "(choose another --out, or --force to replace it)"
        )
    return target
