"""A small generic registry: name -> entry, with aliases, parameter specs (spec.Spec) and "did you mean"."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .spec import MAX_MAGNITUDE, Param, Spec

__all__ = ["MAX_MAGNITUDE", "Entry", "Param", "Registry", "Spec", "suggest"]


@dataclass(frozen=True)
class Entry:
    """Base of every registry entry: a name, a one-line description and keyword parameters."""

    name: str
    description: str
    params: tuple[Spec, ...] = field(default=(), kw_only=True)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}


E = TypeVar("E", bound=Entry)


def suggest(name: str, choices: list[str]) -> str:
    """' (did you mean 'x'?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Registry(Generic[E]):
    """Entries looked up by name or alias; unknown names raise KeyError with the choices listed."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, E] = {}
        self._aliases: dict[str, str] = {}

    def register(self, entry: E, *aliases: str) -> E:
        if entry.name in self._entries or entry.name in self._aliases:
            raise ValueError(f"{self.kind} {entry.name!r} registered twice")
        self._entries[entry.name] = entry
        for alias in aliases:
            self._aliases[alias] = entry.name
        return entry

    def canonical(self, name: str) -> str:
        """The registered name for `name` or an alias of it; KeyError with a hint otherwise."""
        if name in self._entries:
            return name
        if name in self._aliases:
            return self._aliases[name]
        known = self.names(aliases=True)
        raise KeyError(f"unknown {self.kind} '{name}'{suggest(name, known)}; "
                       f"known: {', '.join(self.names())}")

    def get(self, name: str) -> E:
        return self._entries[self.canonical(name)]

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[E]:
        return iter(self._entries.values())

    def names(self, aliases: bool = False) -> list[str]:
        out = list(self._entries)
        if aliases:
            out += list(self._aliases)
        return out

    def aliases_of(self, name: str) -> list[str]:
        return [a for a, n in self._aliases.items() if n == name]
