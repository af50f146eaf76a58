#!/usr/bin/env python
"""``multimix train`` from a checkout: ``python scripts/train.py --help`` lists its flags."""

import sys

from multimix.runs.commands.train import main

if __name__ == "__main__":
    sys.exit(main())
