"""Exclusive locks on files, so two processes never write one run folder or one cache at once.

The lock is an advisory ``flock`` on a small file: the kernel releases it when the holding
process ends in any way (exit, crash, SIGKILL), so a killed run never leaves a stuck lock.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


class LockedError(RuntimeError):
    """Another live process holds the lock."""


def _try_lock(handle: IO[str]) -> bool:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(handle: IO[str]) -> None:
    if sys.platform == "win32":  # pragma: no cover
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextmanager
def exclusive_lock(path: str | os.PathLike, *, what: str, wait: bool = False,
                   on_wait: Callable[[str], None] | None = None, poll_seconds: float = 0.5) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created with its folder if missing) inside the block.

    Args:
        what: names the locked thing in messages ("run folder runs/a").
        wait: if another process holds the lock, wait for it (calling ``on_wait`` once with a
            message) instead of raising :class:`LockedError`.

    Raises:
        LockedError: the lock is held elsewhere and ``wait`` is false; the message names the
            holder's process id.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        announced = False
        while not _try_lock(handle):
            holder = _holder(path)
            if not wait:
                raise LockedError(f"{what} is in use by another process{holder}; wait for it to finish or choose another folder")
            if on_wait is not None and not announced:
                on_wait(f"waiting for another process{holder} that is writing {what}")
                announced = True
            time.sleep(poll_seconds)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            _unlock(handle)
    finally:
        handle.close()


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
