#!/usr/bin/env python
"""``multimix pretrain`` from a checkout: ``python scripts/pretrain.py --help`` lists its flags."""

import sys

from multimix.runs.commands.pretrain import main

if __name__ == "__main__":
    sys.exit(main())
