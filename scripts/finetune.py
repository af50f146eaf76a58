#!/usr/bin/env python
"""``multimix finetune`` from a checkout: ``python scripts/finetune.py --help`` lists its flags."""

import sys

from multimix.runs.commands.finetune import main

if __name__ == "__main__":
    sys.exit(main())
