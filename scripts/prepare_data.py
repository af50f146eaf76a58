#!/usr/bin/env python
"""``multimix prepare-data`` from a checkout: ``python scripts/prepare_data.py --help`` lists its flags."""

import sys

from multimix.runs.commands.prepare_data import main

if __name__ == "__main__":
    sys.exit(main())
