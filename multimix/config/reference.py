"""The configuration reference, generated from the schema: every section and key with its type,
default and the schema's own comment, as Markdown (the documentation's configuration page)."""

from __future__ import annotations

import dataclasses
import inspect
import io
import tokenize
from typing import Any

from multimix.config import schema
from multimix.config.schema import Config


def field_comments(cls: type) -> dict[str, str]:
    """The comment of each field of dataclass ``cls`` in its source: the comment lines right above
    the field, then the comment at the end of its definition (which may span several lines)."""
    source = inspect.getsource(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    comments: dict[str, list[str]] = {}
    above: list[str] = []
    current: str | None = None
    depth = 0
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            text = token.string.lstrip("#").strip()
            if current is not None:
                comments[current].append(text)
            else:
                above.append(text)
        elif token.type == tokenize.NAME and depth == 0 and token.start[1] == 4 and token.string in names:
            current = token.string
            comments[current] = above
            above = []
        elif token.type == tokenize.OP and token.string in "([{":
            depth += 1
        elif token.type == tokenize.OP and token.string in ")]}":
            depth -= 1
        elif token.type == tokenize.NEWLINE and depth == 0:
            current = None
        elif token.type == tokenize.NL and current is None and not above:
            continue
    return {name: " ".join(lines) for name, lines in comments.items()}


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"' if value == "" else value
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def section_table(name: str, cls: type) -> list[str]:
    """One section: its docstring, then a table of ``key | type | default | meaning``."""
    comments = field_comments(cls)
    lines = [f"## `{name}`", "", inspect.cleandoc(cls.__doc__ or ""), ""]
    lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        default = _literal(_default(f))
        lines.append(
            f"| `{name}.{f.name}` | `{_cell(kind)}` | `{_cell(default)}` | {_cell(comments.get(f.name, ''))} |"
        )
    return [*lines, ""]


def config_reference() -> str:
    """Every config section and key as Markdown, in the order of :class:`~multimix.config.schema.Config`."""
    lines: list[str] = []
    hints = {f.name: f.type for f in dataclasses.fields(Config)}
    for f in dataclasses.fields(Config):
        section_type = hints[f.name]
        cls = getattr(schema, section_type) if isinstance(section_type, str) else section_type
        if dataclasses.is_dataclass(cls):
            lines += section_table(f.name, cls)
    return "\n".join(lines)
