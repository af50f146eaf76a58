#!/usr/bin/env python
"""``multimix predict`` from a checkout: ``python scripts/predict.py --help`` lists its flags."""

import sys

from multimix.runs.commands.predict import main

if __name__ == "__main__":
    sys.exit(main())
