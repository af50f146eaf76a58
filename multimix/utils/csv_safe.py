"""CSV files that a spreadsheet opens without running anything: no cell becomes a formula.

A file named ``=cmd|calc!A0.png`` written as it is turns into a formula when the CSV is opened
in a spreadsheet (CSV injection). Every CSV the library writes goes through these writers,
which prefix a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
with ``'`` (the OWASP advice), so the spreadsheet shows it as text. Numbers, including negative
ones written as text, and a lone sign (the tables' "-" for no value) are left as they are.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from typing import IO, Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` with ``'`` in front when it is text a spreadsheet would read as a formula."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS) or _is_number(value):
        return value
    if len(value) == 1:  # a lone "-" is the tables' "no value", not a formula
        return value
    return "'" + value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class SafeWriter:
    """:func:`csv.writer` whose rows have every cell passed through :func:`safe_cell`."""

    def __init__(self, handle: IO[str], **options: Any) -> None:
        self._writer = csv.writer(handle, **options)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([safe_cell(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class SafeDictWriter(csv.DictWriter):
    """:class:`csv.DictWriter` whose values pass through :func:`safe_cell` (the header is ours)."""

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow({key: safe_cell(value) for key, value in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for row in rowdicts:
            self.writerow(row)
