"""The one way bad input surfaces: GradscopeError carries a message and an exit code."""

from __future__ import annotations


class GradscopeError(Exception):
    """Bad input (usage, YAML, schema, file). The CLI prints the message and exits with `exit_code`."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ScenarioError(GradscopeError):
    """A scenario file or override is invalid; the message names file, key path and line."""

    def __init__(self, message: str, *, source: str | None = None, path: str | None = None,
                 line: int | None = None) -> None:
        where = []
        if source:
            where.append(source if line is None else f"{source}:{line}")
        elif line is not None:
            where.append(f"line {line}")
        if path:
            where.append(f"key '{path}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.source, self.path, self.line = source, path, line
