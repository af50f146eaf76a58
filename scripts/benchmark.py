#!/usr/bin/env python
"""``multimix benchmark`` from a checkout: ``python scripts/benchmark.py --help`` lists its flags."""

import sys

from multimix.runs.commands.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
