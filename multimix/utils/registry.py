"""One way to make things buildable by name: methods, models, network classes, heads,
backbones, data sources, threshold policies and commands each keep a :class:`Registry`, and
CLI choices, error messages and the contract tests read the registry instead of a list."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, overload

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries of one ``kind`` by name; names are case-insensitive when ``lower`` is set.

    >>> colours = Registry("colour")
    >>> colours.register("red", "#f00")
    '#f00'
    >>> colours.get("blue")
    Traceback (most recent call last):
    ...
    ValueError: unknown colour 'blue'; available: red
    """

    def __init__(self, kind: str, *, lower: bool = False) -> None:
        self.kind = kind
        self._lower = lower
        self._entries: dict[str, T] = {}

    def _key(self, name: str) -> str:
        return name.lower() if self._lower else name

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, entry: T) -> T: ...

    def register(self, name: str, entry: T | None = None) -> T | Callable[[T], T]:
        """Add ``entry`` as ``name`` (or, without ``entry``, a decorator that adds what it wraps).
        Registering another entry under a taken name is a ``ValueError``; the same one again is
        allowed (a module imported twice)."""

        def add(item: T) -> T:
            key = self._key(name)
            if key in self._entries and self._entries[key] is not item:
                raise ValueError(f"a {self.kind} named {name!r} is already registered")
            self._entries[key] = item
            return item

        return add if entry is None else add(entry)

    def get(self, name: object) -> T:
        """The entry of ``name``; ``ValueError`` listing the available names when there is none
        (``name`` may be anything a config or a checkpoint holds, not only a string)."""
        key = self._key(name) if isinstance(name, str) else None
        if key is None or key not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; available: {', '.join(sorted(self._entries))}")
        return self._entries[key]

    def available(self) -> list[str]:
        """The registered names, in the order they were registered."""
        return list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())

    def copy(self) -> Registry[T]:
        """A registry holding the same entries (registering into it leaves this one as it is)."""
        twin: Registry[T] = Registry(self.kind, lower=self._lower)
        twin._entries = dict(self._entries)
        return twin

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.available())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.available())})"
