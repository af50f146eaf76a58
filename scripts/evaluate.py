#!/usr/bin/env python
"""``multimix evaluate`` from a checkout: ``python scripts/evaluate.py --help`` lists its flags."""

import sys

from multimix.runs.commands.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
