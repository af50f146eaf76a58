#!/usr/bin/env python
"""``multimix ablation`` from a checkout: ``python scripts/ablation.py --help`` lists its flags."""

import sys

from multimix.runs.commands.ablation import main

if __name__ == "__main__":
    sys.exit(main())
