#!/usr/bin/env python
"""``multimix devloop`` from a checkout: ``python scripts/devloop.py --help`` lists its flags."""

import sys

from multimix.runs.commands.devloop import main

if __name__ == "__main__":
    sys.exit(main())
