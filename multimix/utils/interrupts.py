"""Ctrl-C that is never lost.

Python delivers SIGINT as a ``KeyboardInterrupt`` wherever the main thread happens to be; when
that is a finaliser or a callback (``Exception ignored in ...``), the exception is printed and
dropped, and the command would go on to finish and replace its results. While
:func:`remembered_interrupts` is active, an interrupt is also remembered, so a command can refuse
to publish (:func:`raise_if_interrupted`) and its exit status can still say 130.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

_interrupted = threading.Event()


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _interrupted.set()
    raise KeyboardInterrupt


@contextlib.contextmanager
def remembered_interrupts() -> Iterator[None]:
    """Remember every SIGINT for the duration of the block (main thread only; elsewhere a no-op)."""
    _interrupted.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _interrupted.clear()  # what came is handled by now; later work in this process is not refused


def interrupted() -> bool:
    """Whether Ctrl-C came since :func:`remembered_interrupts` began, even if it was swallowed."""
    return _interrupted.is_set()


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if an interrupt came, so nothing is published after it."""
    if _interrupted.is_set():
        raise KeyboardInterrupt
