#!/usr/bin/env python
"""``multimix distill`` from a checkout: ``python scripts/distill.py --help`` lists its flags."""

import sys

from multimix.runs.commands.distill import main

if __name__ == "__main__":
    sys.exit(main())
