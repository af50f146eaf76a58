"""``python -m multimix COMMAND``: the same as the ``multimix`` command."""

import sys

from multimix.runs.cli import main

if __name__ == "__main__":
    sys.exit(main())
