"""Atomic writes: a reader (or a crash) never sees a half-written file, nor a folder of files
from two different writes."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from multimix.utils.interrupts import raise_if_interrupted


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import: os.umask briefly changes process state


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, flush it to disk, then
    ``os.replace`` it over ``path``. On any error the temporary file is removed and ``path``
    keeps its previous content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600; give the file the mode open() would
            os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        if err.filename is None:  # a failed write names no file; the message must
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write` for UTF-8 text."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda handle: write_all(handle, data))


def write_all(handle: BinaryIO, data: bytes | memoryview) -> None:
    """``handle.write(data)`` as a writer for :func:`atomic_write` (which returns nothing)."""
    handle.write(data)


def _fsync_dir(folder: Path) -> None:
    # makes the rename itself durable; not every platform/filesystem allows it
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def replaced_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path`` to write a set of files into; when the
    block ends without error the folder takes the place of ``path`` whole (a previous ``path``
    and everything in it is removed), else it is removed and ``path`` stays as it was.

    A reader sees the previous folder or the new one, never a mixture (between the two renames,
    for an instant, neither). After a Ctrl-C, even one swallowed on the way
    (:mod:`multimix.utils.interrupts`), the previous folder stays.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700; give the folder the mode mkdir would
        yield tmp
        raise_if_interrupted()  # a Ctrl-C some callback swallowed still keeps the previous folder
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if err.filename is None:  # a failed write names no file; the message must
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        os.replace(path, old)  # an empty folder is replaced by the rename
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
