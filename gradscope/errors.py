"""The one way bad input surfaces: GradscopeError carries a message and an exit code.

Messages are one paragraph: control, bidirectional-override and other non-printable characters are
escaped (so a value cannot move the cursor or reorder the terminal), and `shown(value)` cuts a value
echoed back to a sensible length.
"""

from __future__ import annotations

from typing import Any

SHOW_LIMIT = 60       # characters of a value echoed back in a message
MESSAGE_LIMIT = 2000  # characters of a whole message (a last resort; values are cut first)


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str) -> str:
    """Text with every non-printable character (newlines, NUL, ESC, U+202E, ...) written as an escape."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape_char(ch) for ch in text)


def cut(text: str, limit: int = SHOW_LIMIT) -> str:
    """Escaped text, cut to `limit` characters with an ellipsis."""
    text = printable(text[: limit * 8])
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown(value: Any, limit: int = SHOW_LIMIT) -> str:
    """repr-like form of a value for a message: escaped, cut to `limit` characters, never huge."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        digits = int(value.bit_length() * 0.30103) + 1
        return f"{'-' if value < 0 else ''}an integer of about {digits} digits"
    if isinstance(value, str):
        body = value[: limit * 8]
        text = repr(body)
        if len(value) > len(body):
            text = text[:-1] + "…" + text[-1]
    else:
        try:
            text = repr(value)
        except Exception:  # noqa: BLE001 - a value whose repr fails still gets a message
            text = f"<{type(value).__name__}>"
    text = printable(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class GradscopeError(Exception):
    """Bad input (usage, YAML, schema, file). The CLI prints the message and exits with `exit_code`."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        message = printable(" ".join(message.split("\n")))
        if len(message) > MESSAGE_LIMIT:
            message = message[: MESSAGE_LIMIT - 1] + "…"
        super().__init__(message)
        self.message = message


class ScenarioError(GradscopeError):
    """A scenario file or override is invalid; the message names file, key path and line."""

    def __init__(self, message: str, *, source: str | None = None, path: str | None = None,
                 line: int | None = None) -> None:
        where = []
        if source:
            shown_source = cut(source, 120)
            where.append(shown_source if line is None else f"{shown_source}:{line}")
        elif line is not None:
            where.append(f"line {line}")
        if path:
            where.append(f"key '{cut(path, 120)}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.source, self.path, self.line = source, path, line
        self.detail = printable(" ".join(message.split("\n")))  # the message without source, key and line
