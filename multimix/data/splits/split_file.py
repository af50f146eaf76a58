"""The split of one run (:class:`Split`: labeled / unlabeled per task, and the held-out
parts) and its JSON file format."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multimix.utils.atomic import atomic_write_text

SPLIT_FORMAT_VERSION = 1


class SplitFileError(ValueError):
    """A split file (or dict) is missing, unreadable, or lacks required content."""


@dataclass
class TaskSplit:
    """Labeled and unlabeled record uids of one task's training pool."""

    labeled: list[str]
    unlabeled: list[str]


@dataclass
class Split:
    """Everything that defines one experiment's data: per-task pools plus evaluation sets.

    ``cross`` holds cross-domain evaluation uids (sources never trained on). ``meta`` records
    how the split was made (seed, budgets as given and resolved, pool sizes, options) and must
    be JSON-serialisable.
    """

    seg: TaskSplit
    cls: TaskSplit
    val: list[str]
    test: list[str]
    cross: list[str]
    meta: dict = field(default_factory=dict)

    def all_uids(self) -> list[str]:
        """Every uid the split names, training pools and held-out sets, in order."""
        return [
            *self.seg.labeled,
            *self.seg.unlabeled,
            *self.cls.labeled,
            *self.cls.unlabeled,
            *self.val,
            *self.test,
            *self.cross,
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON representation (inverse of :meth:`from_dict`)."""
        return {
            "version": SPLIT_FORMAT_VERSION,
            "seg": {"labeled": list(self.seg.labeled), "unlabeled": list(self.seg.unlabeled)},
            "cls": {"labeled": list(self.cls.labeled), "unlabeled": list(self.cls.unlabeled)},
            "val": list(self.val),
            "test": list(self.test),
            "cross": list(self.cross),
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Split:
        """Rebuild a split from :meth:`to_dict` output.

        Raises:
            SplitFileError: not a dict, a key is missing, or a uid list is not a list of str.
        """
        if not isinstance(d, dict):
            raise SplitFileError(f"split must be a JSON object, got {type(d).__name__}")
        tasks = {name: TaskSplit(*_task_lists(d, name)) for name in ("seg", "cls")}
        lists = {name: _uid_list(_require(d, name), name) for name in ("val", "test", "cross")}
        meta = d.get("meta", {})
        if not isinstance(meta, dict):
            raise SplitFileError(f"split key 'meta' must be an object, got {type(meta).__name__}")
        return cls(seg=tasks["seg"], cls=tasks["cls"], meta=dict(meta), **lists)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the split as JSON atomically (temp file in the same folder, fsync, replace).

        Readers never see a half-written file, and a crash leaves the old file intact.
        """
        target = Path(path)
        text = json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"  # fail before I/O
        atomic_write_text(target, text)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Split:
        """Read a split saved by :meth:`save`.

        Raises:
            FileNotFoundError: the file does not exist (message names it).
            SplitFileError: the file is not valid JSON or lacks required keys (message names it).
        """
        target = Path(path)
        try:
            text = target.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(f"split file not found: {target}") from None
        try:
            return cls.from_dict(json.loads(text))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise SplitFileError(f"split file {target} is not valid JSON: {err}") from err
        except SplitFileError as err:
            raise SplitFileError(f"split file {target}: {err}") from err


def _require(d: dict[str, Any], key: str, where: str = "") -> Any:
    if key not in d:
        raise SplitFileError(f"missing required key {where + key!r}")
    return d[key]


def _task_lists(d: dict[str, Any], name: str) -> tuple[list[str], list[str]]:
    task = _require(d, name)
    if not isinstance(task, dict):
        raise SplitFileError(f"key {name!r} must be an object with 'labeled' and 'unlabeled'")
    labeled, unlabeled = (_uid_list(_require(task, k, f"{name}."), f"{name}.{k}") for k in ("labeled", "unlabeled"))
    return labeled, unlabeled


def _uid_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
        raise SplitFileError(f"key {where!r} must be a list of uid strings")
    return list(value)
