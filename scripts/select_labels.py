#!/usr/bin/env python
"""``multimix select-labels`` from a checkout: ``python scripts/select_labels.py --help`` lists its flags."""

import sys

from multimix.runs.commands.select_labels import main

if __name__ == "__main__":
    sys.exit(main())
