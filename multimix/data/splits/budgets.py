"""Label budgets: how many examples of a pool get their label or mask used (a count, a
percentage string such as ``"5%"``, or ``None`` / ``"all"`` for the whole pool)."""

from __future__ import annotations

import math
import re

import numpy as np

Budget = int | float | str | None
_PERCENT = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*%$")


def parse_budget(value: Budget) -> int | float | None:
    """Normalise a label budget.

    Returns an ``int`` count, a ``float`` fraction in ``[0, 1]``, or ``None`` meaning "all".
    Accepts ints (``10``), digit strings (``"10"``), percentages (``"5%"`` -> ``0.05``),
    ``"all"`` / ``None``, and floats in ``[0, 1]`` (already a fraction).

    Raises:
        ValueError: for negative numbers, percentages above 100, floats outside ``[0, 1]``,
            booleans, or unparseable text; the message quotes the offending value.
    """
    if value is None:
        return None
    if isinstance(value, bool):  # bool is an int subclass; True as "1 label" is surely a bug
        raise ValueError(f"label budget must be a count, 'N%' or 'all', got {value!r}")
    if isinstance(value, (int, np.integer)):
        if value < 0:
            raise ValueError(f"label budget must be >= 0, got {value!r}")
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"a float label budget is a fraction in [0, 1], got {value!r}; use an int count or 'N%'")
        return float(value)
    if isinstance(value, str):
        return _parse_budget_text(value)
    raise ValueError(f"label budget must be an int, 'N%', 'all' or None, got {value!r}")


def _parse_budget_text(value: str) -> int | float | None:
    text = value.strip().lower()
    if text == "all":
        return None
    if text.isdigit():
        return int(text)
    match = _PERCENT.match(text)
    if match and float(match.group(1)) <= 100.0:
        return float(match.group(1)) / 100.0
    raise ValueError(
        f"invalid label budget {value!r}: expected a non-negative count ('10'), a percentage up to 100 ('5%') or 'all'"
    )


def resolve_budget(budget: Budget, pool_size: int) -> int:
    """Turn a budget (anything :func:`parse_budget` accepts) into an image count for a pool.

    ``None``/"all" -> ``pool_size``; a fraction -> ``fraction * pool_size`` rounded half up
    (not Python's banker's rounding, so ``"50%"`` of 5 is 3); an int must not exceed the pool.

    Raises:
        ValueError: if a count exceeds ``pool_size`` (message names both) or the budget is invalid.
    """
    if pool_size < 0:
        raise ValueError(f"pool_size must be >= 0, got {pool_size}")
    parsed = parse_budget(budget)
    if parsed is None:
        return pool_size
    if isinstance(parsed, float):
        return round_half_up(parsed * pool_size)
    if parsed > pool_size:
        raise ValueError(f"label budget {parsed} exceeds the pool size {pool_size}")
    return parsed


def round_half_up(x: float) -> int:
    """``x`` rounded to the nearest whole number, halves up (``round`` rounds halves to even)."""
    return int(math.floor(x + 0.5))
