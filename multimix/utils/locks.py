"""Exclusive locks on files, so two processes never write one run folder or one cache at once.

The lock is :mod:`filelock`'s (``flock`` on POSIX, ``msvcrt`` on Windows): the kernel releases it
when the holding process ends in any way (exit, crash, SIGKILL), so a killed run never leaves a
stuck lock. The holder writes its process id into the lock file, so a refusal can name it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock


class LockedError(RuntimeError):
    """Another live process holds the lock."""


@contextmanager
def exclusive_lock(
    path: str | os.PathLike,
    *,
    what: str,
    wait: bool = False,
    on_wait: Callable[[str], None] | None = None,
    poll_seconds: float = 0.5,
) -> Iterator[None]:
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
    lock = filelock.FileLock(path)
    announced = False
    while not _try_acquire(lock):
        holder = _holder(path)
        if not wait:
            raise LockedError(
                f"{what} is in use by another process{holder}; wait for it to finish or choose another folder"
            )
        if on_wait is not None and not announced:
            on_wait(f"waiting for another process{holder} that is writing {what}")
            announced = True
        time.sleep(poll_seconds)
    try:
        _write_holder(path)
        yield
    finally:
        lock.release()


def _try_acquire(lock: filelock.FileLock) -> bool:
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        return False
    return True


def _write_holder(path: Path) -> None:
    try:
        with open(path, "r+") as handle:
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
    except OSError:  # Windows locks the file's bytes: the refusal then names no process id
        pass


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
