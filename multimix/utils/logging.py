"""Console logging for the ``multimix`` command: the library logs, the command shows it.

Library modules log to ``logging.getLogger(__name__)`` and never print. The command line (and
the test suite) calls :func:`setup_console_logging`, which shows INFO messages on stdout and
warnings and errors on stderr, as plain lines. Code that imports multimix without calling it
sees Python's default: warnings on stderr, notes silent, or whatever logging it configures.
"""

from __future__ import annotations

import logging
import sys

LIBRARY_LOGGER = "multimix"


class ConsoleHandler(logging.Handler):
    """Plain lines: below WARNING to ``sys.stdout``, the rest to ``sys.stderr``.

    The streams are looked up at every message, not bound once, so redirection (and pytest's
    capture) after setup still receives them.
    """

    def emit(self, record: logging.LogRecord) -> None:
        stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
        try:
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # a closed stream must not take the run down with it
            self.handleError(record)


def setup_console_logging(level: int = logging.INFO) -> logging.Logger:
    """Show the library's messages on the console (once per process; later calls set the level)."""
    logger = logging.getLogger(LIBRARY_LOGGER)
    if not any(isinstance(h, ConsoleHandler) for h in logger.handlers):
        logger.addHandler(ConsoleHandler())
    logger.setLevel(level)
    logger.propagate = False  # shown once, not again by a root handler
    return logger
