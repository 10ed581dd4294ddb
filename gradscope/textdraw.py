"""Text, Table and Group as rich has them, and the run report drawn as rich draws it, without importing rich.

`import rich.console` and `rich.table` cost ~27 ms of every `gradscope run`, and rich's general layout
machinery ~24 ms more to draw the report's two tables. render.py builds its paragraphs and tables from
the classes here: the subset of rich's API it uses, with rich's semantics (a Text is plain text, a base
style and spans; wrap, split, divide and join are rich's, ported). `draw()` writes a renderable exactly as
`rich.console.Console.print` would — the same widths, wrapping, padding, cropping and ANSI styles — when
it is made only of what this module lays out:

- Text in the characters rich counts one cell wide (`narrow`), without tabs;
- tables without box, title or footer, with the default padding, columns of left or right justified
  cells of one line each that fit the console as measured (rich would shrink them otherwise), and a
  caption;
- styles of attributes (bold, dim, italic, underline, reverse, strike) and the 16 standard colours;
- a console rich would set up the same way: not Jupyter, not Windows, UTF-8 output, no UNICODE_VERSION.

Anything else returns None, and the caller prints with rich (`__rich__` converts each object, so
rich receives what render.py built, and draws what it always drew). tests/test_textdraw.py draws the
bundled scenarios' reports both ways, at several widths, with and without colour, byte for byte.

The algorithms are rich's (MIT License, Copyright (c) 2020 Will McGugan): Text.divide, split, join,
rstrip_end, truncate and render, Lines.justify, divide_line, and Table's widths, padding and rows.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

Span = tuple[int, int, Any]  # (start, end, style) as rich.text.Span

_STRIP = {7: None, 8: None, 11: None, 12: None, 13: None}  # rich.control.strip_control_codes

# Characters rich measures as one cell: its own single-cell ranges (rich.cells) and the symbols the reports
# use (arrows, mathematical operators, sub- and superscripts, ...); tests/test_textdraw.py checks each one
# against rich.cells.cell_len.
_NARROW_RANGES = ((0x20, 0x7E), (0xA0, 0xAC), (0xAE, 0x2FF), (0x370, 0x482), (0x1D00, 0x1D7F),
                  (0x2010, 0x2027), (0x2030, 0x205E), (0x2070, 0x2071), (0x2074, 0x208E), (0x2090, 0x209C),
                  (0x2190, 0x21FF), (0x2200, 0x22FF), (0x2500, 0x25FC), (0x2713, 0x2718))
_NARROW = frozenset(chr(c) for lo, hi in _NARROW_RANGES for c in range(lo, hi + 1))
narrow = _NARROW.issuperset  # narrow(s): every character of s is one cell wide

_WORD = re.compile(r"\s*\S+\s*")          # rich._wrap.re_word
_TRAILING_SPACE = re.compile(r"\s+$")     # rich.text._re_whitespace
_EMOJI_CODE = re.compile(r":\S*?:")       # what rich's emoji replacement could rewrite in a str renderable


class Unsupported(Exception):
    """Something draw() does not lay out: rich draws it instead."""


# ---------------------------------------------------------------- Text


class Text:
    """rich.text.Text: plain text, a base style and spans (start, end, style), with rich's methods render.py uses."""

    def __init__(self, text: str = "", style: Any = "", *, justify: str | None = None, overflow: str | None = None,
                 no_wrap: bool | None = None, end: str = "\n", tab_size: int | None = None,
                 spans: list[Span] | None = None) -> None:
        text = text.translate(_STRIP)
        self._text = [text]
        self.style = style
        self.justify = justify
        self.overflow = overflow
        self.no_wrap = no_wrap
        self.end = end
        self.tab_size = tab_size
        self._spans: list[Span] = spans or []
        self._length = len(text)

    def __len__(self) -> int:
        return self._length

    def __bool__(self) -> bool:
        return bool(self._length)

    def __str__(self) -> str:
        return self.plain

    def __repr__(self) -> str:
        return f"<text {self.plain!r} {self._spans!r} {self.style!r}>"

    @property
    def plain(self) -> str:
        if len(self._text) != 1:
            self._text[:] = ["".join(self._text)]
        return self._text[0]

    @plain.setter
    def plain(self, new_text: str) -> None:
        if new_text != self.plain:
            sanitized = new_text.translate(_STRIP)
            self._text[:] = [sanitized]
            old_length = self._length
            self._length = len(sanitized)
            if old_length > self._length:
                self._trim_spans()

    @property
    def spans(self) -> list[Span]:
        return self._spans

    def copy(self) -> Text:
        return Text(self.plain, style=self.style, justify=self.justify, overflow=self.overflow, no_wrap=self.no_wrap,
                    end=self.end, tab_size=self.tab_size, spans=self._spans[:])

    def blank_copy(self, plain: str = "") -> Text:
        return Text(plain, style=self.style, justify=self.justify, overflow=self.overflow, no_wrap=self.no_wrap,
                    end=self.end, tab_size=self.tab_size)

    def append(self, text: Text | str, style: Any = None) -> Text:
        if not isinstance(text, str | Text):
            raise TypeError("Only str or Text can be appended to Text")
        if len(text):
            if isinstance(text, str):
                sanitized = text.translate(_STRIP)
                self._text.append(sanitized)
                offset = len(self)
                if style:
                    self._spans.append((offset, offset + len(sanitized), style))
                self._length += len(sanitized)
            else:
                if style is not None:
                    raise ValueError("style must not be set when appending Text instance")
                self.append_text(text)
        return self

    def append_text(self, text: Text) -> Text:
        offset = self._length
        if text.style:
            self._spans.append((offset, offset + len(text), text.style))
        self._text.append(text.plain)
        self._spans.extend((start + offset, end + offset, style) for start, end, style in text._spans.copy())
        self._length += len(text)
        return self

    def _trim_spans(self) -> None:
        max_offset = len(self.plain)
        self._spans[:] = [span if span[1] < max_offset else (span[0], min(max_offset, span[1]), span[2])
                          for span in self._spans if span[0] < max_offset]

    def right_crop(self, amount: int = 1) -> None:
        max_offset = len(self.plain) - amount
        self._spans[:] = [span if span[1] < max_offset else (span[0], min(max_offset, span[1]), span[2])
                          for span in self._spans if span[0] < max_offset]
        self._text = [self.plain[:-amount]]
        self._length -= amount

    def rstrip(self) -> None:
        self.plain = self.plain.rstrip()

    def rstrip_end(self, size: int) -> None:
        text_length = len(self)
        if text_length > size:
            excess = text_length - size
            match = _TRAILING_SPACE.search(self.plain)
            if match is not None:
                self.right_crop(min(len(match.group(0)), excess))

    def pad_left(self, count: int) -> None:
        if count:
            self.plain = f"{' ' * count}{self.plain}"
            self._spans[:] = [(start + count, end + count, style) for start, end, style in self._spans]

    def truncate(self, max_width: int, *, overflow: str | None = None, pad: bool = False) -> None:
        """Narrow text only (the callers check): cell lengths are lengths."""
        _overflow = overflow or self.overflow or "fold"
        if _overflow != "ignore":
            length = len(self.plain)
            if length > max_width:
                self.plain = (self.plain[:max(max_width - 1, 0)] + "…" if _overflow == "ellipsis"
                              else self.plain[:max_width])
            if pad and length < max_width:
                self._text = [f"{self.plain}{' ' * (max_width - length)}"]
                self._length = len(self.plain)

    def divide(self, offsets: Iterable[int]) -> list[Text]:
        _offsets = list(offsets)
        if not _offsets:
            return [self.copy()]
        text = self.plain
        divide_offsets = [0, *_offsets, len(text)]
        line_ranges = list(zip(divide_offsets, divide_offsets[1:], strict=False))
        new_lines = [Text(text[start:end], style=self.style, justify=self.justify, overflow=self.overflow)
                     for start, end in line_ranges]
        if not self._spans:
            return new_lines
        line_count = len(line_ranges)
        for span_start, span_end, style in self._spans:
            lower_bound, upper_bound = 0, line_count
            start_line_no = (lower_bound + upper_bound) // 2
            while True:
                line_start, line_end = line_ranges[start_line_no]
                if span_start < line_start:
                    upper_bound = start_line_no - 1
                elif span_start > line_end:
                    lower_bound = start_line_no + 1
                else:
                    break
                start_line_no = (lower_bound + upper_bound) // 2
            if span_end < line_end:
                end_line_no = start_line_no
            else:
                end_line_no = lower_bound = start_line_no
                upper_bound = line_count
                while True:
                    line_start, line_end = line_ranges[end_line_no]
                    if span_end < line_start:
                        upper_bound = end_line_no - 1
                    elif span_end > line_end:
                        lower_bound = end_line_no + 1
                    else:
                        break
                    end_line_no = (lower_bound + upper_bound) // 2
            for line_no in range(start_line_no, end_line_no + 1):
                line_start, line_end = line_ranges[line_no]
                new_start = max(0, span_start - line_start)
                new_end = min(span_end - line_start, line_end - line_start)
                if new_end > new_start:
                    new_lines[line_no]._spans.append((new_start, new_end, style))
        return new_lines

    def split(self, separator: str = "\n", *, include_separator: bool = False, allow_blank: bool = False
              ) -> list[Text]:
        text = self.plain
        if separator not in text:
            return [self.copy()]
        escaped = re.escape(separator)
        if include_separator:
            lines = self.divide(m.end() for m in re.finditer(escaped, text))
        else:
            offsets = [i for m in re.finditer(escaped, text) for i in m.span()]
            lines = [line for line in self.divide(offsets) if line.plain != separator]
        if not allow_blank and text.endswith(separator):
            lines.pop()
        return lines

    def join(self, lines: Iterable[Text]) -> Text:
        new_text = self.blank_copy()
        items: list[Text] = list(lines)
        if self.plain:
            items = [t for i, line in enumerate(items) for t in ((line, self) if i < len(items) - 1 else (line,))]
        offset = 0
        for text in items:
            new_text._text.extend(text._text)
            if text.style:
                new_text._spans.append((offset, offset + len(text), text.style))
            new_text._spans.extend((offset + start, offset + end, style) for start, end, style in text._spans)
            offset += len(text)
        new_text._length = offset
        return new_text

    def wrap(self, console: Any, width: int, *, justify: str | None = None, overflow: str | None = None,
             tab_size: int = 8, no_wrap: bool | None = None) -> list[Text]:
        """rich's Text.wrap; text that is not narrow, or has tabs, is wrapped by rich itself."""
        if width < 1 or not narrow(self.plain.replace("\n", "")):
            return _rich_wrap(self, console, width, justify=justify, overflow=overflow, tab_size=tab_size,
                              no_wrap=no_wrap)
        return _wrap(self, width, justify or self.justify or "default", overflow or self.overflow or "fold",
                     bool(no_wrap if no_wrap is not None else self.no_wrap) or overflow == "ignore",
                     ignore=overflow == "ignore")

    def __rich__(self) -> Any:
        from rich.text import Span as RichSpan
        from rich.text import Text as RichText

        return RichText(self.plain, style=self.style, justify=self.justify, overflow=self.overflow,  # type: ignore
                        no_wrap=self.no_wrap, end=self.end, tab_size=self.tab_size,
                        spans=[RichSpan(*s) for s in self._spans])

    @classmethod
    def from_rich(cls, text: Any) -> Text:
        """A rich.text.Text (or a Text) as a Text."""
        if isinstance(text, Text):
            return text
        return cls(text.plain, style=text.style, justify=text.justify, overflow=text.overflow, no_wrap=text.no_wrap,
                   end=text.end, tab_size=text.tab_size, spans=[tuple(s) for s in text.spans])


def _rich_wrap(text: Text, console: Any, width: int, **options: Any) -> list[Text]:
    from rich.console import Console

    if console is None:
        console = Console(width=max(1, width), no_color=True, highlight=False)
    return [Text.from_rich(line) for line in text.__rich__().wrap(console, width, **options)]


def _wrap(text: Text, width: int, justify: str, overflow: str, no_wrap: bool, ignore: bool = False) -> list[Text]:
    """rich.text.Text.wrap of narrow text without tabs."""
    lines: list[Text] = []
    for line in text.split(allow_blank=True):
        if "\t" in line.plain:
            raise Unsupported("tab")
        if no_wrap:
            if ignore:
                lines.append(line)
                continue
            new_lines = [line]
        else:
            new_lines = line.divide(_divide_line(line.plain, width, fold=overflow == "fold"))
            for new in new_lines:
                new.rstrip_end(width)
        if justify:
            _justify(new_lines, width, justify, overflow)
        for new in new_lines:
            new.truncate(width, overflow=overflow)
        lines.extend(new_lines)
    return lines


def _divide_line(text: str, width: int, fold: bool = True) -> list[int]:
    """rich._wrap.divide_line for narrow text."""
    break_positions: list[int] = []
    cell_offset = 0
    for match in _WORD.finditer(text):
        start, word = match.start(), match.group(0)
        word_length = len(word.rstrip())
        if width - cell_offset >= word_length:
            cell_offset += len(word)
        elif word_length > width:
            if fold:
                folded = [word[i:i + width] for i in range(0, len(word), width)]
                for n, piece in enumerate(folded):
                    if start:
                        break_positions.append(start)
                    if n == len(folded) - 1:
                        cell_offset = len(piece)
                    else:
                        start += len(piece)
            else:
                if start:
                    break_positions.append(start)
                cell_offset = len(word)
        elif cell_offset and start:
            break_positions.append(start)
            cell_offset = len(word)
    return break_positions


def _justify(lines: list[Text], width: int, justify: str, overflow: str) -> None:
    """rich.containers.Lines.justify: left and right (the others are not drawn here)."""
    if justify == "left":
        for line in lines:
            line.truncate(width, overflow=overflow, pad=True)
    elif justify == "right":
        for line in lines:
            line.rstrip()
            line.truncate(width, overflow=overflow)
            line.pad_left(width - len(line.plain))
    elif justify != "default":
        raise Unsupported(f"justify {justify}")


# ---------------------------------------------------------------- Table and Group


class Table:
    """rich.table.Table's constructor, add_column and add_row, recorded: drawn here or replayed on rich."""

    def __init__(self, *headers: Any, **options: Any) -> None:
        self.options = options
        self.columns: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.rows: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        for header in headers:
            self.add_column(header)

    def add_column(self, *args: Any, **options: Any) -> None:
        self.columns.append((args, options))

    def add_row(self, *cells: Any, **options: Any) -> None:
        self.rows.append((cells, options))

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def __rich__(self) -> Any:
        from rich.table import Table as RichTable

        table = RichTable(**{k: _rich(v) for k, v in self.options.items()})
        for args, options in self.columns:
            table.add_column(*map(_rich, args), **{k: _rich(v) for k, v in options.items()})
        for cells, options in self.rows:
            table.add_row(*map(_rich, cells), **options)
        return table


class Group:
    """rich.console.Group."""

    def __init__(self, *renderables: Any, fit: bool = True) -> None:
        self.renderables = list(renderables)
        self.fit = fit

    def __rich__(self) -> Any:
        from rich.console import Group as RichGroup

        return RichGroup(*map(_rich, self.renderables), fit=self.fit)


def _rich(value: Any) -> Any:
    return value.__rich__() if isinstance(value, Text | Table | Group) else value


# ---------------------------------------------------------------- styles

_ATTRIBUTES = {"bold": 0, "b": 0, "dim": 1, "d": 1, "italic": 2, "i": 2, "underline": 3, "u": 3, "reverse": 6,
               "r": 6, "strike": 8, "s": 8}
_SGR = ("1", "2", "3", "4", "5", "6", "7", "8", "9")
_COLORS = {name: n for n, name in enumerate(("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"))}
_COLORS.update({f"bright_{name}": n + 8 for name, n in list(_COLORS.items())})
_THEME = {"table.caption": "italic dim", "table.title": "italic", "table.header": "bold", "table.footer": "bold",
          "table.cell": "", "none": ""}

Style = tuple[int, int, int | None]  # (attributes, attributes set, colour): rich.style.Style's subset
NULL: Style = (0, 0, None)


def _parse(definition: Any) -> Style:
    """console.get_style(definition): the default theme's names, attributes and standard colours."""
    if not isinstance(definition, str):
        raise Unsupported("a Style object")
    definition = _THEME.get(definition, definition)
    if definition.strip() == "none" or not definition:
        return NULL
    attributes, color = 0, None
    for word in definition.split():
        word = word.lower()
        if word in _ATTRIBUTES:
            attributes |= 1 << _ATTRIBUTES[word]
        elif word in _COLORS:
            color = _COLORS[word]
        else:
            raise Unsupported(f"style {definition!r}")
    return attributes, attributes, color


def _add(a: Style, b: Style | None) -> Style:
    """rich.style.Style.__add__: b's attributes and colour over a's."""
    if b is None or b == NULL:
        return a
    if a == NULL:
        return b
    return (a[0] & ~b[1]) | (b[0] & b[1]), a[1] | b[1], b[2] if b[2] is not None else a[2]


def _ansi(text: str, style: Style | None, color: bool, no_color: bool) -> str:
    """Console._render_buffer and Style.render for one segment."""
    if style is None or style == NULL or not text or not color:
        return text
    attributes = style[0] & style[1]
    codes = [_SGR[bit] for bit in range(9) if attributes & (1 << bit)]
    if style[2] is not None and not no_color:
        codes.append(str((30 if style[2] < 8 else 82) + style[2]))
    return f"\x1b[{';'.join(codes)}m{text}\x1b[0m" if codes else text


# ---------------------------------------------------------------- drawing

Segment = tuple[str, Style | None]


def _render_text(text: Text, end: str) -> list[Segment]:
    """rich.text.Text.render."""
    plain = text.plain
    if not text._spans:
        return [(plain, None)] + ([(end, None)] if end else [])
    styles = {index: _parse(span[2]) for index, span in enumerate(text._spans, 1)}
    styles[0] = _parse(text.style)
    marks = sorted([(0, False, 0), *((s[0], False, i) for i, s in enumerate(text._spans, 1)),
                    *((s[1], True, i) for i, s in enumerate(text._spans, 1)), (len(plain), True, 0)],
                   key=lambda m: (m[0], m[1]))
    stack: list[int] = []
    out: list[Segment] = []
    for (offset, leaving, style_id), (next_offset, _, _) in zip(marks, marks[1:], strict=False):
        if leaving:
            stack.remove(style_id)
        else:
            stack.append(style_id)
        if next_offset > offset:
            style = NULL
            for sid in sorted(stack):
                style = _add(style, styles[sid])
            out.append((plain[offset:next_offset], style))
    if end:
        out.append((end, None))
    return out


def _text_segments(text: Text, width: int, justify: str | None = None, overflow: str | None = None,
                   no_wrap: bool | None = None) -> list[Segment]:
    """Text.__rich_console__ at this width (console options justify/overflow/no_wrap)."""
    if not narrow(text.plain.replace("\n", "")):
        raise Unsupported("wide or control characters")
    lines = _wrap(text, width, text.justify or justify or "default", text.overflow or overflow or "fold",
                  bool(text.no_wrap if text.no_wrap is not None else no_wrap))
    return _render_text(Text("\n").join(lines), text.end)


def _markup(value: Any, style: Any = "") -> Text:
    """console.render_str of a str renderable (markup and emoji codes on: neither may occur), or the Text."""
    if isinstance(value, Text):
        return value
    if not isinstance(value, str):
        raise Unsupported(type(value).__name__)
    if "[" in value or _EMOJI_CODE.search(value):
        raise Unsupported("markup")
    return Text(value, style=style)


def _lines(segments: Iterable[Segment], length: int, style: Style | None = None, pad: bool = True
           ) -> Iterator[list[Segment]]:
    """Segment.split_and_crop_lines without the newlines (include_new_lines=False)."""
    for line, _ in _ended_lines(segments, length, style, pad):
        yield line


def _ended_lines(segments: Iterable[Segment], length: int, style: Style | None = None, pad: bool = True
                 ) -> Iterator[tuple[list[Segment], bool]]:
    """Segment.split_and_crop_lines: each line and whether a newline ended it (the last may not)."""
    line: list[Segment] = []
    for text, seg_style in segments:
        if "\n" in text:
            while text:
                part, newline, text = text.partition("\n")
                if part:
                    line.append((part, seg_style))
                if newline:
                    yield _adjust(line, length, style, pad), True
                    line = []
        else:
            line.append((text, seg_style))
    if line:
        yield _adjust(line, length, style, pad), False


def _adjust(line: list[Segment], length: int, style: Style | None, pad: bool) -> list[Segment]:
    """Segment.adjust_line_length for narrow text."""
    line_length = sum(len(text) for text, _ in line)
    if line_length < length:
        return line + [(" " * (length - line_length), style)] if pad else line[:]
    if line_length > length:
        out: list[Segment] = []
        total = 0
        for text, seg_style in line:
            if total + len(text) < length:
                out.append((text, seg_style))
                total += len(text)
            else:
                out.append((text[:length - total], seg_style))
                break
        return out
    return line[:]


def _styled(segments: Iterable[Segment], style: Style) -> list[Segment]:
    """Segment.apply_style(segments, style): style + each segment's style."""
    if style == NULL:
        return list(segments)
    return [(text, _add(style, seg_style)) for text, seg_style in segments]


_TABLE_OPTIONS = {"title": None, "box": None}  # supported only with these values
_TABLE_FLAGS = {"header_style", "pad_edge", "collapse_padding", "caption", "caption_justify", "caption_style"}
_COLUMN_OPTIONS = {"justify", "no_wrap", "style"}


def _table_segments(table: Table, max_width: int) -> list[Segment]:
    """Table.__rich_console__ for a table without box, title or footer whose cells are one line each and fit."""
    options = table.options
    for key, value in options.items():
        if key in _TABLE_OPTIONS:
            if value is not _TABLE_OPTIONS[key]:
                raise Unsupported(f"table {key}")
        elif key not in _TABLE_FLAGS:
            raise Unsupported(f"table {key}")
    if "box" not in options:
        raise Unsupported("a box")
    if not table.columns:
        return [("\n", None)]
    collapse, pad_edge = options.get("collapse_padding", False), options.get("pad_edge", True)
    header_style = _parse(options.get("header_style", "table.header") or "")
    columns = []
    for args, col in table.columns:
        if set(col) - _COLUMN_OPTIONS or len(args) > 1 or col.get("justify", "left") not in ("left", "right"):
            raise Unsupported("column options")
        columns.append((args[0] if args else "", col.get("justify", "left"), bool(col.get("no_wrap", False)),
                        _parse(col.get("style") or "")))
    n = len(columns)
    for cells, row_options in table.rows:
        if row_options or len(cells) > n:
            raise Unsupported("row options")
    rows = [[*cells, *[""] * (n - len(cells))] for cells, _ in table.rows]

    def padding(i: int) -> tuple[int, int]:  # (left, right) of column i: Table._get_cells' get_padding
        left, right = 1, 1
        if collapse and i:
            left = max(0, left - right)
        if not pad_edge:
            left = 0 if i == 0 else left
            right = 0 if i == n - 1 else right
        return left, right

    # the cells as Text, measured: Measurement.get of Padding(cell) (min: longest word, max: longest line)
    grid: list[list[Text]] = [[_markup(head) for head, *_ in columns]]
    grid += [[_markup(c) for c in row] for row in rows]
    widths = []
    for i in range(n):
        left, right = padding(i)
        if max_width - (left + right) < 1:
            raise Unsupported("no room")
        most = 0
        for r in grid:
            plain = r[i].plain
            if "\n" in plain or not narrow(plain):
                raise Unsupported("a cell of several lines or wide characters")
            most = max(most, len(plain))
        widths.append(min(most + left + right, max_width) or 1)
    table_width = sum(widths)
    if table_width > max_width:
        raise Unsupported("too wide: rich shrinks the columns")

    out: list[Segment] = []
    for r, cells in enumerate(grid):
        for i, cell in enumerate(cells):
            left, right = padding(i)
            content = widths[i] - left - right
            _, justify, no_wrap, column_style = columns[i]
            cell_style = header_style if r == 0 else column_style
            inner = list(_lines(_text_segments(cell, content, justify, "ellipsis", no_wrap), content, None))
            if len(inner) != 1:
                raise Unsupported("a cell of several lines")
            line = ([(" " * left, None)] if left else []) + inner[0] + ([(" " * right, None)] if right else [])
            out += _styled(line, cell_style)
        out.append(("\n", None))
    caption = options.get("caption")
    if caption:
        style = options.get("caption_style")  # Style.pick_first(caption_style, "table.caption")
        text = _markup(caption, "table.caption" if style is None else style)
        out += _text_segments(text, table_width, options.get("caption_justify", "center"))
    return out


def segments(renderable: Any, width: int) -> list[Segment]:
    """console.render(renderable) at this width; Unsupported for what is not drawn here."""
    if isinstance(renderable, Group):
        return [s for r in renderable.renderables for s in segments(r, width)]
    if isinstance(renderable, Text):
        return _text_segments(renderable, width)
    if isinstance(renderable, Table):
        return _table_segments(renderable, width)
    raise Unsupported(type(renderable).__name__)


def draw(renderable: Any, width: int, *, color: bool = False, no_color: bool = False) -> str | None:
    """What rich's Console.print(renderable) writes on a console of this width (color: it has a colour system,
    no_color: it strips colours), or None when rich has to draw it."""
    try:
        if width < 1:
            raise Unsupported("width")
        out = []
        for line, ended in _ended_lines(segments(renderable, width), width, pad=False):
            out += [_ansi(text, style, color, no_color) for text, style in line]
            if ended:
                out.append("\n")
        return "".join(out)
    except Unsupported:
        return None


# ---------------------------------------------------------------- the console rich would make


def console_setup(file: Any = None, *, no_color: bool | None = None, width: int | None = None,
                  force_terminal: bool | None = None) -> tuple[int, bool, bool] | None:
    """(width, colour system, no_color) of rich.console.Console(file=file, no_color=no_color, width=width,
    force_terminal=force_terminal) on this platform, or None where its detection is not reproduced here
    (Windows, Jupyter, IDLE, a file that is not UTF-8, UNICODE_VERSION set)."""
    import builtins

    environ = os.environ
    if sys.platform == "win32" or hasattr(builtins, "get_ipython") or "UNICODE_VERSION" in environ:
        return None
    stdin = sys.stdin
    if hasattr(stdin, "__module__") and stdin.__module__.startswith("idlelib"):
        return None
    file = file if file is not None else sys.stdout
    file = getattr(file, "rich_proxied_file", file)
    if file is None or "utf" not in (getattr(file, "encoding", None) or "").lower().replace("-", ""):
        return None
    if width is None:
        columns = environ.get("COLUMNS")
        if columns is not None and columns.isdigit():
            width = int(columns)
    # Console.is_terminal
    if force_terminal is not None:
        terminal = force_terminal
    elif environ.get("TTY_COMPATIBLE", "") in ("0", "1"):
        terminal = environ["TTY_COMPATIBLE"] == "1"
    elif environ.get("FORCE_COLOR") is not None:
        terminal = environ["FORCE_COLOR"] != ""
    else:
        isatty = getattr(file, "isatty", None)
        try:
            terminal = False if isatty is None else bool(isatty())
        except ValueError:
            terminal = False
    dumb = terminal and environ.get("TERM", "").lower() in ("dumb", "unknown")
    # Console.size
    lines = environ.get("LINES")
    height = int(lines) if lines is not None and lines.isdigit() else None
    if not (width is not None and height is not None):
        if dumb:
            width = 80
        elif width is None:
            for fd in _std_streams():
                try:
                    width = os.get_terminal_size(fd)[0]
                except (AttributeError, ValueError, OSError):
                    continue
                break
            columns = environ.get("COLUMNS")
            if columns is not None and columns.isdigit():
                width = int(columns)
            width = width or 80
    no_color = no_color if no_color is not None else environ.get("NO_COLOR", "") != ""
    return width, terminal and not dumb, bool(no_color)


def _std_streams() -> tuple[int, int, int]:
    """rich.console._STD_STREAMS: the file descriptors of sys.__stdin__, __stdout__ and __stderr__."""
    fds = []
    for stream, default in ((sys.__stdin__, 0), (sys.__stdout__, 1), (sys.__stderr__, 2)):
        try:
            fds.append(stream.fileno())  # type: ignore[union-attr]
        except Exception:
            fds.append(default)
    return fds[0], fds[1], fds[2]


def write(renderable: Any, file: Any = None, *, no_color: bool = False, width: int | None = None,
          force_terminal: bool | None = None, soft_wrap: bool = False) -> bool:
    """Write the renderable as rich.console.Console(...).print(renderable) would; False (nothing written) when
    rich has to draw it."""
    setup = None if soft_wrap else console_setup(file, no_color=no_color or None, width=width,
                                                     force_terminal=force_terminal)
    if setup is None:
        return False
    console_width, color, strip_color = setup
    text = draw(renderable, console_width, color=color, no_color=strip_color)
    if text is None:
        return False
    out = file if file is not None else sys.stdout
    out.write(text)
    out.flush()
    return True


def fits(renderables: Sequence[Any]) -> bool:
    """Every renderable is one of this module's (for callers that mix them with rich's)."""
    return all(isinstance(r, Text | Table | Group) for r in renderables)
