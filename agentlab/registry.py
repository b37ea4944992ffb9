"""Registries for the extension seams (backends, tasks, labelers, aggregators, students).

Built-ins register like plugins; third-party packages add entries through the
``agentlab.<kind>`` entry-point group. Recipes name registry keys, never import paths.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from importlib import metadata
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownKey(KeyError):
    """An unknown registry key; `suggestion` holds the closest known key, if any."""

    def __init__(self, kind: str, key: str, known: list[str]):
        self.kind, self.key, self.known = kind, key, known
        close = difflib.get_close_matches(key, known, n=1)
        self.suggestion = close[0] if close else None
        super().__init__(key)

    def __str__(self) -> str:
        hint = f"did you mean {self.suggestion!r}? " if self.suggestion else ""
        return f"unknown {self.kind} {self.key!r}; {hint}known: {', '.join(sorted(self.known))}"


class Registry(Generic[T]):
    """A name -> object map that rejects duplicates and suggests close names."""

    def __init__(self, kind: str, loader: Callable[[], None] | None = None):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._loader = loader
        self._loaded = False

    def register(self, name: str, obj: T | None = None):
        """Register `obj` under `name`; usable as a decorator when `obj` is omitted."""

        def add(item: T) -> T:
            if name in self._items and self._items[name] is not item:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = item
            return item

        return add(obj) if obj is not None else add

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self._loader:
            self._loader()
        try:
            eps = metadata.entry_points(group=f"agentlab.{self.kind}s")
        except TypeError:  # pragma: no cover - very old importlib.metadata
            eps = []
        for ep in eps:
            if ep.name not in self._items:
                self._items[ep.name] = ep.load()

    def get(self, name: str) -> T:
        """Return the entry for `name` or raise UnknownKey with a suggestion."""
        self._ensure_loaded()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownKey(self.kind, name, list(self._items)) from None

    def names(self) -> list[str]:
        """All registered names, sorted."""
        self._ensure_loaded()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._ensure_loaded()
        return name in self._items
